"""Who is registered, where they can be reached, and when their registration runs out.

The table lives in memory (the hot path reads it for every keepalive). It is loaded from the
database at start, so a platform restart keeps every unexpired registration: devices that
keep sending keepalives need not re-register and are never shown offline by a restart.

Per-device facts sit in flat arrays indexed by the device's slot (camgrid.registry.slots), so
a registration allocates no long-lived Python object: expiry, IPv4 address (packed), port,
transport and GB version are numbers in arrays. Only TCP registrations keep their `Peer` (it
holds the connection), and a host that is not dotted IPv4 is kept in a small table. The
Contact is not kept here: requests go to the address the REGISTER came from (Via
received/rport), and the contact is stored in the database by the registration writer.

The table also keeps the digest answer each device last registered with (a fingerprint and
its nonce's time), so the registrar can tell a captured REGISTER sent again (see `replayed`):
nonces are stateless and valid for minutes, so the digest alone does not stop a replay.
"""

from __future__ import annotations

import heapq
import socket
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from camgrid.gb28181.sip.transport import Peer
from camgrid.registry.slots import DeviceSlots, grow

NEVER = -1e18
_NONE, _UDP, _TCP = 0, 1, 2
_KINDS = {"udp": _UDP, "tcp": _TCP}
_BUCKET_S = 1.0  # expiries are found within a second (the sweep runs once a second)


@dataclass(slots=True)
class Registration:
    """A view of one registration, made on request (not what the table stores)."""

    device_id: str
    peer: Peer
    expires_at: float  # monotonic
    gb_version: str


