"""MANSRTSP: playback control inside a Playback/Download dialog (INFO, Content-Type
Application/MANSRTSP), an RTSP-like text: PLAY with Range (seek) or Scale (speed), PAUSE.

    PLAY RTSP/1.0           PAUSE RTSP/1.0          PLAY RTSP/1.0
    CSeq: 3                 CSeq: 4                 CSeq: 5
    Range: npt=120-         PauseTime: now          Scale: 2.0

Pure: text in, values out. Devices vary in case and line ends, so parsing is lenient about
both and strict about numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CONTENT_TYPE = "Application/MANSRTSP"
MAX_SIZE = 2048
SCALES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
_NPT = re.compile(r"^npt\s*=\s*(now|[0-9]+(?:\.[0-9]+)?)?\s*-\s*(now|[0-9]+(?:\.[0-9]+)?)?$")


class MansrtspError(ValueError):
    pass


@dataclass(frozen=True)
class RtspControl:
    method: str  # PLAY | PAUSE | TEARDOWN
    cseq: int
    scale: float | None = None
    npt: float | None = None  # seek position in seconds from the start of the range; None = now

    def to_bytes(self) -> bytes:
        lines = [f"{self.method} RTSP/1.0", f"CSeq: {self.cseq}"]
        if self.method == "PAUSE":
            lines.append("PauseTime: now")
        if self.scale is not None:
            lines.append(f"Scale: {self.scale:g}")
        if self.method == "PLAY" and (self.npt is not None or self.scale is None):
            lines.append("Range: npt=" + ("now" if self.npt is None else f"{self.npt:g}") + "-")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def pause(cseq: int) -> RtspControl:
    return RtspControl("PAUSE", cseq)


def resume(cseq: int) -> RtspControl:
    return RtspControl("PLAY", cseq)


def seek(cseq: int, seconds: float) -> RtspControl:
    if seconds < 0:
        raise MansrtspError("a seek position cannot be negative")
    return RtspControl("PLAY", cseq, npt=seconds)


def speed(cseq: int, scale: float) -> RtspControl:
    if scale not in SCALES:
        raise MansrtspError(f"scale must be one of {', '.join(f'{s:g}' for s in SCALES)}")
    return RtspControl("PLAY", cseq, scale=scale)


def parse(body: bytes) -> RtspControl:
    if len(body) > MAX_SIZE:
        raise MansrtspError(f"a MANSRTSP body of {len(body)} bytes is too large")
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise MansrtspError("MANSRTSP is ASCII text") from None
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines:
        raise MansrtspError("empty MANSRTSP body")
    parts = lines[0].split()
    if len(parts) != 2 or not parts[1].upper().startswith("RTSP/"):
        raise MansrtspError(f"bad request line {lines[0][:40]!r}")
    method = parts[0].upper()
    if method not in ("PLAY", "PAUSE", "TEARDOWN"):
        raise MansrtspError(f"unknown MANSRTSP method {method[:20]!r}")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    try:
        cseq = int(headers.get("cseq", ""))
    except ValueError:
        raise MansrtspError("CSeq missing or not a number") from None
    scale = npt = None
    if "scale" in headers:
        try:
            scale = float(headers["scale"])
        except ValueError:
            raise MansrtspError(f"bad Scale {headers['scale'][:20]!r}") from None
        if not 0 < scale <= 64:
            raise MansrtspError(f"Scale {scale} is out of range")
    if "range" in headers:
        match = _NPT.match(headers["range"].lower())
        if match is None:
            raise MansrtspError(f"only npt ranges like npt=120- are understood, not {headers['range'][:30]!r}")
        if match.group(1) not in (None, "now"):
            npt = float(match.group(1))
    return RtspControl(method, cseq, scale, npt)
