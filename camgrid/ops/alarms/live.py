"""The live alarm stream for consoles: every listener gets each change as it happens.

Each listener has a bounded queue; a console that does not read (a stalled tab) loses its
oldest messages, counted, and never slows the centre. Listeners and the centre share one event
loop (the platform's).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

QUEUE_SIZE = 500


class LiveHub:
    def __init__(self) -> None:
        self._listeners: set[asyncio.Queue[dict[str, Any]]] = set()
        self.sent = 0
        self.dropped = 0

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    def publish(self, message: dict[str, Any]) -> None:
        for queue in self._listeners:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(message)
            self.sent += 1

    @contextlib.asynccontextmanager
    async def listen(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._listeners.add(queue)
        try:
            yield queue
        finally:
            self._listeners.discard(queue)
