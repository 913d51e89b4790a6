"""Waiting for MANSCDP answers: single responses by (device, CmdType, SN) and paged answers."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable

from camgrid.gb28181.manscdp import CatalogAssembler, ManscdpMessage, PagedAssembler


class PendingQueries:
    """Futures for queries whose answer arrives as a separate MESSAGE from the device."""

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, str, int], asyncio.Future[ManscdpMessage]] = {}
        self._sn = itertools.count(int(time.time()) % 100000 + 1)

    def next_sn(self) -> int:
        return next(self._sn)

    def expect(self, device_id: str, cmd_type: str, sn: int) -> asyncio.Future[ManscdpMessage]:
        fut: asyncio.Future[ManscdpMessage] = asyncio.get_running_loop().create_future()
        self._waiting[(device_id, cmd_type, sn)] = fut
        fut.add_done_callback(lambda _f, k=(device_id, cmd_type, sn): self._waiting.pop(k, None))
        return fut

    def resolve(self, device_id: str, msg: ManscdpMessage) -> bool:
        fut = self._waiting.get((device_id, msg.cmd_type, msg.sn))
        if fut is None:
            # Some devices answer with the channel's ID or their own SN; match any single waiter.
            candidates = [k for k in self._waiting if k[0] == device_id and k[1] == msg.cmd_type]
            if len(candidates) != 1:
                return False
            fut = self._waiting[candidates[0]]
        if not fut.done():
            fut.set_result(msg)
        return True


class PagedSession:
    """One paged answer (Catalog, RecordInfo) being assembled; `done` is set when complete."""

    def __init__(self, device_id: str, sn: int, assembler_cls: type[PagedAssembler] = CatalogAssembler,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.device_id = device_id
        self.sn = sn
        self._clock = clock
        self.assembler = assembler_cls(device_id, sn, clock())
        self.done = asyncio.Event()
        self.last_page_at = clock()

    def feed(self, msg: ManscdpMessage) -> None:
        now = self._clock()
        self.last_page_at = now
        self.assembler.feed(msg, now)
        if self.assembler.complete:
            self.done.set()

    async def wait(self, page_timeout_s: float) -> None:
        """Until complete, or until no page has arrived for page_timeout_s."""
        while not self.done.is_set():
            remaining = self.last_page_at + page_timeout_s - self._clock()
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(self.done.wait(), remaining)
            except asyncio.TimeoutError:
                continue
