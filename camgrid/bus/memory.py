"""The event bus interface and its in-process implementation.

Publishing never blocks and never raises into the publisher: signaling hot paths publish
device transitions, and a slow subscriber must not stall them. Each subscriber has a bounded
queue; when it overflows the oldest events are dropped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # dotted: device.online, device.offline, device.registered, sip.ban, catalog.updated ...
    subject: str = ""  # usually a device or channel ID
    data: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


Handler = Callable[[Event], Awaitable[None]]


class EventBus(Protocol):
    def publish(self, event: Event) -> None: ...
    def subscribe(self, prefix: str, handler: Handler, *, queue_size: int = 10000) -> None: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class _Subscriber:
    def __init__(self, prefix: str, handler: Handler, queue_size: int) -> None:
        self.prefix = prefix
        self.handler = handler
        self.queue: asyncio.Queue[Event] = asyncio.Queue(queue_size)
        self.dropped = 0
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        while True:
            event = await self.queue.get()
            try:
                await self.handler(event)
            except Exception:  # a broken subscriber must not kill the bus
                log.exception("event handler for %r failed on %s", self.prefix, event.kind)
            finally:
                self.queue.task_done()


class MemoryBus:
    """In-process bus for the embedded default."""

    def __init__(self) -> None:
        self._subs: list[_Subscriber] = []
        self._started = False

    def subscribe(self, prefix: str, handler: Handler, *, queue_size: int = 10000) -> None:
        sub = _Subscriber(prefix, handler, queue_size)
        self._subs.append(sub)
        if self._started:
            sub.task = asyncio.get_running_loop().create_task(sub.run())

    def publish(self, event: Event) -> None:
        for sub in self._subs:
            if not event.kind.startswith(sub.prefix):
                continue
            if sub.queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    sub.queue.get_nowait()
                    sub.queue.task_done()
                sub.dropped += 1
            sub.queue.put_nowait(event)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for sub in self._subs:
            if sub.task is None:
                sub.task = loop.create_task(sub.run())
        self._started = True

    async def drain(self) -> None:
        """Wait until every queued event has been handled (tests, orderly stop)."""
        for sub in self._subs:
            await sub.queue.join()

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.drain(), 5)
        for sub in self._subs:
            if sub.task:
                sub.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sub.task
                sub.task = None
        self._started = False
