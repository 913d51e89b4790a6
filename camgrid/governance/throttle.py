"""Login throttling: failed logins counted per username and per source address.

After `max_failures` failures within `window_s` for either key, further attempts are refused
until the oldest of those failures leaves the window. Memory is bounded: at most `max_keys`
keys are tracked, the least recently failed are forgotten first.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class LoginThrottle:
    def __init__(self, max_failures: int, window_s: float, clock: Callable[[], float] = time.monotonic, *,
                 max_keys: int = 100_000) -> None:
        if max_failures < 1 or window_s <= 0:
            raise ValueError("max_failures must be >= 1 and window_s > 0")
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    @staticmethod
    def _keys(username: str | None, addr: str | None) -> list[str]:
        keys = []
        if username:
            keys.append("u:" + username.strip().lower()[:128])
        if addr:
            keys.append("a:" + addr[:128])
        return keys

    def _retry_after(self, key: str, now: float) -> float:
        times = self._failures.get(key)
        if not times:
            return 0.0
        while times and now - times[0] >= self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0.0
        if len(times) < self.max_failures:
            return 0.0
        return self.window_s - (now - times[0])

    def check(self, username: str | None, addr: str | None) -> int:
        """Seconds to wait before the next attempt is allowed; 0 when it is allowed now."""
        now = self.clock()
        wait = max((self._retry_after(k, now) for k in self._keys(username, addr)), default=0.0)
        return math.ceil(wait) if wait > 0 else 0

    def failure(self, username: str | None, addr: str | None) -> None:
        now = self.clock()
        for key in self._keys(username, addr):
            times = self._failures.pop(key, None) or deque(maxlen=self.max_failures)
            times.append(now)
            self._failures[key] = times  # most recent last
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def success(self, username: str | None, addr: str | None) -> None:
        """A good login clears its username's failures. The address keeps its count: one valid
        account must not reset the count of guesses against other accounts from that address."""
        for key in self._keys(username, None):
            self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)
