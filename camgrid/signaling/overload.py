"""Overload protection: shed new registrations while the event loop is behind.

When more devices register at once than the platform can answer (a district's power comes back,
a core switch reboots), UDP clients retransmit every 0.5 s, 1 s, 2 s, ... and each retransmission
costs as much as the original: throughput collapses and memory fills with the backlog. The
platform watches how late its own event loop wakes up and, on Linux, how full its UDP receive
queue is (a loop that keeps its timers on time can still fall behind the socket); when either
stays high (lag above `lag_threshold_s`, or the queue over `backlog_fraction` of its size) it answers new
REGISTERs (those without credentials: the cheap first leg) with 503 and a randomised
Retry-After, and keeps serving keepalives and the second leg of registrations already under way.
It takes `sustained` late wake-ups in a row to call it overload (one GC pause or one slow call is
not), and recovers with hysteresis: the lag must stay under half the threshold for `calm_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable


class LoadMonitor:
    def __init__(self, lag_threshold_s: float, *, interval_s: float = 0.5, calm_s: float = 2.0, sustained: int = 3,
                 clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[bool, float], None] | None = None,
                 backlog: Callable[[], tuple[int, int] | None] | None = None, backlog_fraction: float = 0.25) -> None:
        self.lag_threshold_s = lag_threshold_s
        self.interval_s = interval_s
        self.calm_s = calm_s
        self.sustained = sustained
        self._backlog = backlog
        self.backlog_fraction = backlog_fraction
        self.backlog_bytes = 0
        self._late = 0  # consecutive measurements above the threshold
        self._clock = clock
        self._on_change = on_change
        self.lag_s = 0.0  # the latest measured lag
        self.max_lag_s = 0.0
        self.overloaded = False
        self.episodes = 0
        self._calm_since: float | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.lag_threshold_s > 0

    async def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="load-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            before = self._clock()
            await asyncio.sleep(self.interval_s)
            lag = self._clock() - before - self.interval_s
            queued = self._backlog() if self._backlog is not None else None
            if queued is not None:
                self.backlog_bytes, size = queued
                if size and self.backlog_bytes > size * self.backlog_fraction:
                    lag = max(lag, self.lag_threshold_s * 1.01)  # counts as a late wake-up
            self.observe(lag)

    def observe(self, lag_s: float) -> None:
        """One measurement of how late the loop woke up."""
        now = self._clock()
        self.lag_s = lag_s = max(0.0, lag_s)
        self.max_lag_s = max(self.max_lag_s, lag_s)
        if lag_s > self.lag_threshold_s:
            self._calm_since = None
            self._late += 1
            if not self.overloaded and self._late >= self.sustained:
                self.overloaded = True
                self.episodes += 1
                if self._on_change:
                    self._on_change(True, lag_s)
        else:
            self._late = 0
        if lag_s <= self.lag_threshold_s and self.overloaded:
            if lag_s >= self.lag_threshold_s / 2:
                self._calm_since = None
            elif self._calm_since is None:
                self._calm_since = now
            elif now - self._calm_since >= self.calm_s:
                self.overloaded = False
                self._calm_since = None
                if self._on_change:
                    self._on_change(False, lag_s)
