"""Device secrets (HA1) in memory for the REGISTER path, compactly.

Each provisioned device costs its HA1 digests as raw bytes in two flat buffers (16 + 32 bytes)
plus a few bytes of flags, indexed by its slot (camgrid.registry.slots); DeviceAuth objects
are made on demand for the one REGISTER being checked. Unknown IDs are remembered for a while
in a bounded table, so a stranger that keeps trying costs no database query per attempt and a
spray of random IDs cannot grow memory without limit.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from collections.abc import Callable

from sqlalchemy import Engine

from camgrid.registry.devices import DeviceAuth, get_device_auth, iter_device_auth
from camgrid.registry.slots import DeviceSlots, grow

MAX_ABSENT = 10_000  # unknown IDs remembered at most
_LOADED, _HAS_MD5, _HAS_SHA, _APPROVED = 1, 2, 4, 8
_MD5_LEN, _SHA_LEN = 16, 32


def _digest(hex_text: str | None, size: int) -> bytes | None:
    if hex_text is None or len(hex_text) != 2 * size:
        return None
    try:
        return bytes.fromhex(hex_text)
    except ValueError:
        return None


class AuthCache:
    """peek() answers from memory; fetch() reads one device from the database and keeps it."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.monotonic, *,
                 slots: DeviceSlots | None = None) -> None:
        self._engine = engine
        self._clock = clock
        self.slots = slots if slots is not None else DeviceSlots()
        self._flags = bytearray()
        self._md5 = bytearray()
        self._sha = bytearray()
        self._realm = array("H")
        self._loaded_at = array("d")
        self._realms: list[str | None] = [None]
        self._realm_ix: dict[str | None, int] = {None: 0}
        self._unusual: dict[int, DeviceAuth] = {}  # HA1 values that are not plain hex digests, kept as given
        self._absent: dict[str, float] = {}  # unknown ID → when the database said so

    def load_all(self) -> int:
        now = self._clock()
        n = 0
        for auth in iter_device_auth(self._engine):
            self._store(auth, now)
            n += 1
        return n

    def _store(self, auth: DeviceAuth, now: float) -> None:
        slot = self.slots.slot(auth.device_id)
        if slot >= len(self._flags):
            size = slot + 1
            grow(self._flags, size, 0)
            grow(self._realm, size, 0)
            grow(self._loaded_at, size, 0.0)
            grow(self._md5, size * _MD5_LEN, 0)
            grow(self._sha, size * _SHA_LEN, 0)
        md5, sha = _digest(auth.ha1_md5, _MD5_LEN), _digest(auth.ha1_sha256, _SHA_LEN)
        if (auth.ha1_md5 and md5 is None) or (auth.ha1_sha256 and sha is None):
            self._unusual[slot] = auth
        else:
            self._unusual.pop(slot, None)
        flags = _LOADED | (_APPROVED if auth.approval == "approved" else 0)
        if md5 is not None:
            self._md5[slot * _MD5_LEN:(slot + 1) * _MD5_LEN] = md5
            flags |= _HAS_MD5
        if sha is not None:
            self._sha[slot * _SHA_LEN:(slot + 1) * _SHA_LEN] = sha
            flags |= _HAS_SHA
        realm = self._realm_ix.get(auth.realm)
        if realm is None and len(self._realms) < 65535:
            realm = self._realm_ix[auth.realm] = len(self._realms)
            self._realms.append(auth.realm)
        self._realm[slot] = realm or 0
        self._flags[slot] = flags
        self._loaded_at[slot] = now
        self._absent.pop(auth.device_id, None)

    def peek(self, device_id: str) -> tuple[DeviceAuth | None, float] | None:
        """(auth, loaded at) from memory; (None, t) for an ID the database did not know at t;
        None when nothing is known (ask fetch)."""
        slot = self.slots.find(device_id)
        if slot is None or slot >= len(self._flags) or not self._flags[slot] & _LOADED:
            absent_at = self._absent.get(device_id)
            return None if absent_at is None else (None, absent_at)
        unusual = self._unusual.get(slot)
        if unusual is not None:
            return unusual, self._loaded_at[slot]
        flags = self._flags[slot]
        md5 = self._md5[slot * _MD5_LEN:(slot + 1) * _MD5_LEN].hex() if flags & _HAS_MD5 else None
        sha = self._sha[slot * _SHA_LEN:(slot + 1) * _SHA_LEN].hex() if flags & _HAS_SHA else None
        approval = "approved" if flags & _APPROVED else "pending"
        return DeviceAuth(self.slots.ids[slot], md5, sha, self._realms[self._realm[slot]], approval), self._loaded_at[slot]

    def native_tables(self) -> dict:
        """The buffers the native REGISTER decision reads (sip._sipfast.RegisterDecider): it takes
        a device whose flags have all of `need_flags` and that is not in `unusual`. The objects
        are only ever grown in place, so the references stay good."""
        return {"slots": self.slots.by_id(), "flags": self._flags, "md5": self._md5, "realm_ix": self._realm,
                "realms": self._realms, "unusual": self._unusual, "need_flags": _LOADED | _HAS_MD5 | _APPROVED}

    async def fetch(self, device_id: str) -> DeviceAuth | None:
        auth = await asyncio.to_thread(get_device_auth, self._engine, device_id)
        now = self._clock()
        if auth is None:
            self._forget_slot(device_id)
            if len(self._absent) >= MAX_ABSENT:
                del self._absent[next(iter(self._absent))]  # the oldest
            self._absent[device_id] = now
        else:
            self._store(auth, now)
        return auth

    def forget(self, device_id: str) -> None:
        self._absent.pop(device_id, None)
        self._forget_slot(device_id)

    def _forget_slot(self, device_id: str) -> None:
        slot = self.slots.find(device_id)
        if slot is not None and slot < len(self._flags):
            self._flags[slot] = 0
            self._unusual.pop(slot, None)
