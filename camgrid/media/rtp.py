"""RTP packets (RFC 3550) and RTP over TCP framing (RFC 4571), as GB/T 28181 devices send them.

Pure: bytes in, values out. The ingest path parses millions of packets, so `parse_rtp` reads
the fixed header with one struct call and slices the payload without copying more than once.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_VERSION = 2
MAX_TCP_FRAME = 0xFFFF  # RFC 4571: a two-byte length
_HEADER = struct.Struct(">BBHII")


class RtpError(ValueError):
    """A datagram or frame that is not a usable RTP packet."""


@dataclass(slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None  # (profile, data)

    def to_bytes(self) -> bytes:
        first = (RTP_VERSION << 6) | (0x10 if self.extension else 0) | len(self.csrcs)
        second = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        out = [_HEADER.pack(first, second, self.sequence & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc & 0xFFFFFFFF)]
        out.extend(struct.pack(">I", c) for c in self.csrcs)
        if self.extension:
            profile, data = self.extension
            if len(data) % 4:
                raise RtpError("an RTP header extension must be a whole number of 32-bit words")
            out.append(struct.pack(">HH", profile, len(data) // 4) + data)
        out.append(self.payload)
        return b"".join(out)


def parse_rtp(data: bytes) -> RtpPacket:
    """One RTP packet; RtpError for anything that is not one (wrong version, truncated header,
    CSRC list or extension past the end, padding longer than the packet)."""
    if len(data) < 12:
        raise RtpError(f"{len(data)} bytes is shorter than an RTP header")
    first, second, sequence, timestamp, ssrc = _HEADER.unpack_from(data)
    if first == 0x80:  # version 2 without padding, extension or CSRCs: nearly every packet
        payload = data[12:] if type(data) is bytes else bytes(data[12:])
        return RtpPacket(second & 0x7F, sequence, timestamp, ssrc, payload, second > 0x7F)
    if first >> 6 != RTP_VERSION:
        raise RtpError(f"RTP version {first >> 6}, expected 2")
    offset = 12 + 4 * (first & 0x0F)
    if offset > len(data):
        raise RtpError("the CSRC list runs past the end of the packet")
    csrcs = struct.unpack_from(f">{first & 0x0F}I", data, 12) if first & 0x0F else ()
    extension = None
    if first & 0x10:
        if offset + 4 > len(data):
            raise RtpError("the header extension runs past the end of the packet")
        profile, words = struct.unpack_from(">HH", data, offset)
        end = offset + 4 + 4 * words
        if end > len(data):
            raise RtpError("the header extension runs past the end of the packet")
        extension = (profile, bytes(data[offset + 4:end]))
        offset = end
    stop = len(data)
    if first & 0x20:
        padding = data[-1]
        if padding == 0 or stop - padding < offset:
            raise RtpError(f"padding of {padding} bytes does not fit the packet")
        stop -= padding
    return RtpPacket(second & 0x7F, sequence, timestamp, ssrc, bytes(data[offset:stop]), bool(second & 0x80),
                     tuple(csrcs), extension)


def seq_after(a: int, b: int) -> bool:
    """True when sequence number a comes after b (16-bit wrap-around, RFC 3550 A.1)."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


def frame_tcp(packet: bytes) -> bytes:
    """An RTP packet with its RFC 4571 length prefix."""
    if len(packet) > MAX_TCP_FRAME:
        raise RtpError(f"an RTP packet of {len(packet)} bytes does not fit a 2-byte length")
    return len(packet).to_bytes(2, "big") + packet


class TcpDeframer:
    """RFC 4571 framing on a byte stream: feed whatever recv() returned, get whole packets.

    A zero length is skipped (some devices send it as a keep-alive). Memory is bounded by one
    frame (at most 64 KiB) however the stream is cut.
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buffer
        buf += data
        out: list[bytes] = []
        pos = 0
        while len(buf) - pos >= 2:
            length = (buf[pos] << 8) | buf[pos + 1]
            if len(buf) - pos - 2 < length:
                break
            if length:
                out.append(bytes(buf[pos + 2:pos + 2 + length]))
            pos += 2 + length
        if pos:
            del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        """Bytes held for an incomplete frame."""
        return len(self._buffer)
