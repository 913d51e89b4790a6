"""EventRecorder: keeps every bus event in the events table, written in batches.

Events are buffered and written off the event loop (asyncio.to_thread) every `interval_s`
or as soon as `batch_size` are waiting. A write that fails is logged and its batch dropped:
the bus must keep flowing even when the database is briefly unavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from sqlalchemy import Engine

from camgrid.bus.memory import Event, EventBus
from camgrid.store.tables import events

log = logging.getLogger(__name__)


def event_row(event: Event) -> dict[str, Any]:
    try:
        data = json.loads(json.dumps(event.data or {}, default=str))
    except (TypeError, ValueError):
        data = {"repr": repr(event.data)[:2000]}
    return {"at": event.at, "kind": event.kind[:64], "subject": (event.subject or "")[:64], "data": data}


class EventRecorder:
    def __init__(self, engine: Engine, bus: EventBus, *, interval_s: float = 0.5, batch_size: int = 500) -> None:
        self.engine = engine
        self.bus = bus
        self.interval_s = interval_s
        self.batch_size = batch_size
        self.written = 0
        self.failed = 0
        self._buffer: list[dict[str, Any]] = []
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._subscribed = False

    async def start(self) -> None:
        if self._task is not None:
            return
        if not self._subscribed:
            self.bus.subscribe("", self._on_event)
            self._subscribed = True
        self._full = asyncio.Event()
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name="event-recorder")

    async def stop(self) -> None:
        """Stop the writer and write what is still buffered."""
        if self._task is not None:
            self._stopping = True  # Python 3.11's wait_for can swallow a cancel that races a wake-up
            self._full.set()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def _on_event(self, event: Event) -> None:
        self._buffer.append(event_row(event))
        if len(self._buffer) >= self.batch_size:
            self._full.set()

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self.interval_s)
            if self._stopping:
                return  # stop() writes what is left
            self._full.clear()
            await self.flush()

    async def flush(self) -> None:
        while self._buffer:
            batch, self._buffer = self._buffer[:self.batch_size], self._buffer[self.batch_size:]
            try:
                await asyncio.to_thread(self._write, batch)
                self.written += len(batch)
            except Exception:
                self.failed += len(batch)
                log.exception("could not store %d events; they are dropped", len(batch))

    def _write(self, batch: list[dict[str, Any]]) -> None:
        with self.engine.begin() as conn:
            conn.execute(events.insert(), batch)
