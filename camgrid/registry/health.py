"""Online state of every device, in memory, with write-back: the heart of the online rate.

- State lives in flat arrays indexed by the device's slot (camgrid.registry.slots): flags,
  last-seen, stored-last-seen and deadline per device, no Python object per fact.
- `seen()` (every keepalive or other message) is O(1): an array store and a flag test. It
  writes nothing and awaits nothing.
- Timeouts are found with deadline buckets (one array of slots per quarter second, a small heap
  of bucket keys) holding at most one live entry per online device. An entry is not moved when
  the device talks; when it comes due, the real deadline (last seen + timeout) is computed and
  the entry re-filed if the device spoke meanwhile. A sweep therefore costs the entries due,
  and each online device costs one re-filing per timeout period, however often it sends
  keepalives.
- Transitions (online/offline) are published on the bus at once and queued for a single writer
  task, which waits `transition_batch_s` for more to arrive and then writes whatever is queued in
  one executemany, in a worker thread. Last-seen times
  are written in one executemany every `flush_interval_s`, each device's only when its stored
  one is older than `last_seen_resolution_s` (transitions store the exact time). When the database fails, everything
  stays queued (newer facts replace older ones per device) and is retried with backoff.
- After a platform restart, devices stored as online stay online for a grace period measured
  from start, so a device that keeps talking is never shown offline because the platform
  restarted; one that stays silent goes offline with reason "no keepalive after restart".
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from array import array
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, func, select, update

from camgrid.bus import Event, EventBus
from camgrid.config import HealthSettings
from camgrid.registry.slots import DeviceSlots, grow
from camgrid.store.bulk import BulkStatement
from camgrid.store.engine import utcnow
from camgrid.store.tables import devices

log = logging.getLogger(__name__)

REASON_RESTART = "no keepalive after restart"
REASON_TIMEOUT = "keepalive timeout"
MAX_BACKOFF_S = 30.0

# The stored last-seen is kept when a transition carries none (b_seen NULL); the bind is typed so
# SQLite stores the time in the same text form as every other datetime column.
_STATUS = BulkStatement(update(devices).where(devices.c.id == bindparam("b_id")).values(
    status=bindparam("b_status"), status_changed_at=bindparam("b_at"),
    last_seen_at=func.coalesce(bindparam("b_seen", type_=devices.c.last_seen_at.type), devices.c.last_seen_at)))
_LAST_SEEN = BulkStatement(update(devices).where(devices.c.id == bindparam("b_id")).values(last_seen_at=bindparam("b_seen")))

NEVER = -1e18  # "no time" in the float arrays (monotonic clocks can be any value, never this one)
BUCKET_S = 0.25  # deadline bucket width; a timeout fires at most this much late
# per-device flag bits
KNOWN, ONLINE, RESTORED, DIRTY = 1, 2, 4, 8


class HealthTracker:
    def __init__(self, engine: Engine, bus: EventBus, settings: HealthSettings, *,
                 clock: Callable[[], float] = time.monotonic, wallclock: Callable[[], datetime] = utcnow,
                 slots: DeviceSlots | None = None) -> None:
        self._engine = engine
        self._bus = bus
        self._settings = settings
        self._clock = clock
        self._wallclock = wallclock
        self.slots = slots if slots is not None else DeviceSlots()
        self._flags = bytearray()
        self._last_seen = array("d")  # monotonic
        self._seen_written = array("d")  # monotonic time of each device's stored last-seen
        self._scheduled = array("d")  # deadline of each device's one live bucket entry
        self._n_known = self._n_online = self._n_restored = self._n_dirty = 0
        self._interval: dict[int, int] = {}  # devices with their own keepalive interval
        self._count: dict[int, int] = {}  # devices with their own count of missed keepalives
        self._buckets: dict[int, array] = {}  # bucket key → slots filed there
        self._bucket_keys: list[int] = []  # heap of the keys in _buckets
        self._dirty = array("I")  # slots whose last-seen time is due to be written (DIRTY flag set)
        self._started_at = clock()
        self._transitions: dict[str, dict[str, Any]] = {}  # queued status writes, newest per device
        self._wake: asyncio.Event | None = None
        self._write_lock: asyncio.Lock | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.write_failures = 0
        self.last_write_error: str | None = None

    def _slot(self, device_id: str) -> int:
        slot = self.slots.slot(device_id)
        if slot >= len(self._flags):
            size = slot + 1
            grow(self._flags, size, 0)
            for values in (self._last_seen, self._seen_written, self._scheduled):
                grow(values, size, NEVER)
        return slot

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Load every approved device's stored state (one query) and start the sweep and writer."""
        rows = await asyncio.to_thread(self._load)
        self._started_at = self._clock()
        for device_id, status, interval, count in rows:
            slot = self._slot(device_id)
            if self._flags[slot] & KNOWN:
                continue  # already reported since construction: that is newer than the database
            self._set_flag(slot, KNOWN)
            if interval:
                self._interval[slot] = interval
            if count:
                self._count[slot] = count
            if status == "online":
                self._set_flag(slot, ONLINE)
                self._set_flag(slot, RESTORED)
                self._schedule(slot, self._deadline(slot, self._started_at))
        self._wake = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._stopping = False
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._sweep_loop()), loop.create_task(self._writer_loop())]

    async def stop(self) -> None:
        """Stop the tasks and write whatever is queued (a few attempts if the database is failing)."""
        lock = self._write_lock or asyncio.Lock()
        self._stopping = True  # Python 3.11's wait_for can swallow a cancel that races a wake-up
        if self._wake is not None:
            self._wake.set()
        async with lock:  # never cancel the writer halfway through a write: wait for the batch to land
            for task in self._tasks:
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        # At stop every last-seen time newer than the stored one is written, whatever the resolution.
        last, written = self._last_seen, self._seen_written
        for slot in range(len(self._flags)):
            if last[slot] > written[slot]:
                self._mark_dirty(slot)
        for delay in (0.2, 1.0, 0):
            if await self.flush():
                return
            if delay:
                await asyncio.sleep(delay)
        log.error("health: %d status changes and %d last-seen times could not be written at stop (%s)",
                  len(self._transitions), self._n_dirty, self.last_write_error)

    def _load(self) -> list[tuple[str, str, int | None, int | None]]:
        stmt = select(devices.c.id, devices.c.status, devices.c.keepalive_interval_s, devices.c.keepalive_count).where(
            devices.c.approval == "approved")
        with self._engine.connect() as conn:
            return [tuple(r) for r in conn.execute(stmt)]  # type: ignore[misc]

    # -- flags -------------------------------------------------------------------------------------
    def _set_flag(self, slot: int, bit: int) -> None:
        flags = self._flags[slot]
        if flags & bit:
            return
        self._flags[slot] = flags | bit
        if bit == ONLINE:
            self._n_online += 1
        elif bit == KNOWN:
            self._n_known += 1
        elif bit == RESTORED:
            self._n_restored += 1

    def _clear_flag(self, slot: int, bit: int) -> None:
        flags = self._flags[slot]
        if not flags & bit:
            return
        self._flags[slot] = flags & ~bit
        if bit == ONLINE:
            self._n_online -= 1
        elif bit == KNOWN:
            self._n_known -= 1
        elif bit == RESTORED:
            self._n_restored -= 1

    def _mark_dirty(self, slot: int) -> None:
        if not self._flags[slot] & DIRTY:
            self._flags[slot] |= DIRTY
            self._n_dirty += 1
            self._dirty.append(slot)

    def _clear_dirty(self, slot: int) -> None:
        """The slot's entry in _dirty stays and is skipped when its flag is gone."""
        if self._flags[slot] & DIRTY:
            self._flags[slot] &= ~DIRTY
            self._n_dirty -= 1

    # -- facts from signaling (hot path: no I/O, no awaits) -----------------------------------------
    def registered(self, device_id: str, *, keepalive_interval_s: int | None = None) -> None:
        slot = self._slot(device_id)
        if keepalive_interval_s:
            self._interval[slot] = int(keepalive_interval_s)
        self._last_seen[slot] = now = self._clock()
        self._mark_seen_dirty(slot, now)
        self._clear_flag(slot, RESTORED)
        if self._flags[slot] & ONLINE:
            self._schedule(slot, self._deadline(slot, now))  # the interval may have shrunk
        else:
            self._set_online(slot, "registered", now)

    def set_keepalive(self, device_id: str, *, interval_s: int | None, count: int | None) -> None:
        """The device now sends keepalives every interval_s and counts as offline after `count`
        missed ones (None: the configured defaults); its timeout follows at once."""
        slot = self._slot(device_id)
        for table, value in ((self._interval, interval_s), (self._count, count)):
            if value:
                table[slot] = int(value)
            else:
                table.pop(slot, None)
        if self._flags[slot] & ONLINE:
            self._schedule(slot, self._deadline(slot, self._clock()))  # a later deadline is found by the sweep

    def keepalive_of(self, device_id: str) -> tuple[int, int]:
        """(interval, count) in force for the device."""
        slot = self.slots.find(device_id)
        slot = -1 if slot is None else slot
        return (self._interval.get(slot) or self._settings.keepalive_interval_s,
                self._count.get(slot) or self._settings.keepalive_count)

    def seen(self, device_id: str) -> None:
        slot = self.slots.find(device_id)
        if slot is None or slot >= len(self._flags):
            slot = self._slot(device_id)
        self._last_seen[slot] = now = self._clock()
        self._mark_seen_dirty(slot, now)
        flags = self._flags[slot]
        if not flags & ONLINE:
            self._set_online(slot, "message received", now)
        elif flags & RESTORED:
            self._clear_flag(slot, RESTORED)

    def _mark_seen_dirty(self, slot: int, now: float) -> None:
        if now - self._seen_written[slot] >= self._settings.last_seen_resolution_s:
            self._mark_dirty(slot)

    def unregistered(self, device_id: str, reason: str) -> None:
        slot = self._slot(device_id)
        self._set_flag(slot, KNOWN)
        self._clear_flag(slot, RESTORED)
        if self._flags[slot] & ONLINE:
            self._set_offline(slot, reason)

    def forget(self, device_id: str) -> None:
        slot = self.slots.find(device_id)
        if slot is None or slot >= len(self._flags):
            return
        for bit in (KNOWN, ONLINE, RESTORED):
            self._clear_flag(slot, bit)
        self._clear_dirty(slot)
        self._last_seen[slot] = self._seen_written[slot] = self._scheduled[slot] = NEVER  # bucket entries go stale
        self._interval.pop(slot, None)
        self._count.pop(slot, None)
        self._transitions.pop(self.slots.ids[slot], None)

    # -- queries -----------------------------------------------------------------------------------
    def is_online(self, device_id: str) -> bool:
        slot = self.slots.find(device_id)
        return slot is not None and slot < len(self._flags) and bool(self._flags[slot] & ONLINE)

    def counts(self) -> dict[str, int]:
        return {"devices": self._n_known, "online": self._n_online, "offline": self._n_known - self._n_online}

    @property
    def pending_writes(self) -> int:
        return len(self._transitions) + self._n_dirty

    def timeout_s(self, device_id: str) -> float:
        slot = self.slots.find(device_id)
        return self._timeout(slot if slot is not None else -1)

    def _timeout(self, slot: int) -> float:
        return float((self._interval.get(slot) or self._settings.keepalive_interval_s)
                     * (self._count.get(slot) or self._settings.keepalive_count))

    # -- state machine -----------------------------------------------------------------------------
    def _deadline(self, slot: int, now: float) -> float:
        if self._flags[slot] & RESTORED:
            return self._started_at + (self._settings.restart_grace_s or self._timeout(slot))
        seen = self._last_seen[slot]
        return (now if seen == NEVER else seen) + self._timeout(slot)

    @staticmethod
    def _bucket(deadline: float) -> int:
        return int(deadline // BUCKET_S) + 1  # the bucket after the deadline: never fires early

    def _file(self, slot: int, deadline: float) -> None:
        key = self._bucket(deadline)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = array("I")
            heapq.heappush(self._bucket_keys, key)
        bucket.append(slot)

    def _schedule(self, slot: int, deadline: float) -> None:
        current = self._scheduled[slot]
        if current == NEVER or deadline < current:
            self._scheduled[slot] = deadline
            self._file(slot, deadline)

    def _set_online(self, slot: int, reason: str, now: float) -> None:
        self._set_flag(slot, KNOWN)
        self._set_flag(slot, ONLINE)
        self._schedule(slot, self._deadline(slot, now))
        self._transition(slot, "online", reason)

    def _set_offline(self, slot: int, reason: str, **data: Any) -> None:
        self._clear_flag(slot, ONLINE)
        self._transition(slot, "offline", reason, **data)

    def _transition(self, slot: int, status: str, reason: str, **data: Any) -> None:
        device_id = self.slots.ids[slot]
        at = self._wallclock()
        seen = self._last_seen[slot]
        seen_at = None
        if seen != NEVER:  # the status write stores the exact last-seen time too
            now = self._clock()
            seen_at = at - timedelta(seconds=max(0.0, now - seen))
            self._seen_written[slot] = now
            self._clear_dirty(slot)
        self._transitions[device_id] = {"b_id": device_id, "b_status": status, "b_at": at, "b_seen": seen_at}
        self._bus.publish(Event(f"device.{status}", device_id, {"reason": reason, **data}, at))
        if self._wake is not None:
            self._wake.set()

    def sweep(self) -> list[str]:
        """Mark devices whose deadline passed offline; returns their IDs. Cost: the entries due."""
        now = self._clock()
        keys, buckets, scheduled, went = self._bucket_keys, self._buckets, self._scheduled, []
        due = self._bucket(now) - 1  # buckets whose whole span has passed
        while keys and keys[0] <= due:
            key = heapq.heappop(keys)
            for slot in buckets.pop(key):
                deadline = scheduled[slot]
                if deadline == NEVER or self._bucket(deadline) != key:
                    continue  # superseded by an earlier entry, or the device was forgotten
                if not self._flags[slot] & ONLINE:
                    scheduled[slot] = NEVER
                    continue
                actual = self._deadline(slot, now)
                if actual > now:  # it spoke since the entry was filed
                    scheduled[slot] = actual
                    self._file(slot, actual)
                    continue
                scheduled[slot] = NEVER
                if self._flags[slot] & RESTORED:
                    self._clear_flag(slot, RESTORED)
                    self._set_offline(slot, REASON_RESTART)
                else:
                    seen = self._last_seen[slot]
                    silent = now - (now if seen == NEVER else seen)
                    self._set_offline(slot, REASON_TIMEOUT, silent_s=round(silent, 1), timeout_s=self._timeout(slot))
                went.append(self.slots.ids[slot])
        return went

    # -- write-back --------------------------------------------------------------------------------
    async def flush(self, *, last_seen: bool = True) -> bool:
        """Write queued transitions (and last-seen times) now; False if the database refused."""
        lock = self._write_lock or asyncio.Lock()
        async with lock:
            transitions, self._transitions = self._transitions, {}
            now_m, now_w = self._clock(), self._wallclock()
            flags, last, written, ids = self._flags, self._last_seen, self._seen_written, self.slots.ids
            seen_slots: list[int] = []
            if last_seen:
                dirty, self._dirty = self._dirty, array("I")
                for slot in dirty:
                    if flags[slot] & DIRTY:
                        self._clear_dirty(slot)
                        if last[slot] != NEVER:
                            seen_slots.append(slot)
            seen_rows = [{"b_id": ids[slot], "b_seen": now_w - timedelta(seconds=max(0.0, now_m - last[slot]))}
                         for slot in seen_slots]
            previous = [written[slot] for slot in seen_slots]
            for slot in seen_slots:
                written[slot] = now_m
            if not transitions and not seen_rows:
                return True
            try:
                await asyncio.to_thread(self.write_batch, list(transitions.values()), seen_rows)
            except Exception as exc:  # keep everything; what arrived meanwhile is newer and wins
                for device_id, row in transitions.items():
                    self._transitions.setdefault(device_id, row)
                for slot, before in zip(seen_slots, previous):
                    written[slot] = before
                    self._mark_dirty(slot)
                self.write_failures += 1
                self.last_write_error = f"{type(exc).__name__}: {exc}"[:300]
                log.warning("health: could not write %d status changes and %d last-seen times (%s); will retry",
                            len(transitions), len(seen_rows), self.last_write_error)
                return False
            return True

    def write_batch(self, transitions: list[dict[str, Any]], seen: list[dict[str, Any]]) -> None:
        """One transaction: status changes, then last-seen times, each as executemany."""
        with self._engine.begin() as conn:
            _STATUS.execute(conn, transitions)
            _LAST_SEEN.execute(conn, seen)

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.sweep_interval_s)
            try:
                self.sweep()
            except Exception:  # never let one bad sweep end online detection
                log.exception("health: sweep failed")

    async def _writer_loop(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        interval = self._settings.flush_interval_s
        next_flush = loop.time() + interval
        backoff = 0.0
        while not self._stopping:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_flush - loop.time()))
            if self._stopping:
                return  # stop() writes what is left
            if self._transitions and self._settings.transition_batch_s:
                await asyncio.sleep(self._settings.transition_batch_s)  # let a burst of changes share one write
            self._wake.clear()
            flush_seen = loop.time() >= next_flush
            if flush_seen:
                next_flush = loop.time() + interval
            try:
                ok = await self.flush(last_seen=flush_seen)
            except Exception:
                log.exception("health: write-back failed")
                ok = False
            if ok:
                backoff = 0.0
            else:
                backoff = min(MAX_BACKOFF_S, max(0.5, backoff * 2))
                await asyncio.sleep(backoff)
                self._wake.set()  # retry what is queued
