"""Who is registered, where they can be reached, and when their registration runs out.

The table lives in memory (the hot path reads it for every keepalive). It is loaded from the
database at start, so a platform restart keeps every unexpired registration: devices that
keep sending keepalives need not re-register and are never shown offline by a restart.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from camgrid.gb28181.sip.transport import Peer


@dataclass(slots=True)
class Registration:
    device_id: str
    peer: Peer
    contact: str
    expires_at: float  # monotonic
    gb_version: str


class RegistrationTable:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._by_id: dict[str, Registration] = {}
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, device_id: str) -> Registration | None:
        reg = self._by_id.get(device_id)
        if reg is not None and reg.expires_at <= self._clock():
            return None
        return reg

    def put(self, reg: Registration) -> None:
        self._by_id[reg.device_id] = reg
        heapq.heappush(self._heap, (reg.expires_at, reg.device_id))

    def remove(self, device_id: str) -> Registration | None:
        return self._by_id.pop(device_id, None)

    def pop_expired(self) -> list[Registration]:
        """Registrations whose time ran out since the last call (lazy-deletion heap)."""
        now = self._clock()
        out = []
        while self._heap and self._heap[0][0] <= now:
            at, device_id = heapq.heappop(self._heap)
            reg = self._by_id.get(device_id)
            if reg is not None and reg.expires_at == at:
                del self._by_id[device_id]
                out.append(reg)
        return out

    def restore(self, rows: list[dict], now_wall: datetime | None = None) -> int:
        """Load unexpired registrations from stored device rows (register_expires_at, remote_addr, transport)."""
        now_wall = now_wall or datetime.now(UTC)
        now = self._clock()
        n = 0
        for row in rows:
            exp = row.get("register_expires_at")
            addr = row.get("remote_addr") or ""
            if exp is None or ":" not in addr:
                continue
            if exp.tzinfo is None:
                exp = exp.replace(tzinfo=UTC)
            remaining = (exp - now_wall).total_seconds()
            if remaining <= 0:
                continue
            host, _, port = addr.rpartition(":")
            try:
                peer = Peer(row.get("transport") or "udp", host.strip("[]"), int(port))
            except ValueError:
                continue
            self.put(Registration(row["id"], peer, row.get("contact") or "", now + remaining, row.get("gb_version") or "2.0"))
            n += 1
        return n
