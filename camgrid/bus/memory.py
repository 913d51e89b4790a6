"""The event bus interface and its in-process implementation.

Publishing never blocks and never raises into the publisher: signaling hot paths publish
device transitions, and a slow subscriber must not stall them. Each subscriber has a bounded
queue; when it overflows the oldest events are dropped and counted. Subscribers that only take
note of an event (the event log, the alarm centre's intake) are plain functions run inside
publish() instead: no queue, no task switch.
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
InlineHandler = Callable[[Event], None]


class EventBus(Protocol):
    def publish(self, event: Event) -> None: ...
    def subscribe(self, prefix: str, handler: Handler, *, queue_size: int = 10000) -> None: ...
    def subscribe_inline(self, prefix: str, handler: InlineHandler) -> None: ...
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
        self._inline: list[tuple[str, InlineHandler]] = []
        self._routes: dict[str, tuple[tuple[tuple[str, InlineHandler], ...], tuple[_Subscriber, ...]]] = {}
        self._started = False
        self.inline_errors = 0

    def subscribe(self, prefix: str, handler: Handler, *, queue_size: int = 10000) -> None:
        sub = _Subscriber(prefix, handler, queue_size)
        self._subs.append(sub)
        self._routes.clear()
        if self._started:
            sub.task = asyncio.get_running_loop().create_task(sub.run())

    def subscribe_inline(self, prefix: str, handler: InlineHandler) -> None:
        """A plain function called inside publish(), for subscribers that only take note of an
        event (append it to a buffer, wake a worker): it must not block. It saves the task switch
        that a queued subscriber costs per event, which is most of the bus's cost when events come
        one at a time (a registration storm paced by the devices)."""
        self._inline.append((prefix, handler))
        self._routes.clear()

    def _route(self, kind: str) -> tuple[tuple[tuple[str, InlineHandler], ...], tuple[_Subscriber, ...]]:
        """The subscribers whose prefix the kind has, in subscription order; kept per kind (a
        handful of kinds make nearly every event) until the next subscription."""
        route = (tuple(entry for entry in self._inline if kind.startswith(entry[0])),
                 tuple(sub for sub in self._subs if kind.startswith(sub.prefix)))
        if len(self._routes) < 1024:  # bounded, should kinds ever come from data
            self._routes[kind] = route
        return route

    def publish(self, event: Event) -> None:
        inline, subs = self._routes.get(event.kind) or self._route(event.kind)
        for prefix, handler in inline:
            try:
                handler(event)
            except Exception:  # a broken subscriber must not reach the publisher
                self.inline_errors += 1
                log.exception("inline event handler for %r failed on %s", prefix, event.kind)
        for sub in subs:
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
