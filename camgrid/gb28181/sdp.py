"""The SDP dialect of GB/T 28181 INVITEs: RFC 4566 plus u= (channel:0), y= (SSRC) and f= (media format)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_SDP_SIZE = 16 * 1024
_LINE = re.compile(r"^([a-z])=(.*)$")
_TOKEN = re.compile(r"^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~/]+$")
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


class SdpError(ValueError):
    """SDP text that cannot be used; the message says why."""


@dataclass
class MediaDescription:
    media: str = "video"
    port: int = 0
    proto: str = "RTP/AVP"
    formats: list[str] = field(default_factory=list)
    rtpmap: dict[int, str] = field(default_factory=dict)
    # a= lines other than rtpmap, in order: ("recvonly", None), ("setup", "passive"), ...
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    connection_address: str | None = None  # a media-level c=
    port_count: int | None = None
    other_lines: list[tuple[str, str]] = field(default_factory=list)  # b=, i=, k=, ...

    def attribute(self, name: str) -> str | None:
        """Value of the first a=name:value, "" for a flag like a=recvonly, None if absent."""
        for key, value in self.attributes:
            if key == name:
                return value if value is not None else ""
        return None

    @property
    def direction(self) -> str | None:
        return next((k for k, _ in self.attributes if k in DIRECTIONS), None)

    @property
    def setup(self) -> str | None:
        return self.attribute("setup")

    @property
    def tcp_connection(self) -> str | None:
        return self.attribute("connection")

    @property
    def is_tcp(self) -> bool:
        return self.proto.upper().startswith("TCP/")

    @property
    def download_speed(self) -> int | None:
        return _opt_int(self.attribute("downloadspeed"))

    @property
    def file_size(self) -> int | None:
        return _opt_int(self.attribute("filesize"))


@dataclass
class SessionDescription:
    origin_user: str = ""
    origin_address: str = ""
    session_name: str = "Play"  # Play | Playback | Download | Talk
    uri: str | None = None  # u=<channelId>:0 for Playback/Download
    connection_address: str | None = None
    time_start: int = 0
    time_end: int = 0
    media: list[MediaDescription] = field(default_factory=list)
    ssrc: str | None = None  # y=
    f_field: str | None = None  # f=
    origin_session_id: str = "0"
    origin_version: str = "0"
    origin_address_type: str = "IP4"
    connection_address_type: str = "IP4"
    attributes: list[tuple[str, str | None]] = field(default_factory=list)  # session-level a=
    other_lines: list[tuple[str, str]] = field(default_factory=list)

    @property
    def media_address(self) -> str | None:
        """Where the first media stream goes: its own c= or the session's."""
        if self.media and self.media[0].connection_address:
            return self.media[0].connection_address
        return self.connection_address


def _opt_int(value: str | None) -> int | None:
    if value is None or not value.strip().isdigit() or not value.isascii():
        return None
    return int(value)


def _connection(value: str) -> tuple[str, str]:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN":
        raise SdpError(f"c= must be 'IN IP4 <address>', got {value[:60]!r}")
    return parts[1], parts[2]


def _attribute(value: str) -> tuple[str, str | None]:
    name, sep, rest = value.partition(":")
    return (name.strip(), rest.strip() if sep else None)


def _decode(data: bytes) -> str:
    for codec in ("utf-8", "gb18030"):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    raise SdpError("SDP is neither UTF-8 nor GB18030 text")


