"""Dense numbering of devices for the in-memory state kept about every one of them.

At 100k-500k devices, per-device Python objects (a float per timestamp, a tuple per heap entry,
a dict entry per fact) cost kilobytes each once the allocator's fragmentation is counted: small
objects that live for hours end up scattered among the short-lived ones of message handling,
and pin their memory. So the registrar's secret cache, the registration table and the health
tracker keep their per-device facts in flat arrays indexed by a slot number, and the only
per-device objects are the ID string and its slot number, made once (at start, for every
provisioned device) and shared by all three.
"""

from __future__ import annotations

from array import array


class DeviceSlots:
    """device ID ↔ slot number (0, 1, 2, ... in order of first sight). Slots are never reused,
    so arrays indexed by slot only grow; a deleted device keeps its slot (it may come back)."""

    __slots__ = ("_slot", "ids")

    def __init__(self) -> None:
        self._slot: dict[str, int] = {}
        self.ids: list[str] = []

    def __len__(self) -> int:
        return len(self.ids)

    def slot(self, device_id: str) -> int:
        """The device's slot, given one if it has none yet."""
        slot = self._slot.get(device_id)
        if slot is None:
            slot = self._slot[device_id] = len(self.ids)
            self.ids.append(device_id)
        return slot

    def find(self, device_id: str) -> int | None:
        return self._slot.get(device_id)

    def by_id(self) -> dict[str, int]:
        """The ID → slot map itself, for native readers (sip._sipfast.RegisterDecider); not to be changed."""
        return self._slot

    def canonical(self, device_id: str) -> str:
        """The stored string for this ID (one copy shared by every structure), or device_id."""
        slot = self._slot.get(device_id)
        return device_id if slot is None else self.ids[slot]


def grow(values: array | bytearray, size: int, fill: float | int) -> None:
    """Extend an array to at least `size` entries with `fill`, in steps of at least 1/8 of its length."""
    missing = size - len(values)
    if missing > 0:
        missing = max(missing, len(values) >> 3)
        if isinstance(values, bytearray):
            values.extend(bytes([fill]) * missing)  # type: ignore[list-item]
        else:
            values.extend(array(values.typecode, [fill]) * missing)
