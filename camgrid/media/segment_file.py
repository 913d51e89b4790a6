"""Recorded segments on disk: fMP4 files written part by part, each part fsynced.

A segment file is an init segment (ftyp + moov) followed by fragments (moof + mdat), one per
part (about a second of video). `SegmentWriter.append` (and `append_parts`, several parts and
one fsync) returns only after the parts are on disk, so whoever indexes them afterwards never
claims footage a crash could lose.

`scan_segment` reads a file back the way recovery needs it: how many bytes form whole
fragments, and the media time they cover (from each moof's tfdt and trun durations).
`repair_segment` cuts a torn last fragment off (what a killed process or a full disk leaves).
`describe_segment` reads what an index row says of a file (codec, picture size, bytes, length),
for a file found on disk without one.
Blocking I/O: call from a worker thread.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from camgrid.media import fastpath
from camgrid.media.fmp4 import read_boxes, tracks_of

_TRUN_DURATION, _TRUN_SIZE, _TRUN_FLAGS, _TRUN_CTO = 0x100, 0x200, 0x400, 0x800
_TRUN_DATA_OFFSET, _TRUN_FIRST_FLAGS = 0x1, 0x4
_TFHD_DEFAULT_DURATION = 0x8


class SegmentError(ValueError):
    """A segment file that is not an fMP4 this recorder wrote (no init segment)."""


def fsync_dir(path: Path) -> None:
    """Make a file's creation or removal durable (its directory entry)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SegmentWriter:
    def __init__(self, path: Path, init: bytes, *, native: bool | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._native = fastpath.native if native is None or native else None
        if native and self._native is None:
            raise RuntimeError(f"the native write path is not available: {fastpath.REASON}")
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        self.bytes = 0
        try:
            self._write(init)
            os.fsync(self._fd)
            fsync_dir(path.parent)
        except OSError:
            self.close()
            raise

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
            self.bytes += written

    def append(self, part: bytes) -> int:
        """Write one part and fsync it; the file size after it. On an error (disk full) the
        torn bytes are cut off again so the file stays whole, and the error is raised."""
        return self.append_parts([part])

    def append_parts(self, parts: list[bytes]) -> int:
        """Write parts one after the other and fsync once; the file size after them. All or
        nothing: on an error every byte of these parts is cut off again and the error raised.
        With the native module the writes and the fsync run without the GIL."""
        before = self.bytes
        try:
            if self._native is not None:
                self.bytes += self._native.write_parts(self._fd, parts)
            else:
                for part in parts:
                    self._write(part)
                os.fsync(self._fd)
        except OSError:
            try:
                os.ftruncate(self._fd, before)
                self.bytes = before
            except OSError:
                pass
            raise
        return self.bytes

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@dataclass
class SegmentScan:
    whole_bytes: int  # the file's first bytes that form the init segment and whole fragments
    file_bytes: int
    fragments: int
    first_dts: int | None  # media time (timescale units) of the first sample
    end_dts: int | None  # media time just after the last whole sample

    @property
    def duration_ticks(self) -> int:
        return (self.end_dts - self.first_dts) if self.first_dts is not None and self.end_dts is not None else 0


@dataclass
class Fragment:
    offset: int  # of its moof in the file
    size: int  # moof + mdat
    base_dts: int
    duration: int
    sync_dts: int | None  # decode time of its first sync sample (a key frame), if it has one
    tfdt_at: int  # file offset of the tfdt box, to move the fragment on a playback timeline
    # (tfdt offset, track ID) of the other tracks' trafs (audio), each in its own timescale
    other_tfdts: tuple[tuple[int, int], ...] = ()


def _read_moof(data: bytes, moof_offset: int, moof_size: int) -> tuple[int, int, int | None, int, tuple]:
    """(base decode time, summed durations, dts of the first sync sample or None, tfdt offset,
    the other trafs' (tfdt offset, track ID)). Timing comes from the first traf (the video);
    a second one (audio) is only located, to be moved along with it."""
    base, total, default_duration, sync_dts, tfdt_at = 0, 0, 0, None, -1
    others: list[tuple[int, int]] = []
    first_traf = True
    for kind, off, size in read_boxes(data, moof_offset + 8, moof_offset + moof_size):
        if kind != "traf":
            continue
        if not first_traf:
            track_id, at = None, None
            for child, coff, _ in read_boxes(data, off + 8, off + size):
                if child == "tfhd":
                    track_id = struct.unpack_from(">I", data, coff + 12)[0]
                elif child == "tfdt":
                    at = coff
            if track_id is None or at is None:
                raise SegmentError("a traf without tfhd or tfdt")
            others.append((at, track_id))
            continue
        first_traf = False
        for child, coff, csize in read_boxes(data, off + 8, off + size):
            version_flags = struct.unpack_from(">I", data, coff + 8)[0]
            version, flags = version_flags >> 24, version_flags & 0xFFFFFF
            body = coff + 12
            if child == "tfhd":
                pos = body + 4 + (8 if flags & 0x1 else 0) + (4 if flags & 0x2 else 0)
                if flags & _TFHD_DEFAULT_DURATION:
                    default_duration = struct.unpack_from(">I", data, pos)[0]
            elif child == "tfdt":
                base = struct.unpack_from(">Q" if version == 1 else ">I", data, body)[0]
                tfdt_at = coff
            elif child == "trun":
                count = struct.unpack_from(">I", data, body)[0]
                pos = body + 4 + (4 if flags & _TRUN_DATA_OFFSET else 0)
                first_flags = None
                if flags & _TRUN_FIRST_FLAGS:
                    first_flags = struct.unpack_from(">I", data, pos)[0]
                    pos += 4
                fields = [bit for bit in (_TRUN_DURATION, _TRUN_SIZE, _TRUN_FLAGS, _TRUN_CTO) if flags & bit]
                stride = 4 * len(fields)
                if pos + count * stride > coff + csize:
                    raise SegmentError("trun runs past its box")
                t = base + total
                for i in range(count):
                    at = pos + i * stride
                    duration = struct.unpack_from(">I", data, at)[0] if flags & _TRUN_DURATION else default_duration
                    if flags & _TRUN_FLAGS:
                        sample_flags = struct.unpack_from(">I", data, at + 4 * fields.index(_TRUN_FLAGS))[0]
                    else:
                        sample_flags = first_flags if i == 0 and first_flags is not None else 0x01010000
                    if sync_dts is None and not sample_flags & 0x00010000:  # sample_is_non_sync_sample clear
                        sync_dts = t
                    t += duration
                total = t - base
    return base, total, sync_dts, tfdt_at, tuple(others)


def read_fragments(data: bytes) -> tuple[bytes, list[Fragment]]:
    """The init segment and the whole fragments of a segment file's bytes."""
    boxes = read_boxes(data)
    if len(boxes) < 2 or boxes[0][0] != "ftyp" or boxes[1][0] != "moov":
        raise SegmentError("no init segment (ftyp + moov) at the start")
    init = data[:boxes[1][1] + boxes[1][2]]
    out: list[Fragment] = []
    i = 2
    while i + 1 < len(boxes) and boxes[i][0] == "moof" and boxes[i + 1][0] == "mdat":
        _, moof_off, moof_size = boxes[i]
        try:
            base, duration, sync_dts, tfdt_at, others = _read_moof(data, moof_off, moof_size)
        except (struct.error, SegmentError):
            break  # a damaged moof: what follows cannot be trusted
        out.append(Fragment(moof_off, moof_size + boxes[i + 1][2], base, duration, sync_dts, tfdt_at, others))
        i += 2
    return init, out


def scan_segment(path: Path) -> SegmentScan:
    data = path.read_bytes()
    try:
        init, fragments = read_fragments(data)
    except SegmentError as exc:
        raise SegmentError(f"{path}: {exc}") from None
    whole = fragments[-1].offset + fragments[-1].size if fragments else len(init)
    first = fragments[0].base_dts if fragments else None
    end = fragments[-1].base_dts + fragments[-1].duration if fragments else None
    return SegmentScan(whole, len(data), len(fragments), first, end)


def repair_segment(path: Path) -> SegmentScan:
    """Cut a torn tail off (fsynced); the scan of what remains."""
    scan = scan_segment(path)
    if scan.whole_bytes < scan.file_bytes:
        with open(path, "r+b") as f:
            f.truncate(scan.whole_bytes)
            f.flush()
            os.fsync(f.fileno())
    return scan


VIDEO_ENTRIES = {"avc1": "h264", "avc3": "h264", "hvc1": "h265", "hev1": "h265"}


@dataclass
class SegmentInfo:
    """What an index row needs of a segment file."""

    codec: str  # h264 | h265
    width: int
    height: int
    bytes: int  # whole: the init segment and whole fragments
    duration_s: float
    fragments: int
    torn_bytes: int  # after the whole fragments (cut off by describe_segment(repair=True))


def describe_segment(path: Path, *, repair: bool = False) -> SegmentInfo:
    """Codec, size and length of a segment file this recorder wrote, read from its init segment
    (the video track's sample entry) and fragments. SegmentError when it is not one, has no
    video track of a known codec, or holds no whole fragment. With `repair`, a torn tail is cut off."""
    data = path.read_bytes()
    try:
        init, fragments = read_fragments(data)
    except SegmentError as exc:
        raise SegmentError(f"{path.name}: {exc}") from None
    video = next((t for t in tracks_of(init) if t.handler == "vide"), None)
    if video is None or video.entry not in VIDEO_ENTRIES or video.timescale <= 0:
        raise SegmentError(f"{path.name}: no H.264 or H.265 video track in its init segment")
    entry = _video_entry(init)
    if entry is None:
        raise SegmentError(f"{path.name}: the video sample entry is cut short")
    width, height = struct.unpack_from(">HH", init, entry + 8 + 24)
    if not fragments:
        raise SegmentError(f"{path.name}: no whole fragment (no footage)")
    whole = fragments[-1].offset + fragments[-1].size
    duration = fragments[-1].base_dts + fragments[-1].duration - fragments[0].base_dts
    if repair and whole < len(data):
        repair_segment(path)
    return SegmentInfo(VIDEO_ENTRIES[video.entry], width, height, whole, duration / video.timescale, len(fragments),
                       len(data) - whole)


def _video_entry(init: bytes) -> int | None:
    """Offset of the first video track's sample entry (its box header) in the init segment."""
    moov = next(((p, sz) for n, p, sz in read_boxes(init) if n == "moov"), None)
    if moov is None:
        return None
    for name, pos, size in read_boxes(init, moov[0] + 8, moov[0] + moov[1]):
        if name != "trak":
            continue
        span: tuple[int, int] | None = (pos + 8, pos + size)
        for kind in ("mdia", "minf", "stbl", "stsd"):
            span = next(((p + 8, p + sz) for n, p, sz in read_boxes(init, *span) if n == kind), None)
            if span is None:
                break
        if span is None:
            continue
        entries = read_boxes(init, span[0] + 8, span[1])
        if entries and entries[0][0] in VIDEO_ENTRIES and entries[0][2] >= 8 + 28:
            return entries[0][1]
    return None
