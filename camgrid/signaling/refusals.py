"""Registrations refused before any password is checked (an unknown device ID, a device with no
secret, an ID that is not one) leave a `sip.refused` event, so that an operator asked "why does
my new camera not come online?" finds its ID and address in the event log (GET /events
?kind=sip.refused) rather than only a counter. A device retries every few seconds, and anyone
can send REGISTERs with made-up IDs: one event per device ID and reason per `interval_s`, at most
`per_second` events a second in all, the rest only counted."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from camgrid.bus import Event, EventBus

NOTED_REASONS = frozenset({"unknown", "no_secret", "bad_id"})


class RefusalLog:
    def __init__(self, bus: EventBus, *, interval_s: float = 600.0, per_second: int = 10, remember: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.bus = bus
        self.interval_s = interval_s
        self.per_second = per_second
        self.remember = remember
        self.clock = clock
        self._last: OrderedDict[tuple[str, str], float] = OrderedDict()  # (device ID, reason) -> when noted
        self._second = -1
        self._in_second = 0
        self.suppressed = 0  # refusals not written as events (repeats, or over the rate)

    def note(self, device_id: str, reason: str, remote_addr: str) -> bool:
        """A refusal for `reason`; True when it became an event."""
        if reason not in NOTED_REASONS:
            return False
        key, now = (device_id[:64], reason), self.clock()
        last = self._last.get(key)
        second = int(now)
        if second != self._second:
            self._second, self._in_second = second, 0
        if (last is not None and now - last < self.interval_s) or self._in_second >= self.per_second:
            self.suppressed += 1
            return False
        self._in_second += 1
        self._last[key] = now
        self._last.move_to_end(key)
        while len(self._last) > self.remember:
            self._last.popitem(last=False)
        self.bus.publish(Event("sip.refused", key[0], {"remote_addr": remote_addr, "reason": reason}))
        return True
