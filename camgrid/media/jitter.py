"""A reorder (jitter) buffer for RTP over UDP: packets out in sequence order, losses named.

Packets that arrive out of order are held until the missing one comes, at most `latency_s`
after the first held packet arrived or until `capacity` packets wait; then the gap is declared
lost (a `Lost` item, so the demuxer can drop the frame it cut) and delivery goes on. Late and
duplicate packets are dropped and counted (a copy of a packet already delivered counts as late).
Sequence numbers wrap at 65,536. Pure: the caller passes the time, which must not go backwards.
"""

from __future__ import annotations

from dataclasses import dataclass

from camgrid.media.rtp import RtpPacket


@dataclass(frozen=True, slots=True)
class Lost:
    first_sequence: int
    count: int


def _distance(a: int, b: int) -> int:
    """How far a is ahead of b (0..65535)."""
    return (a - b) & 0xFFFF


class JitterBuffer:
    def __init__(self, *, latency_s: float = 0.2, capacity: int = 512) -> None:
        self.latency_s = latency_s
        self.capacity = capacity
        self._next: int | None = None
        self._held: dict[int, tuple[RtpPacket, float]] = {}
        self.delivered = self.lost = self.late = self.duplicates = 0

    def push(self, packet: RtpPacket, now: float) -> list[RtpPacket | Lost]:
        seq = packet.sequence & 0xFFFF
        if self._next is None:
            self._next = seq
        ahead = _distance(seq, self._next)
        if ahead >= 0x8000:  # behind what was already delivered or declared lost
            self.late += 1
            return []
        if seq in self._held:
            self.duplicates += 1
            return []
        self._held[seq] = (packet, now)
        return self._release(now)

    def poll(self, now: float) -> list[RtpPacket | Lost]:
        """Call now and then without packets: releases what waited past the latency."""
        return self._release(now)

    def flush(self) -> list[RtpPacket | Lost]:
        """Everything held, gaps declared (end of stream)."""
        return self._release(float("inf"), force=True)

    @property
    def held(self) -> int:
        return len(self._held)

    @property
    def in_order(self) -> int | None:
        """The sequence number a packet must carry to pass straight through (nothing is held);
        None while packets wait or before the first one."""
        return self._next if not self._held else None

    def passed(self, count: int) -> None:
        """`count` packets numbered from `in_order` on went straight through: what `push` would
        have counted, for a caller that delivered them itself (MediaStream.on_datagrams)."""
        assert self._next is not None and not self._held
        self.delivered += count
        self._next = (self._next + count) & 0xFFFF

    def _release(self, now: float, force: bool = False) -> list[RtpPacket | Lost]:
        out: list[RtpPacket | Lost] = []
        held = self._held
        while held:
            assert self._next is not None
            item = held.pop(self._next, None)
            if item is not None:
                out.append(item[0])
                self.delivered += 1
                self._next = (self._next + 1) & 0xFFFF
                continue
            oldest = next(iter(held.values()))[1]  # insertion order is arrival order: O(1)
            if not force and len(held) < self.capacity and now - oldest < self.latency_s:
                break  # keep waiting for the missing packet
            nearest = min(held, key=lambda s: _distance(s, self._next))  # type: ignore[arg-type]
            gap = _distance(nearest, self._next)
            out.append(Lost(self._next, gap))
            self.lost += gap
            self._next = nearest
        return out
