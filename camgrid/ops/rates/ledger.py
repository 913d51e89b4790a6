"""Time-weighted availability of every channel over one day: the ledger behind the online,
intactness and HD rates.

Pure: facts in (a device up or down, a channel's own status, a fault opened or cleared, a
measured resolution, a channel appearing or leaving), each with its time in epoch seconds;
seconds out. No I/O and no clock of its own.

State lives in numpy arrays indexed by a channel's slot. A fact first settles the seconds since
the slot's last fact into its accumulators (observed, online, intact) according to the state
that held during them, then changes the state. A device's fact settles all of its channels at
once. `totals(at)` settles a copy up to `at`, so the running day can be read at any moment
without changing it. A fact dated before the slot's last one counts from the last one (events
can arrive slightly out of order; none is counted twice).

A channel is *online* while its device is online and its own status (catalog / notify) is ON;
*intact* while online with no open fault (a VQD finding, or VLOST / DEFECT from the catalog).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CATALOG_FAULTS = frozenset({"vlost", "defect"})


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """What a channel is grouped by in the rates (kept per day, so history keeps its grouping)."""
    channel_id: str
    device_id: str
    point_class: int = 0  # 1 class one, 2 class two, 0 unclassified
    organisation_id: str = ""
    manufacturer: str = ""
    type_code: str = ""


@dataclass(slots=True)
class ChannelState:
    """A channel's state at a moment: what a day starts from and ends with."""
    device_up: bool = False
    channel_up: bool = True
    faults: frozenset[str] = field(default_factory=frozenset)
    width: int = 0
    height: int = 0


@dataclass(frozen=True, slots=True)
class Totals:
    """Seconds per slot, settled up to a moment."""
    observed: np.ndarray
    online: np.ndarray
    intact: np.ndarray


