"""Flap detection: a pure state machine per device, with an injectable clock.

A device that goes offline `threshold` times within `window_s` is flapping. From then on its
offline and online transitions raise no offline alarms and clear none; each offline adds to the
one flapping alarm instead. When it has made no transition for `stable_s`, it is stable again:
the flapping alarm clears, and if the device is offline at that moment a normal offline alarm
is raised (it went down and stayed down). Memory: one small entry per device with recent
transitions, dropped when it is quiet.

The state is in memory and timed by the detector's clock; `restore` seeds it after a restart from
what the database kept (the open flapping alarms, recent transitions: see AlarmCentre.start), so
a flapping alarm open at the restart clears after `stable_s` of quiet as it would have without it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

NORMAL = "normal"  # not flapping: let the offline alarm / clear through
STARTED = "started"  # this offline made the device flapping: raise the flapping alarm
FLAPPING = "flapping"  # already flapping: suppress the normal alarm / clear


@dataclass(slots=True)
class _Device:
    offline_at: deque[float] = field(default_factory=deque)
    flapping: bool = False
    last_change: float = 0.0
    online: bool = True


class FlapDetector:
    def __init__(self, threshold: int, window_s: float, stable_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if threshold < 2:
            raise ValueError("a flap threshold below 2 would call every offline device flapping")
        self.threshold = threshold
        self.window_s = window_s
        self.stable_s = stable_s
        self.clock = clock
        self._devices: dict[str, _Device] = {}

    def transition(self, device_id: str, online: bool) -> str:
        """Note a transition now; NORMAL, STARTED or FLAPPING (see the module doc)."""
        now = self.clock()
        dev = self._devices.get(device_id)
        if dev is None:
            dev = self._devices[device_id] = _Device()
        dev.last_change = now
        dev.online = online
        while dev.offline_at and dev.offline_at[0] <= now - self.window_s:
            dev.offline_at.popleft()
        if dev.flapping:
            if not online:
                dev.offline_at.append(now)
            return FLAPPING
        if online:
            return NORMAL
        dev.offline_at.append(now)
        if len(dev.offline_at) >= self.threshold:
            dev.flapping = True
            return STARTED
        return NORMAL

    def restore(self, device_id: str, *, flapping: bool, online: bool, offline_ages: Iterable[float] = (),
                quiet_s: float = 0.0) -> None:
        """Seed one device's state from before a restart: `offline_ages` are seconds since each of
        its recent offlines (those older than the window are ignored), `quiet_s` the seconds of
        quiet already seen since its last transition (0: count from now), `online` its state now.
        Replaces what is known of the device; a device neither flapping nor with a recent offline
        is not kept."""
        now = self.clock()
        recent = sorted(a for a in offline_ages if 0 <= a < self.window_s)
        if not flapping and not recent:
            self._devices.pop(device_id, None)
            return
        dev = _Device(deque(now - a for a in reversed(recent)), flapping, now - max(0.0, quiet_s), online)
        self._devices[device_id] = dev

    def offline_count(self, device_id: str) -> int:
        dev = self._devices.get(device_id)
        return len(dev.offline_at) if dev else 0

    def is_flapping(self, device_id: str) -> bool:
        dev = self._devices.get(device_id)
        return bool(dev and dev.flapping)

    def tick(self) -> list[tuple[str, bool]]:
        """Devices that became stable since the last tick, as (device_id, online now); forgets
        devices with nothing left in their window."""
        now = self.clock()
        stable: list[tuple[str, bool]] = []
        for device_id, dev in list(self._devices.items()):
            if dev.flapping and now - dev.last_change >= self.stable_s:
                dev.flapping = False
                dev.offline_at.clear()
                stable.append((device_id, dev.online))
            if not dev.flapping:
                while dev.offline_at and dev.offline_at[0] <= now - self.window_s:
                    dev.offline_at.popleft()
                if not dev.offline_at:
                    del self._devices[device_id]
        return stable

    def __len__(self) -> int:
        return len(self._devices)