def parse_sdp(data: bytes, *, max_size: int = MAX_SDP_SIZE) -> SessionDescription:
    if not isinstance(data, (bytes, bytearray)):
        raise SdpError(f"SDP must be bytes, got {type(data).__name__}")
    if len(data) > max_size:
        raise SdpError(f"SDP is {len(data)} bytes, more than the {max_size}-byte limit")
    lines = [ln.strip() for ln in _decode(bytes(data)).replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    lines = [ln for ln in lines if ln]
    if not lines or lines[0] != "v=0":
        raise SdpError("SDP must start with v=0")
    sd = SessionDescription()
    seen_origin = False
    current: MediaDescription | None = None
    for line in lines[1:]:
        m = _LINE.match(line)
        if not m:
            raise SdpError(f"not an SDP line (expected <letter>=<value>): {line[:60]!r}")
        kind, value = m.groups()
        if kind == "o":
            parts = value.split()
            if len(parts) != 6 or parts[3] != "IN":
                raise SdpError(f"o= must be '<user> <id> <version> IN IP4 <address>', got {value[:80]!r}")
            sd.origin_user, sd.origin_session_id, sd.origin_version = parts[0], parts[1], parts[2]
            sd.origin_address_type, sd.origin_address = parts[4], parts[5]
            seen_origin = True
        elif kind == "s":
            sd.session_name = value.strip()
        elif kind == "u":
            sd.uri = value.strip()
        elif kind == "t":
            parts = value.split()
            if len(parts) != 2 or not all(p.isascii() and p.isdigit() for p in parts):
                raise SdpError(f"t= must be two integers, got {value[:60]!r}")
            sd.time_start, sd.time_end = int(parts[0]), int(parts[1])
        elif kind == "y":
            sd.ssrc = value.strip()
        elif kind == "f":
            sd.f_field = value.strip()
        elif kind == "m":
            current = _media_line(value)
            sd.media.append(current)
        elif kind == "c":
            addr_type, address = _connection(value)
            if current is None:
                sd.connection_address_type, sd.connection_address = addr_type, address
            else:
                current.connection_address = address
        elif kind == "a":
            name, attr_value = _attribute(value)
            if current is not None and name == "rtpmap":
                pt, _, encoding = (attr_value or "").partition(" ")
                if not pt.isascii() or not pt.isdigit() or not encoding.strip():
                    raise SdpError(f"a=rtpmap must be '<payload type> <encoding>/<clock>', got {value[:60]!r}")
                current.rtpmap[int(pt)] = encoding.strip()
            elif current is not None:
                current.attributes.append((name, attr_value))
            else:
                sd.attributes.append((name, attr_value))
        elif kind != "v":
            (current.other_lines if current is not None else sd.other_lines).append((kind, value))
        else:
            raise SdpError("SDP has a second v= line")
    if not seen_origin:
        raise SdpError("SDP has no o= line")
    return sd


def _media_line(value: str) -> MediaDescription:
    parts = value.split()
    if len(parts) < 3:
        raise SdpError(f"m= must be '<media> <port> <proto> <formats>', got {value[:60]!r}")
    port_text, _, count = parts[1].partition("/")
    if not port_text.isascii() or not port_text.isdigit() or int(port_text) > 65535:
        raise SdpError(f"m= port must be 0-65535, got {parts[1][:20]!r}")
    if count and not (count.isascii() and count.isdigit()):
        raise SdpError(f"m= port count must be a number, got {parts[1][:20]!r}")
    if not _TOKEN.match(parts[2]):
        raise SdpError(f"m= transport is not a token: {parts[2][:30]!r}")
    return MediaDescription(media=parts[0], port=int(port_text), proto=parts[2], formats=parts[3:],
                            port_count=int(count) if count else None)


def _attr_line(name: str, value: str | None) -> str:
    return f"a={name}" if value is None else f"a={name}:{value}"


def build_sdp(sd: SessionDescription) -> bytes:
    """SDP text with CRLF line ends; y= and f= come last, where GB devices look for them."""
    out = [
        "v=0",
        f"o={sd.origin_user} {sd.origin_session_id} {sd.origin_version} IN {sd.origin_address_type} {sd.origin_address}",
        f"s={sd.session_name}",
    ]
    if sd.uri is not None:
        out.append(f"u={sd.uri}")
    if sd.connection_address is not None:
        out.append(f"c=IN {sd.connection_address_type} {sd.connection_address}")
    out.append(f"t={sd.time_start} {sd.time_end}")
    out += [f"{k}={v}" for k, v in sd.other_lines]
    out += [_attr_line(k, v) for k, v in sd.attributes]
    for m in sd.media:
        port = f"{m.port}/{m.port_count}" if m.port_count is not None else str(m.port)
        out.append(" ".join([f"m={m.media}", port, m.proto, *m.formats]))
        if m.connection_address is not None:
            out.append(f"c=IN {sd.connection_address_type} {m.connection_address}")
        out += [f"{k}={v}" for k, v in m.other_lines]
        # attribute order is kept; rtpmap lines follow a leading a=recvonly/sendonly, as GB SDP has it
        lead = next((i for i, (k, _) in enumerate(m.attributes) if k not in DIRECTIONS), len(m.attributes))
        out += [_attr_line(k, v) for k, v in m.attributes[:lead]]
        out += [f"a=rtpmap:{pt} {enc}" for pt, enc in m.rtpmap.items()]
        out += [_attr_line(k, v) for k, v in m.attributes[lead:]]
    if sd.ssrc is not None:
        out.append(f"y={sd.ssrc}")
    if sd.f_field is not None:
        out.append(f"f={sd.f_field}")
    for line in out:
        if "\r" in line or "\n" in line:
            raise SdpError(f"SDP value contains a line break: {line[:60]!r}")
    return ("\r\n".join(out) + "\r\n").encode("utf-8")


def make_ssrc(history: bool, realm: str, seq: int) -> str:
    """10-digit GB SSRC: 0 live / 1 history, digits 4-8 of the realm (its [3:8]), a 4-digit
    sequence (taken mod 10000, so a running counter can be passed)."""
    if not isinstance(realm, str) or len(realm) < 8 or not realm[:8].isascii() or not realm[:8].isdigit():
        raise ValueError(f"realm must start with 8 digits (the first 10 of the platform ID), got {realm!r}")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise ValueError(f"seq must be a non-negative integer, got {seq!r}")
    return f"{1 if history else 0}{realm[3:8]}{seq % 10000:04d}"


# -- choosing a device's main or sub-stream ---------------------------------------------------------
# GB/T 28181-2016 has no field for it; platforms put a selector in the Play INVITE's media
# description and devices honour the one their vendor chose: `a=streamnumber:N` (GB/T 28181-2022
# and many devices), `a=streamprofile:N` (Hikvision and most platforms' default), `a=stream:N`
# (Dahua), `a=streamMode:main|sub` (TP-LINK). 0 is the main stream, 1 the sub-stream. "all" sends
# every one of them: devices ignore the attributes they do not know.
STREAM_DIALECTS = ("none", "streamnumber", "streamprofile", "stream", "streammode", "all")
_SELECTOR_NAMES = {"streamnumber": "streamnumber", "streamprofile": "streamprofile", "stream": "stream",
                   "streammode": "streamMode"}


def stream_selector(dialect: str, stream: int) -> list[tuple[str, str | None]]:
    """The a= attributes asking for stream `stream` (0 main, 1 sub, 2 third) in `dialect`."""
    if dialect not in STREAM_DIALECTS:
        raise SdpError(f"stream dialect must be one of {', '.join(STREAM_DIALECTS)}, got {dialect!r}")
    if isinstance(stream, bool) or not isinstance(stream, int) or not 0 <= stream <= 9:
        raise SdpError(f"stream number must be 0-9, got {stream!r}")
    names = list(_SELECTOR_NAMES) if dialect == "all" else [] if dialect == "none" else [dialect]
    out: list[tuple[str, str | None]] = []
    for name in names:
        if name == "streammode":
            out.append(("streamMode", "main" if stream == 0 else "sub"))
        else:
            out.append((_SELECTOR_NAMES[name], str(stream)))
    return out


def requested_stream(md: MediaDescription, dialects: tuple[str, ...] = STREAM_DIALECTS) -> int | None:
    """Which stream an offer asks for (0 main, 1 sub, ...), read in the given dialects the way a
    device that knows them would; None when it names none of them."""
    for key, value in md.attributes:
        name = key.lower()
        dialect = name
        if dialect not in _SELECTOR_NAMES or not ({dialect, "all"} & set(dialects)):
            continue
        text = (value or "").strip().lower()
        if name == "streammode":
            if text in ("main", "sub"):
                return 0 if text == "main" else 1
        elif text.isascii() and text.isdigit():
            return int(text)
    return None
