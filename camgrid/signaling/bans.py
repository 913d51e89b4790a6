"""Temporary bans after repeated digest failures, by source address and by device ID."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class BanList:
    def __init__(self, failures: int, window_s: float, duration_s: float, *, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        self.failures = failures
        self.window_s = window_s
        self.duration_s = duration_s
        self._clock = clock
        self._max_keys = max_keys
        self._recent: dict[str, deque[float]] = {}
        self._banned_until: dict[str, float] = {}
        self.bans_total = 0

    def is_banned(self, key: str) -> bool:
        until = self._banned_until.get(key)
        if until is None:
            return False
        if until <= self._clock():
            del self._banned_until[key]
            return False
        return True

    def native_table(self) -> dict[str, float]:
        """Bans by key, for the native REGISTER decision, which leaves every key found here
        (expired or not) to is_banned."""
        return self._banned_until

    def failure(self, key: str) -> bool:
        """Count one failure; True when this failure starts a ban."""
        now = self._clock()
        q = self._recent.get(key)
        if q is None:
            if len(self._recent) >= self._max_keys:
                self._prune(now)
            q = self._recent[key] = deque()
        q.append(now)
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if len(q) >= self.failures:
            del self._recent[key]
            self._banned_until[key] = now + self.duration_s
            self.bans_total += 1
            return True
        return False

    def success(self, key: str) -> None:
        self._recent.pop(key, None)

    def active(self) -> int:
        now = self._clock()
        return sum(1 for until in self._banned_until.values() if until > now)

    def _prune(self, now: float) -> None:
        stale = [k for k, q in self._recent.items() if not q or q[-1] <= now - self.window_s]
        for k in stale:
            del self._recent[k]
        if len(self._recent) >= self._max_keys:  # still full: drop the oldest half
            for k in list(self._recent)[: self._max_keys // 2]:
                del self._recent[k]