class DayLedger:
    def __init__(self, start: float, end: float) -> None:
        if end <= start:
            raise ValueError("a day must end after it starts")
        self.start, self.end = float(start), float(end)
        self.infos: list[ChannelInfo] = []
        self.slot_of: dict[str, int] = {}
        self._device_slots: dict[str, list[int]] = {}
        self._device_up: dict[str, bool] = {}
        self._faults: dict[int, set[str]] = {}
        self._n = 0
        self.version = 0  # changes whenever a channel's grouping (or the set of slots) does
        cap = 64
        self._last = np.zeros(cap)  # when each slot was last settled
        self._acc_observed = np.zeros(cap)
        self._acc_online = np.zeros(cap)
        self._acc_intact = np.zeros(cap)
        self._observing = np.zeros(cap, dtype=bool)
        self._dev_up = np.zeros(cap, dtype=bool)  # the device's state, copied per slot for vector work
        self._ch_up = np.zeros(cap, dtype=bool)
        self._faulty = np.zeros(cap, dtype=bool)
        self.width = np.zeros(cap, dtype=np.int32)
        self.height = np.zeros(cap, dtype=np.int32)

    def __len__(self) -> int:
        return self._n

    # -- channels ----------------------------------------------------------------------------------
    def add_channel(self, info: ChannelInfo, state: ChannelState, observed_from: float | None = None) -> int:
        """A channel counted from `observed_from` (default: the day's start). Adding a channel
        already present updates its grouping and, if it had left, counts it again from then."""
        at = self._clip(self.start if observed_from is None else observed_from)
        slot = self.slot_of.get(info.channel_id)
        if slot is not None:
            self._settle_one(slot, at)
            old = self.infos[slot]
            if old.device_id != info.device_id:
                self._device_slots[old.device_id].remove(slot)
                self._device_slots.setdefault(info.device_id, []).append(slot)
                self._dev_up[slot] = self._device_up.get(info.device_id, bool(state.device_up))
            if old != info:
                self.infos[slot] = info
                self.version += 1
            self._observing[slot] = True
            return slot
        slot = self._grow()
        self.version += 1
        self.infos.append(info)
        self.slot_of[info.channel_id] = slot
        self._device_slots.setdefault(info.device_id, []).append(slot)
        device_up = self._device_up.setdefault(info.device_id, bool(state.device_up))
        self._last[slot] = at
        self._observing[slot] = True
        self._dev_up[slot] = device_up
        self._ch_up[slot] = bool(state.channel_up)
        if state.faults:
            self._faults[slot] = set(state.faults)
            self._faulty[slot] = True
        self.width[slot], self.height[slot] = state.width, state.height
        return slot

    def remove_channel(self, channel_id: str, at: float) -> None:
        """The channel left the registry: its seconds so far stay counted, none after `at`."""
        slot = self.slot_of.get(channel_id)
        if slot is not None:
            self._settle_one(slot, self._clip(at))
            self._observing[slot] = False

    def remove_device(self, device_id: str, at: float) -> None:
        for slot in self._device_slots.get(device_id, ()):
            self.remove_channel(self.infos[slot].channel_id, at)

    def channels_of(self, device_id: str) -> list[str]:
        return [self.infos[s].channel_id for s in self._device_slots.get(device_id, ())]

    # -- facts -------------------------------------------------------------------------------------
    def device(self, device_id: str, up: bool, at: float) -> None:
        self._device_up[device_id] = bool(up)
        slots = self._device_slots.get(device_id)
        if slots:
            idx = np.fromiter(slots, dtype=np.int64, count=len(slots))
            self._settle(idx, self._clip(at))
            self._dev_up[idx] = bool(up)

    def channel_status(self, channel_id: str, up: bool, at: float) -> None:
        slot = self.slot_of.get(channel_id)
        if slot is not None:
            self._settle_one(slot, self._clip(at))
            self._ch_up[slot] = bool(up)

    def fault(self, channel_id: str, kind: str, is_open: bool, at: float) -> None:
        """Open or clear one kind of fault; `kind` "*" with is_open False clears them all."""
        slot = self.slot_of.get(channel_id)
        if slot is None:
            return
        self._settle_one(slot, self._clip(at))
        faults = self._faults.setdefault(slot, set())
        if is_open:
            faults.add(kind)
        elif kind == "*":
            faults.clear()
        else:
            faults.discard(kind)
        self._faulty[slot] = bool(faults)
        if not faults:
            del self._faults[slot]

    def clear_catalog_faults(self, channel_id: str, at: float) -> None:
        for kind in CATALOG_FAULTS:
            self.fault(channel_id, kind, False, at)

    def resolution(self, channel_id: str, width: int, height: int) -> None:
        slot = self.slot_of.get(channel_id)
        if slot is not None and width > 0 and height > 0:
            self.width[slot], self.height[slot] = width, height

    # -- reading -----------------------------------------------------------------------------------
    def totals(self, at: float | None = None) -> Totals:
        """Seconds per slot up to `at` (default: the day's end), state unchanged."""
        n = self._n
        at = self._clip(self.end if at is None else at)
        dt = np.maximum(at - self._last[:n], 0.0) * self._observing[:n]
        online = self._dev_up[:n] & self._ch_up[:n]
        return Totals(observed=self._acc_observed[:n] + dt,
                      online=self._acc_online[:n] + dt * online,
                      intact=self._acc_intact[:n] + dt * (online & ~self._faulty[:n]))

    def state_of(self, slot: int) -> ChannelState:
        return ChannelState(device_up=bool(self._dev_up[slot]), channel_up=bool(self._ch_up[slot]),
                            faults=frozenset(self._faults.get(slot, ())),
                            width=int(self.width[slot]), height=int(self.height[slot]))

    def is_observing(self, slot: int) -> bool:
        return bool(self._observing[slot])

    def channel_up(self, slot: int) -> bool:
        return bool(self._ch_up[slot])

    def faults_of(self, slot: int) -> frozenset[str] | set[str]:
        return self._faults.get(slot, frozenset())

    def frozen(self) -> DayLedger:
        """A copy to read in another thread while this one goes on (arrays copied: a memcpy of
        a few tens of MB at 500,000 channels; the ChannelInfo objects are shared, they never change)."""
        copy = DayLedger.__new__(DayLedger)
        copy.__dict__.update(self.__dict__)
        n = self._n
        for name in ("_last", "_acc_observed", "_acc_online", "_acc_intact", "_observing", "_dev_up", "_ch_up",
                     "_faulty", "width", "height"):
            setattr(copy, name, getattr(self, name)[:n].copy())
        copy.infos = list(self.infos)
        copy._faults = {slot: set(f) for slot, f in self._faults.items()}
        return copy

    def next_day(self, end: float) -> DayLedger:
        """The following day (from this one's end to `end`), carrying every channel still in the
        registry with its state; this ledger is left as it was."""
        nxt = DayLedger(self.end, end)
        for slot in np.flatnonzero(self._observing[:self._n]):
            nxt.add_channel(self.infos[slot], self.state_of(int(slot)))
        for device_id, up in self._device_up.items():
            nxt._device_up.setdefault(device_id, up)
        return nxt

    # -- internals ---------------------------------------------------------------------------------
    def _clip(self, at: float) -> float:
        return min(max(float(at), self.start), self.end)

    def _settle(self, idx: np.ndarray, at: float) -> None:
        dt = np.maximum(at - self._last[idx], 0.0) * self._observing[idx]
        online = self._dev_up[idx] & self._ch_up[idx]
        self._acc_observed[idx] += dt
        self._acc_online[idx] += dt * online
        self._acc_intact[idx] += dt * (online & ~self._faulty[idx])
        self._last[idx] = np.maximum(self._last[idx], at)

    def _settle_one(self, slot: int, at: float) -> None:
        """_settle for one slot in plain floats: a fact about one channel is the common case, and
        numpy's fancy indexing costs more than the arithmetic it saves there."""
        last = float(self._last[slot])
        if at <= last:
            return
        if self._observing[slot]:
            dt = at - last
            self._acc_observed[slot] += dt
            if self._dev_up[slot] and self._ch_up[slot]:
                self._acc_online[slot] += dt
                if not self._faulty[slot]:
                    self._acc_intact[slot] += dt
        self._last[slot] = at

    def _grow(self) -> int:
        slot = self._n
        if slot == len(self._last):
            cap = 2 * len(self._last)
            for name in ("_last", "_acc_observed", "_acc_online", "_acc_intact", "_observing", "_dev_up",
                         "_ch_up", "_faulty", "width", "height"):
                old = getattr(self, name)
                new = np.zeros(cap, dtype=old.dtype)
                new[:slot] = old
                setattr(self, name, new)
        self._n += 1
        return slot

