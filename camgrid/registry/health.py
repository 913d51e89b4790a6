"""Online state of every device, in memory, with write-back: the heart of the online rate.

- `seen()` (every keepalive or other message) is O(1): a dict store and a set insert. It writes
  nothing and awaits nothing.
- Timeouts are found with a deadline heap holding at most one live entry per online device. An
  entry is not moved when the device talks; when it comes due, the real deadline (last seen +
  timeout) is computed and the entry re-pushed if the device spoke meanwhile. A sweep therefore
  costs O(k log N) for the k entries due, and each online device costs one heap operation per
  timeout period, however often it sends keepalives.
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
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, func, select, update

from camgrid.bus import Event, EventBus
from camgrid.config import HealthSettings
from camgrid.registry._sql import WRITE_CHUNK, chunks
from camgrid.store.engine import utcnow
from camgrid.store.tables import devices

log = logging.getLogger(__name__)

REASON_RESTART = "no keepalive after restart"
REASON_TIMEOUT = "keepalive timeout"
MAX_BACKOFF_S = 30.0


class HealthTracker:
    def __init__(self, engine: Engine, bus: EventBus, settings: HealthSettings, *,
                 clock: Callable[[], float] = time.monotonic, wallclock: Callable[[], datetime] = utcnow) -> None:
        self._engine = engine
        self._bus = bus
        self._settings = settings
        self._clock = clock
        self._wallclock = wallclock
        self._known: set[str] = set()
        self._online: set[str] = set()
        self._last_seen: dict[str, float] = {}  # monotonic
        self._interval: dict[str, int] = {}  # devices that stated their own keepalive interval
        self._heap: list[tuple[float, str]] = []
        self._scheduled: dict[str, float] = {}  # device → deadline of its one live heap entry
        self._restored: set[str] = set()  # stored-online at start and silent since
        self._started_at = clock()
        self._transitions: dict[str, dict[str, Any]] = {}  # queued status writes, newest per device
        self._dirty: set[str] = set()  # devices whose last-seen time is due to be written
        self._seen_written: dict[str, float] = {}  # monotonic time of each device's stored last-seen
        self._wake: asyncio.Event | None = None
        self._write_lock: asyncio.Lock | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.write_failures = 0
        self.last_write_error: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """Load every approved device's stored state (one query) and start the sweep and writer."""
        rows = await asyncio.to_thread(self._load)
        self._started_at = self._clock()
        for device_id, status, interval in rows:
            if device_id in self._known:
                continue  # already reported since construction: that is newer than the database
            self._known.add(device_id)
            if interval:
                self._interval[device_id] = interval
            if status == "online":
                self._online.add(device_id)
                self._restored.add(device_id)
                self._schedule(device_id, self._deadline(device_id, self._started_at))
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
        written = self._seen_written
        self._dirty.update(d for d, t in self._last_seen.items() if t > written.get(d, -1e18))
        for delay in (0.2, 1.0, 0):
            if await self.flush():
                return
            if delay:
                await asyncio.sleep(delay)
        log.error("health: %d status changes and %d last-seen times could not be written at stop (%s)",
                  len(self._transitions), len(self._dirty), self.last_write_error)

    def _load(self) -> list[tuple[str, str, int | None]]:
        stmt = select(devices.c.id, devices.c.status, devices.c.keepalive_interval_s).where(
            devices.c.approval == "approved")
        with self._engine.connect() as conn:
            return [tuple(r) for r in conn.execute(stmt)]  # type: ignore[misc]

    # -- facts from signaling (hot path: no I/O, no awaits) -----------------------------------------
    def registered(self, device_id: str, *, keepalive_interval_s: int | None = None) -> None:
        if keepalive_interval_s:
            self._interval[device_id] = int(keepalive_interval_s)
        self._last_seen[device_id] = now = self._clock()
        self._mark_seen_dirty(device_id, now)
        self._restored.discard(device_id)
        if device_id in self._online:
            self._schedule(device_id, self._deadline(device_id, now))  # the interval may have shrunk
        else:
            self._set_online(device_id, "registered", now)

    def seen(self, device_id: str) -> None:
        self._last_seen[device_id] = now = self._clock()
        self._mark_seen_dirty(device_id, now)
        if device_id not in self._online:
            self._set_online(device_id, "message received", now)
        elif self._restored:
            self._restored.discard(device_id)

    def _mark_seen_dirty(self, device_id: str, now: float) -> None:
        if now - self._seen_written.get(device_id, -1e18) >= self._settings.last_seen_resolution_s:
            self._dirty.add(device_id)

    def unregistered(self, device_id: str, reason: str) -> None:
        self._known.add(device_id)
        self._restored.discard(device_id)
        if device_id in self._online:
            self._set_offline(device_id, reason)

    def forget(self, device_id: str) -> None:
        for collection in (self._known, self._online, self._restored, self._dirty):
            collection.discard(device_id)
        for mapping in (self._last_seen, self._interval, self._scheduled, self._transitions, self._seen_written):
            mapping.pop(device_id, None)  # a heap entry without a _scheduled match is ignored

    # -- queries -----------------------------------------------------------------------------------
    def is_online(self, device_id: str) -> bool:
        return device_id in self._online

    def counts(self) -> dict[str, int]:
        devices_n, online = len(self._known), len(self._online)
        return {"devices": devices_n, "online": online, "offline": devices_n - online}

    @property
    def pending_writes(self) -> int:
        return len(self._transitions) + len(self._dirty)

    def timeout_s(self, device_id: str) -> float:
        return float((self._interval.get(device_id) or self._settings.keepalive_interval_s) * self._settings.keepalive_count)

    # -- state machine -----------------------------------------------------------------------------
    def _deadline(self, device_id: str, now: float) -> float:
        if device_id in self._restored:
            return self._started_at + (self._settings.restart_grace_s or self.timeout_s(device_id))
        return self._last_seen.get(device_id, now) + self.timeout_s(device_id)

    def _schedule(self, device_id: str, deadline: float) -> None:
        current = self._scheduled.get(device_id)
        if current is None or deadline < current:
            heapq.heappush(self._heap, (deadline, device_id))
            self._scheduled[device_id] = deadline

    def _set_online(self, device_id: str, reason: str, now: float) -> None:
        self._known.add(device_id)
        self._online.add(device_id)
        self._schedule(device_id, self._deadline(device_id, now))
        self._transition(device_id, "online", reason)

    def _set_offline(self, device_id: str, reason: str, **data: Any) -> None:
        self._online.discard(device_id)
        self._transition(device_id, "offline", reason, **data)

    def _transition(self, device_id: str, status: str, reason: str, **data: Any) -> None:
        at = self._wallclock()
        seen = self._last_seen.get(device_id)
        seen_at = None
        if seen is not None:  # the status write stores the exact last-seen time too
            now = self._clock()
            seen_at = at - timedelta(seconds=max(0.0, now - seen))
            self._seen_written[device_id] = now
            self._dirty.discard(device_id)
        self._transitions[device_id] = {"b_id": device_id, "b_status": status, "b_at": at, "b_seen": seen_at}
        self._bus.publish(Event(f"device.{status}", device_id, {"reason": reason, **data}, at))
        if self._wake is not None:
            self._wake.set()

    def sweep(self) -> list[str]:
        """Mark devices whose deadline passed offline; returns their IDs. Cost: the entries due."""
        now = self._clock()
        heap, scheduled, went = self._heap, self._scheduled, []
        while heap and heap[0][0] <= now:
            deadline, device_id = heapq.heappop(heap)
            if scheduled.get(device_id) != deadline:
                continue  # superseded by an earlier entry, or the device was forgotten
            if device_id not in self._online:
                del scheduled[device_id]
                continue
            actual = self._deadline(device_id, now)
            if actual > now:  # it spoke since the entry was pushed
                heapq.heappush(heap, (actual, device_id))
                scheduled[device_id] = actual
                continue
            del scheduled[device_id]
            if device_id in self._restored:
                self._restored.discard(device_id)
                self._set_offline(device_id, REASON_RESTART)
            else:
                silent = now - self._last_seen.get(device_id, now)
                self._set_offline(device_id, REASON_TIMEOUT, silent_s=round(silent, 1),
                                  timeout_s=self.timeout_s(device_id))
            went.append(device_id)
        return went

    # -- write-back --------------------------------------------------------------------------------
    async def flush(self, *, last_seen: bool = True) -> bool:
        """Write queued transitions (and last-seen times) now; False if the database refused."""
        lock = self._write_lock or asyncio.Lock()
        async with lock:
            transitions, self._transitions = self._transitions, {}
            seen_ids: set[str] = set()
            if last_seen:
                seen_ids, self._dirty = self._dirty, set()
            now_m, now_w = self._clock(), self._wallclock()
            last = self._last_seen
            seen_rows = [{"b_id": d, "b_seen": now_w - timedelta(seconds=max(0.0, now_m - last[d]))}
                         for d in seen_ids if d in last]
            written = self._seen_written
            for row in seen_rows:
                written[row["b_id"]] = now_m
            if not transitions and not seen_rows:
                return True
            try:
                await asyncio.to_thread(self.write_batch, list(transitions.values()), seen_rows)
            except Exception as exc:  # keep everything; what arrived meanwhile is newer and wins
                for device_id, row in transitions.items():
                    self._transitions.setdefault(device_id, row)
                self._dirty.update(r["b_id"] for r in seen_rows)
                for row in seen_rows:
                    written.pop(row["b_id"], None)
                self.write_failures += 1
                self.last_write_error = f"{type(exc).__name__}: {exc}"[:300]
                log.warning("health: could not write %d status changes and %d last-seen times (%s); will retry",
                            len(transitions), len(seen_rows), self.last_write_error)
                return False
            return True

    def write_batch(self, transitions: list[dict[str, Any]], seen: list[dict[str, Any]]) -> None:
        """One transaction: status changes, then last-seen times, each as executemany."""
        with self._engine.begin() as conn:
            if transitions:
                stmt = update(devices).where(devices.c.id == bindparam("b_id")).values(
                    status=bindparam("b_status"), status_changed_at=bindparam("b_at"),
                    last_seen_at=func.coalesce(bindparam("b_seen"), devices.c.last_seen_at))
                for part in chunks(transitions, WRITE_CHUNK):
                    conn.execute(stmt, list(part))
            if seen:
                stmt = update(devices).where(devices.c.id == bindparam("b_id")).values(last_seen_at=bindparam("b_seen"))
                for part in chunks(seen, WRITE_CHUNK):
                    conn.execute(stmt, list(part))

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
