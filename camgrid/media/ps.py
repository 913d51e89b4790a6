"""MPEG-2 Program Stream (ISO/IEC 13818-1) as GB/T 28181 devices send it over RTP.

`PsDemuxer` takes the payloads of consecutive RTP packets (a pack spans many of them) and gives
back access units: one video frame or audio chunk with its PTS/DTS (90 kHz) and codec. The
codec comes from the program stream map (stream_type 0x1B H.264, 0x24 H.265, 0x90 G.711A,
0x91 G.711U, 0x0F AAC); without a map, a video stream is recognised by the parameter sets of its
first key frame. A unit cut short by a lost packet is dropped at the next pack header. Garbage
is skipped to the next start code and counted, never raised: a device's bad second must not
end the stream.

`PsDemuxer` is the C implementation (camgrid.media._native, see camgrid.media.fastpath) when it
is loaded, else `PythonPsDemuxer`, which is the reference: the C one does the per-packet work
(framing, resync, PTS/DTS, gathering a unit's payloads) move for move as `PythonPsDemuxer` does,
and builds each finished unit as `make_unit` here does (the same codec and key-frame policy, in C,
the AccessUnit filled without running Python per unit; `make_unit` is the reference).
tests/media/test_ps_native.py holds the two to the same units and counters, and the C unit
builder (`_native.make_unit`) to `make_unit` on random and real frames.

`mux_ps` writes what devices write (pack header, then system header and map before a key
frame, then PES packets of at most 65,535 bytes), for the simulator and the tests.

Pure: no I/O.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from camgrid.media.fastpath import native as _native

STREAM_TYPES = {0x1B: "h264", 0x24: "h265", 0x90: "g711a", 0x91: "g711u", 0x0F: "aac"}
CODEC_STREAM_TYPE = {codec: st for st, codec in STREAM_TYPES.items()}
VIDEO_ID, AUDIO_ID = 0xE0, 0xC0
MAX_BUFFER = 4 << 20  # bytes held waiting for the rest of a PS unit before they are dropped
_PES_PAYLOAD = 65_400  # per PES packet when muxing (the length field is 16 bits)


@dataclass(slots=True)
class AccessUnit:
    stream_id: int
    codec: str  # h264 | h265 | g711a | g711u | aac | unknown
    pts: int | None
    dts: int | None
    data: bytes
    keyframe: bool = False

    @property
    def is_video(self) -> bool:
        return 0xE0 <= self.stream_id <= 0xEF


def _read_timestamp(b: bytes, i: int) -> int:
    return (((b[i] >> 1) & 0x07) << 30) | (b[i + 1] << 22) | ((b[i + 2] >> 1) << 15) | (b[i + 3] << 7) | (b[i + 4] >> 1)


def _write_timestamp(prefix: int, ts: int) -> bytes:
    ts &= (1 << 33) - 1
    return bytes([
        (prefix << 4) | (((ts >> 30) & 0x07) << 1) | 1,
        (ts >> 22) & 0xFF, (((ts >> 15) & 0x7F) << 1) | 1,
        (ts >> 7) & 0xFF, ((ts & 0x7F) << 1) | 1,
    ])


def _nal_headers(data: bytes) -> set[tuple[int, int]]:
    """The first two bytes after each start code (an H.265 NAL unit header; an H.264 one is the
    first), -1 where the data ends first. The native scan (h26x.nal_bounds in C) leaves out units
    of nothing but zero bytes, whose header names no parameter set in either codec, so the guess
    below is the same."""
    n = len(data)
    if _native is not None:
        return {(data[a], data[a + 1] if a + 1 < n else -1) for a, _ in _native.nal_bounds(data)}
    headers: set[tuple[int, int]] = set()
    i = data.find(b"\x00\x00\x01")
    while 0 <= i < n - 3:
        headers.add((data[i + 3], data[i + 4] if i + 4 < n else -1))
        i = data.find(b"\x00\x00\x01", i + 3)
    return headers


def guess_video_codec(data: bytes) -> str:
    """H.264 or H.265 from a frame's parameter sets: an H.264 SPS (type 7, nal_ref_idc not 0), or an
    H.265 VPS, SPS or PPS of the base layer (40|42|44 01); "unknown" for a frame without them. Other
    header bytes read as either codec: the slice of an H.264 P frame (41) is an H.265 VPS by its
    type alone, and an H.265 IDR_N_LP slice (28) an H.264 PPS, so a stream joined mid-GOP was once
    taken for H.265 (and every frame scanned end to end for a picture that never came). One pass over
    the frame (every frame is guessed until a map or a key frame names the codec)."""
    headers = _nal_headers(data)
    if any(first & 0x9F == 0x07 and first & 0x60 for first, _ in headers):
        return "h264"
    if any(first in (0x40, 0x42, 0x44) and second == 0x01 for first, second in headers):
        return "h265"
    return "unknown"


def is_keyframe(codec: str, data: bytes) -> bool:
    """Whether the frame's first picture NAL unit is an IDR/IRAP. Only the units before it are
    looked at (parameter sets, SEI): scanning a whole 100 KB frame for this showed in profiles."""
    if codec not in ("h264", "h265"):
        return True  # audio: every chunk stands alone
    hevc = codec == "h265"
    i = data.find(b"\x00\x00\x01")
    while 0 <= i < len(data) - 3:
        header = data[i + 3]
        if hevc:
            kind = (header >> 1) & 0x3F
            if kind < 32:  # a VCL unit: the picture itself
                return 16 <= kind <= 21
        else:
            kind = header & 0x1F
            if 1 <= kind <= 5:
                return kind == 5
        i = data.find(b"\x00\x00\x01", i + 3)
    return False


def make_unit(codecs: dict[int, str], stream_id: int, pts: int | None, dts: int | None, data: bytes) -> AccessUnit:
    """A finished unit's codec (from the map, else, for video, from its parameter sets, which then
    hold for the stream) and key-frame flag; both demuxers call this for each unit."""
    codec = codecs.get(stream_id)
    if codec is None:
        codec = guess_video_codec(data) if 0xE0 <= stream_id <= 0xEF else "unknown"
        if codec != "unknown":
            codecs[stream_id] = codec
    return AccessUnit(stream_id, codec, pts, dts, data, is_keyframe(codec, data))


class PythonPsDemuxer:
    def __init__(self) -> None:
        self._buf = bytearray()
        self.codecs: dict[int, str] = {}  # stream id → codec, from the program stream map
        self._current: dict[int, list] = {}  # stream id → [pts, dts, chunks]
        self._scanned_pos, self._scanned_to = -1, 0  # the incomplete PES at _scanned_pos was searched up to _scanned_to
        self._waiting_end = 0  # ... and ends there
        self.resyncs = 0  # times garbage was skipped to reach a start code
        self.dropped_bytes = 0
        self.packs = 0

    def feed(self, data: bytes) -> list[AccessUnit]:
        """Bytes of the stream (e.g. one RTP payload); returns the access units completed by them."""
        buf = self._buf
        if self._scanned_pos == 0 and len(buf) + len(data) < self._waiting_end:
            # Most RTP payloads are the middle of a large PES: append, look for a pack header in the
            # new bytes only (a lost packet), and leave the parser alone.
            before = len(buf)
            buf += data
            if buf.find(b"\x00\x00\x01\xba", max(6, before - 3)) < 0:
                self._scanned_to = len(buf)
                return []
            return self._parse_and_trim()
        buf += data
        return self._parse_and_trim()

    def _parse_and_trim(self) -> list[AccessUnit]:
        out: list[AccessUnit] = []
        marked = self._scanned_pos, self._scanned_to
        pos = self._parse(out)
        if (self._scanned_pos, self._scanned_to) == marked:
            self._scanned_pos, self._scanned_to = -1, 0  # parsing did not stop inside a PES this time
        elif pos:
            self._scanned_pos -= pos
            self._scanned_to -= pos
            self._waiting_end -= pos
        if pos:
            del self._buf[:pos]
        if len(self._buf) > MAX_BUFFER:
            self.dropped_bytes += len(self._buf)
            self._buf.clear()
            self._scanned_pos, self._scanned_to = -1, 0
        return out

    def flush(self) -> list[AccessUnit]:
        """Every unit still being gathered (call at the end of a frame, e.g. an RTP marker bit, or at the end)."""
        out: list[AccessUnit] = []
        for stream_id in list(self._current):
            self._finish(stream_id, out)
        return out

    def lost(self) -> None:
        """RTP packets went missing here: what is buffered and the units being gathered are cut,
        so drop them; parsing resumes at the next pack or PES start code."""
        self.dropped_bytes += len(self._buf) + sum(len(c) for cur in self._current.values() for c in cur[2])
        self._buf.clear()
        self._current.clear()
        self._scanned_pos, self._scanned_to = -1, 0

    # -- parsing ------------------------------------------------------------------------------
    def _parse(self, out: list[AccessUnit]) -> int:
        buf, pos, n = self._buf, 0, len(self._buf)
        while n - pos >= 4:
            if buf[pos] != 0 or buf[pos + 1] != 0 or buf[pos + 2] != 1:
                nxt = buf.find(b"\x00\x00\x01", pos + 1)
                self.resyncs += 1
                if nxt < 0:
                    keep = max(pos, n - 2)  # a start code may begin in the last two bytes
                    self.dropped_bytes += keep - pos
                    return keep
                self.dropped_bytes += nxt - pos
                pos = nxt
                continue
            code = buf[pos + 3]
            if code == 0xBA:
                size = self._pack_header_size(pos)
                if size is None:
                    return pos
                if size < 0:  # MPEG-1 or damaged: skip the start code
                    self.resyncs += 1
                    pos += 4
                    continue
                self.packs += 1
                pos += size
                continue
            if code == 0xB9:  # program end
                pos += 4
                continue
            if code < 0xBB:  # not a PS unit (e.g. a NAL start code outside PES): resync
                self.resyncs += 1
                pos += 3
                continue
            if n - pos < 6:
                return pos
            length = (buf[pos + 4] << 8) | buf[pos + 5]
            end = pos + 6 + length
            # A pack header inside a video unit means the unit was cut short (a lost RTP packet)
            # and its declared length swallows what follows: drop it and go on from the pack.
            # (00 00 01 BA cannot occur inside H.264/H.265 data; audio is not checked.)
            # While a large PES arrives piece by piece, only the bytes added since the last look are
            # searched (minus 3, for a start code cut by a piece boundary).
            scan_from = pos + 6 if self._scanned_pos != pos else max(pos + 6, self._scanned_to - 3)
            lost = buf.find(b"\x00\x00\x01\xba", scan_from, min(end, n)) if 0xE0 <= code <= 0xEF else -1
            if lost >= 0:
                self.resyncs += 1
                self.dropped_bytes += lost - pos
                starts_unit = lost - pos > 8 and buf[pos + 7] & 0x80  # it carried a PTS
                if starts_unit:
                    self._finish(code, out)  # the unit before it was whole
                else:
                    self._current.pop(code, None)  # a piece of the unit being gathered is gone
                pos = lost
                continue
            if end > n:
                self._scanned_pos, self._scanned_to, self._waiting_end = pos, n, end
                return pos
            body = bytes(buf[pos + 6:end])
            if code == 0xBC:
                self._read_map(body)
            elif 0xC0 <= code <= 0xEF or code == 0xBD:
                self._read_pes(code, body, out)
            pos = end  # system header (BB), padding (BE), private 2 (BF) and others are skipped
        return pos

    def _pack_header_size(self, pos: int) -> int | None:
        buf = self._buf
        if len(buf) - pos < 14:
            return None
        if buf[pos + 4] >> 6 != 0b01:
            return -1
        return 14 + (buf[pos + 13] & 0x07)

    def _read_map(self, body: bytes) -> None:
        if len(body) < 6:
            return
        info_len = (body[2] << 8) | body[3]
        i = 4 + info_len
        if i + 2 > len(body):
            return
        map_len = (body[i] << 8) | body[i + 1]
        i += 2
        end = min(len(body), i + map_len)
        while i + 4 <= end:
            stream_type, stream_id = body[i], body[i + 1]
            es_len = (body[i + 2] << 8) | body[i + 3]
            self.codecs[stream_id] = STREAM_TYPES.get(stream_type, "unknown")
            i += 4 + es_len

    def _read_pes(self, stream_id: int, body: bytes, out: list[AccessUnit]) -> None:
        if len(body) < 3 or body[0] >> 6 != 0b10:
            self.resyncs += 1
            return
        flags, header_len = body[1] >> 6, body[2]
        start = 3 + header_len
        if start > len(body):
            self.resyncs += 1
            return
        pts = dts = None
        if flags & 0b10 and header_len >= 5:
            pts = _read_timestamp(body, 3)
            dts = _read_timestamp(body, 8) if flags == 0b11 and header_len >= 10 else pts
        payload = body[start:]
        current = self._current.get(stream_id)
        if pts is not None and current is not None and (current[0] != pts or current[1] != dts):
            self._finish(stream_id, out)  # a new timestamp starts the next unit
            current = None
        if current is None:
            self._current[stream_id] = [pts, dts, [payload]]
        else:
            current[2].append(payload)

    def _finish(self, stream_id: int, out: list[AccessUnit]) -> None:
        current = self._current.pop(stream_id, None)
        if current is None:
            return
        data = b"".join(current[2])
        if data:
            out.append(make_unit(self.codecs, stream_id, current[0], current[1], data))


if _native is not None:
    class NativePsDemuxer(_native.PsDemuxer):
        """PythonPsDemuxer's feed/flush/lost, codecs and counters, in C; and feed_rtp, a run of RTP
        datagrams demuxed in one call (MediaStream.on_datagrams, tests/media/test_stream_native.py)."""

        __slots__ = ()

        def __init__(self) -> None:
            super().__init__(make_unit, STREAM_TYPES, MAX_BUFFER, AccessUnit)  # units built in C, as make_unit would

    PsDemuxer = NativePsDemuxer
else:
    NativePsDemuxer = None  # type: ignore[assignment,misc]
    PsDemuxer = PythonPsDemuxer  # type: ignore[misc]


# -- muxing -----------------------------------------------------------------------------------
def _pack_header(scr: int, mux_rate: int = 0x3FFFFF) -> bytes:
    scr &= (1 << 33) - 1
    b = bytearray(b"\x00\x00\x01\xba")
    b.append(0x40 | (((scr >> 30) & 0x07) << 3) | 0x04 | ((scr >> 28) & 0x03))
    b.append((scr >> 20) & 0xFF)
    b.append((((scr >> 15) & 0x1F) << 3) | 0x04 | ((scr >> 13) & 0x03))
    b.append((scr >> 5) & 0xFF)
    b.append(((scr & 0x1F) << 3) | 0x04)  # SCR extension 0
    b.append(0x01)
    b += bytes([(mux_rate >> 14) & 0xFF, (mux_rate >> 6) & 0xFF, ((mux_rate & 0x3F) << 2) | 0x03])
    b.append(0xF8)  # reserved, no stuffing
    return bytes(b)


def _system_header(streams: dict[int, str]) -> bytes:
    body = bytearray(b"\x80\x00\x01\x04\xe1\xff")  # rate bound, audio bound 1, video bound 1 (markers set)
    for stream_id in sorted(streams):
        body += bytes([stream_id, 0xE0 if stream_id >= 0xE0 else 0xC0, 0x00])  # buffer bound scale/size
    return b"\x00\x00\x01\xbb" + struct.pack(">H", len(body)) + bytes(body)


def program_stream_map(streams: dict[int, str], version: int = 0) -> bytes:
    entries = b"".join(bytes([CODEC_STREAM_TYPE[codec], stream_id, 0, 0]) for stream_id, codec in sorted(streams.items()))
    body = bytes([0x80 | (version & 0x1F), 0x01]) + b"\x00\x00" + struct.pack(">H", len(entries)) + entries
    length = len(body) + 4
    head = b"\x00\x00\x01\xbc" + struct.pack(">H", length)
    crc = zlib.crc32(head + body) & 0xFFFFFFFF  # carried for shape; receivers here do not check it
    return head + body + struct.pack(">I", crc)


def mux_ps(stream_id: int, data: bytes, pts: int, dts: int | None = None, *, streams: dict[int, str] | None = None,
           keyframe: bool = False) -> bytes:
    """One access unit as PS: pack header, system header and map before a key frame (when
    `streams` is given), then PES packets carrying `data`, the first with PTS (and DTS)."""
    out = [_pack_header(dts if dts is not None else pts)]
    if keyframe and streams:
        out += [_system_header(streams), program_stream_map(streams)]
    first = True
    for i in range(0, max(len(data), 1), _PES_PAYLOAD):
        chunk = data[i:i + _PES_PAYLOAD]
        if first:
            if dts is not None and dts != pts:
                header = bytes([0x80, 0xC0, 10]) + _write_timestamp(0b0011, pts) + _write_timestamp(0b0001, dts)
            else:
                header = bytes([0x80, 0x80, 5]) + _write_timestamp(0b0010, pts)
            first = False
        else:
            header = bytes([0x80, 0x00, 0])
        out.append(b"\x00\x00\x01" + bytes([stream_id]) + struct.pack(">H", len(header) + len(chunk)) + header + chunk)
    return b"".join(out)