class RegistrationTable:
    def __init__(self, clock: Callable[[], float] = time.monotonic, *, slots: DeviceSlots | None = None) -> None:
        self._clock = clock
        self.slots = slots if slots is not None else DeviceSlots()
        self._expires = array("d")
        self._ip4 = array("I")  # packed IPv4 address, when _host is 0
        self._host = array("I")  # 1 + index into _hosts for other hosts (names, IPv6), else 0
        self._port = array("H")
        self._kind = bytearray()
        self._version = array("H")  # index into _versions
        self._answer = array("Q")  # fingerprint of the digest answer last accepted, 0 for none
        self._nonce_at = array("d")  # when that answer's nonce was made (NonceFactory's clock), 0 for none
        self._hosts: list[str] = []
        self._host_ix: dict[str, int] = {}
        self._encoded: dict[str, tuple[int, int]] = {}  # address text -> _encode_host(), a bounded cache
        self._versions: list[str] = ["2.0", "3.0"]
        self._version_ix: dict[str, int] = {"2.0": 0, "3.0": 1}
        self._tcp: dict[int, Peer] = {}
        self._buckets: dict[int, array] = {}
        self._bucket_keys: list[int] = []
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def _slot(self, device_id: str) -> int:
        slot = self.slots.slot(device_id)
        if slot >= len(self._kind):
            size = slot + 1
            grow(self._expires, size, NEVER)
            grow(self._nonce_at, size, 0.0)
            for values in (self._ip4, self._host, self._port, self._version, self._answer):
                grow(values, size, 0)
            grow(self._kind, size, _NONE)
        return slot

    def _live_slot(self, device_id: str) -> int | None:
        slot = self.slots.find(device_id)
        if slot is None or slot >= len(self._kind) or self._expires[slot] <= self._clock():
            return None
        return slot

    # -- addresses ---------------------------------------------------------------------------------
    def _encode_host(self, host: str) -> tuple[int, int]:
        """(packed IPv4, 0) for dotted IPv4, else (0, 1 + index in the host table)."""
        known = self._encoded.get(host)
        if known is not None:
            return known
        encoded = self._encode_new_host(host)
        if len(self._encoded) >= 65_536:  # bounded: addresses come from the network
            self._encoded.clear()
        self._encoded[host] = encoded
        return encoded

    def _encode_new_host(self, host: str) -> tuple[int, int]:
        if host.count(".") == 3:
            try:
                return int.from_bytes(socket.inet_aton(host), "big"), 0
            except OSError:
                pass
        ix = self._host_ix.get(host)
        if ix is None:
            ix = self._host_ix[host] = len(self._hosts)
            self._hosts.append(host)
        return 0, ix + 1

    def _store_peer(self, slot: int, peer: Peer) -> None:
        self._kind[slot] = _KINDS.get(peer.transport, _UDP)
        if peer.transport == "tcp":
            self._tcp[slot] = peer
        else:
            self._tcp.pop(slot, None)
        self._ip4[slot], self._host[slot] = self._encode_host(peer.host)
        self._port[slot] = peer.port

    def _peer(self, slot: int) -> Peer:
        tcp = self._tcp.get(slot)
        if tcp is not None:
            return tcp
        host_ix = self._host[slot]
        host = self._hosts[host_ix - 1] if host_ix else socket.inet_ntoa(self._ip4[slot].to_bytes(4, "big"))
        return Peer("tcp" if self._kind[slot] == _TCP else "udp", host, self._port[slot])

    def _view(self, slot: int) -> Registration:
        return Registration(self.slots.ids[slot], self._peer(slot), self._expires[slot], self._versions[self._version[slot]])

    # -- queries -----------------------------------------------------------------------------------
    def get(self, device_id: str) -> Registration | None:
        slot = self._live_slot(device_id)
        return None if slot is None else self._view(slot)

    def is_registered(self, device_id: str) -> bool:
        return self._live_slot(device_id) is not None

    def peer_of(self, device_id: str) -> Peer | None:
        """Where requests to the device go, or None when it is not registered."""
        slot = self._live_slot(device_id)
        return None if slot is None else self._peer(slot)

    def touch(self, device_id: str, peer: Peer) -> bool:
        """For a message from a device: False when it is not registered; otherwise its address
        follows `peer` (a NAT binding that moved) and True. The keepalive path: no allocation
        unless the address changed."""
        slot = self._live_slot(device_id)
        if slot is None:
            return False
        if peer.transport == "tcp":
            if self._tcp.get(slot) is not peer:
                self._store_peer(slot, peer)
        elif self._port[slot] != peer.port or self._kind[slot] != _UDP or self._encode_host(peer.host) != (
                self._ip4[slot], self._host[slot]):
            self._store_peer(slot, peer)
        return True

    def touch_udp(self, device_id: str, host: str, port: int) -> bool:
        """touch() for a datagram, without building a Peer unless the address moved."""
        slot = self._live_slot(device_id)
        if slot is None:
            return False
        if self._port[slot] != port or self._kind[slot] != _UDP or self._encode_host(host) != (
                self._ip4[slot], self._host[slot]):
            self._store_peer(slot, Peer("udp", host, port))
        return True

    def replayed(self, device_id: str, nonce_at: float, fingerprint: int, peer: Peer, now: float) -> bool:
        """True when a verified digest answer is a replay rather than the device: its nonce is
        older than the one the device last registered with (unless that one lies in the future:
        the clock stepped back), or it is the very answer the device last registered with, sent
        from elsewhere than the live registration's address or after the registration ended.
        A device that renews with an unchanged Authorization from its own address is not one."""
        slot = self.slots.find(device_id)
        if slot is None or slot >= len(self._answer):
            return False
        last_at = self._nonce_at[slot]
        if nonce_at < last_at <= now:
            return True
        if not fingerprint or self._answer[slot] != fingerprint:
            return False
        if self._live_slot(device_id) is None:
            return True
        if peer.transport == "tcp":
            return self._tcp.get(slot) is not peer
        return self._kind[slot] != _UDP or self._port[slot] != peer.port or self._encode_host(peer.host) != (
            self._ip4[slot], self._host[slot])

    def note_answer(self, device_id: str, nonce_at: float, fingerprint: int) -> None:
        """Remember the digest answer (and its nonce's time) a registration or an unregistration
        was accepted with."""
        slot = self.slots.find(device_id)
        if slot is not None and slot < len(self._answer):
            self._nonce_at[slot] = nonce_at
            self._answer[slot] = fingerprint

    # -- changes -----------------------------------------------------------------------------------
    def put(self, device_id: str, peer: Peer, expires_at: float, gb_version: str = "2.0") -> str:
        """Add or renew a registration; returns the table's own copy of the device ID."""
        slot = self._slot(device_id)
        self._put(slot, peer, expires_at, gb_version)
        return self.slots.ids[slot]

    def register(self, device_id: str, peer: Peer, expires_at: float, gb_version: str, nonce_at: float,
                 fingerprint: int) -> tuple[str, bool]:
        """put() and note_answer() in one pass, for an accepted REGISTER: the table's own copy of
        the device ID, and whether the device was registered before (is_registered)."""
        slot = self._slot(device_id)
        was_registered = self._expires[slot] > self._clock()
        self._put(slot, peer, expires_at, gb_version)
        self._nonce_at[slot] = nonce_at
        self._answer[slot] = fingerprint
        return self.slots.ids[slot], was_registered

    def _put(self, slot: int, peer: Peer, expires_at: float, gb_version: str) -> None:
        if self._expires[slot] == NEVER:
            self._count += 1
        self._expires[slot] = expires_at
        self._store_peer(slot, peer)
        ix = self._version_ix.get(gb_version)
        if ix is None and len(self._versions) < 64:
            ix = self._version_ix[gb_version] = len(self._versions)
            self._versions.append(gb_version)
        self._version[slot] = ix or 0
        key = int(expires_at // _BUCKET_S) + 1
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = array("I")
            heapq.heappush(self._bucket_keys, key)
        bucket.append(slot)

    def remove(self, device_id: str) -> Registration | None:
        slot = self.slots.find(device_id)
        if slot is None or slot >= len(self._kind) or self._expires[slot] == NEVER:
            return None
        view = self._view(slot)
        self._clear(slot)
        return view

    def _clear(self, slot: int) -> None:
        self._expires[slot] = NEVER
        self._kind[slot] = _NONE
        self._tcp.pop(slot, None)
        self._count -= 1

    def pop_expired(self) -> list[Registration]:
        """Registrations whose time ran out since the last call, each once."""
        now = self._clock()
        due = int(now // _BUCKET_S)
        out = []
        keys, buckets, expires = self._bucket_keys, self._buckets, self._expires
        while keys and keys[0] <= due + 1:
            key = keys[0]
            bucket = buckets[key]
            keep = array("I")
            for slot in bucket:
                at = expires[slot]
                if at == NEVER or int(at // _BUCKET_S) + 1 != key:
                    continue  # renewed into a later bucket, or removed
                if at <= now:
                    out.append(self._view(slot))
                    self._clear(slot)
                else:
                    keep.append(slot)  # due later within this second
            if keep:
                buckets[key] = keep
                break
            heapq.heappop(keys)
            del buckets[key]
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
            self.put(row["id"], peer, now + remaining, row.get("gb_version") or "2.0")
            n += 1
        return n
