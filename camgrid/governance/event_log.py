"""EventRecorder: keeps every bus event in the events table, written in batches.

Events are buffered and written off the event loop (asyncio.to_thread) every `interval_s`
or as soon as `batch_size` are waiting. When the database refuses a write, the events stay
buffered and the write is retried with backoff (up to MAX_BACKOFF_S), so an outage loses
nothing; the bus never waits. Only beyond `max_buffer` events are the oldest dropped (counted
in `dropped`, logged), so a long outage cannot exhaust memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from sqlalchemy import Engine, bindparam

from camgrid.bus.memory import Event, EventBus
from camgrid.store.bulk import BulkStatement
from camgrid.store.tables import events

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0


_INSERT = BulkStatement(events.insert().values({name: bindparam(name) for name in ("at", "kind", "subject", "data")}))

_PLAIN = frozenset({str, int, float, bool, type(None)})


def event_row(event: Event) -> dict[str, Any]:
    raw = event.data or {}
    if isinstance(raw, dict) and all(type(k) is str and type(v) in _PLAIN for k, v in raw.items()):
        data = dict(raw)  # already JSON (most events): no round trip on the event loop
    else:
        try:
            data = json.loads(json.dumps(raw, default=str))
        except (TypeError, ValueError):
            data = {"repr": repr(event.data)[:2000]}
    return {"at": event.at, "kind": event.kind[:64], "subject": (event.subject or "")[:64], "data": data}


class EventRecorder:
    def __init__(self, engine: Engine, bus: EventBus, *, interval_s: float = 0.5, batch_size: int = 500,
                 max_buffer: int = 200_000) -> None:
        self.engine = engine
        self.bus = bus
        self.interval_s = interval_s
        self.batch_size = batch_size
        self.max_buffer = max_buffer
        self.written = 0
        self.write_failures = 0  # failed write attempts (the events themselves are kept)
        self.dropped = 0  # events lost: over max_buffer during an outage, or unwritable at stop
        self.last_error: str | None = None
        self._buffer: list[dict[str, Any]] = []
        self._full = asyncio.Event()
        self._queued = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._subscribed = False

    async def start(self) -> None:
        if self._task is not None:
            return
        if not self._subscribed:
            self.bus.subscribe_inline("", self._on_event)
            self._subscribed = True
        self._full = asyncio.Event()
        self._queued = asyncio.Event()
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name="event-recorder")

    async def stop(self) -> None:
        """Stop the writer and write what is still buffered."""
        if self._task is not None:
            self._stopping = True  # Python 3.11's wait_for can swallow a cancel that races a wake-up
            self._full.set()
            self._queued.set()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for delay in (0.2, 1.0, 0):
            if await self.flush():
                return
            if delay:
                await asyncio.sleep(delay)
        self.dropped += len(self._buffer)
        log.error("event log: %d events could not be stored at stop (%s)", len(self._buffer), self.last_error)
        self._buffer = []

    def _on_event(self, event: Event) -> None:
        self._buffer.append(event_row(event))
        self._queued.set()
        if len(self._buffer) > self.max_buffer:
            over = len(self._buffer) - self.max_buffer
            del self._buffer[:over]
            if self.dropped == 0 or (self.dropped + over) // 10_000 > self.dropped // 10_000:
                log.error("event log: database unavailable and %d events buffered; dropping the oldest "
                          "(%d dropped so far)", self.max_buffer, self.dropped + over)
            self.dropped += over
        if len(self._buffer) >= self.batch_size:
            self._full.set()

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            if not self._buffer:  # idle: no timer until an event arrives
                self._queued.clear()
                await self._queued.wait()
            delay = self.interval_s if not failures else min(MAX_BACKOFF_S, self.interval_s * 2 ** failures)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), delay)
            if self._stopping:
                return  # stop() writes what is left
            self._full.clear()
            failures = 0 if await self.flush() else failures + 1

    async def flush(self) -> bool:
        """Write everything buffered; False (events kept) when the database refused."""
        while self._buffer:
            batch = self._buffer[:self.batch_size]
            try:
                await asyncio.to_thread(self._write, batch)
            except Exception as exc:
                self.write_failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                if self.write_failures == 1 or self.write_failures % 100 == 0:
                    log.warning("event log: could not store %d events (%s); kept and retried",
                                len(self._buffer), self.last_error)
                return False
            del self._buffer[:len(batch)]
            self.written += len(batch)
        return True

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def _write(self, batch: list[dict[str, Any]]) -> None:
        with self.engine.begin() as conn:
            _INSERT.execute(conn, batch)
