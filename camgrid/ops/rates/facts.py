"""From the platform's events and registry rows to ledger facts (pure).

Events that move a channel's availability:
  device.online / device.offline    the device (all its channels) up or down
  device.deleted                    its channels leave the registry
  channel.on / channel.off          the channel's own status (Catalog NOTIFY); ON also clears
                                    the catalog faults
  channel.vlost / channel.defect    a catalog fault opens (video lost, defect)
  channel.del                       the channel leaves the registry
  vqd.fault / vqd.cleared           a video-quality finding opens or clears (data["type"];
                                    vqd.cleared without a type clears them all)
  media.first_frame                 a measured resolution (data width/height), main streams only (data stream)
Events that change which channels exist (catalog.updated / catalog.partial with changes,
channel.add / channel.update, device.added) need the registry: `needs_registry` says so, and
`reconcile` applies the registry's rows for a device (or all of them) at a moment.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from camgrid.ops.rates.ledger import CATALOG_FAULTS, ChannelInfo, ChannelState, DayLedger

FACT_KINDS = ("device.online", "device.offline", "device.deleted", "channel.on", "channel.off", "channel.vlost",
              "channel.defect", "channel.del", "vqd.fault", "vqd.cleared", "media.first_frame")
REGISTRY_KINDS = ("catalog.updated", "catalog.partial", "channel.add", "channel.update", "device.added")
ALL_KINDS = FACT_KINDS + REGISTRY_KINDS


@dataclass(frozen=True, slots=True)
class RegistryChannel:
    """A channel as the registry holds it now."""
    info: ChannelInfo
    status_up: bool
    catalog_fault: str | None  # "vlost" | "defect" | None
    updated_at: float  # epoch seconds


def info_from_row(row: Mapping[str, Any]) -> ChannelInfo:
    # Interned: a device's, organisation's or vendor's name is shared by thousands of channels, and
    # one copy instead of one per channel is ~150 bytes a channel at 500,000 channels.
    return ChannelInfo(channel_id=row["id"], device_id=sys.intern(row["device_id"]),
                       point_class=int(row.get("point_class") or 0),
                       organisation_id=sys.intern(row.get("organisation_id") or ""),
                       manufacturer=sys.intern(row.get("manufacturer") or ""), type_code=sys.intern(row.get("type_code") or ""))


def registry_channel(row: Mapping[str, Any]) -> RegistryChannel:
    fault = (row.get("fault") or "").lower() or None
    updated = row.get("updated_at")
    return RegistryChannel(info=info_from_row(row), status_up=row.get("status") == "online",
                           catalog_fault=fault if fault in CATALOG_FAULTS else None,
                           updated_at=updated.timestamp() if isinstance(updated, datetime) else 0.0)


def needs_registry(kind: str, data: Mapping[str, Any]) -> bool:
    if kind in ("catalog.updated", "catalog.partial"):
        return any(_int(data.get(k)) for k in ("added", "removed", "updated"))
    return kind in REGISTRY_KINDS


def registry_device(kind: str, subject: str, data: Mapping[str, Any]) -> str:
    """The device whose channels a registry event concerns."""
    if kind.startswith("channel."):
        return str(data.get("device_id") or "")
    return subject


def apply(ledger: DayLedger, kind: str, subject: str, data: Mapping[str, Any] | Any, at: float) -> None:
    """Apply one event; kinds that are not facts, and malformed data, are ignored."""
    if not isinstance(data, Mapping):
        data = {}
    if kind == "device.online" or kind == "device.offline":
        ledger.device(subject, kind == "device.online", at)
    elif kind == "device.deleted":
        ledger.remove_device(subject, at)
    elif kind == "channel.on":
        ledger.channel_status(subject, True, at)
        ledger.clear_catalog_faults(subject, at)
    elif kind == "channel.off":
        ledger.channel_status(subject, False, at)
    elif kind in ("channel.vlost", "channel.defect"):
        ledger.fault(subject, kind.removeprefix("channel."), True, at)
    elif kind == "channel.del":
        ledger.remove_channel(subject, at)
    elif kind == "vqd.fault":
        fault = str(data.get("type") or "")
        if fault:
            ledger.fault(subject, "vqd:" + fault, True, at)
    elif kind == "vqd.cleared":
        fault = str(data.get("type") or "")
        if fault:
            ledger.fault(subject, "vqd:" + fault, False, at)
        else:
            for slot_fault in _vqd_faults(ledger, subject):
                ledger.fault(subject, slot_fault, False, at)
    elif kind == "media.first_frame" and data.get("stream", "main") == "main":  # a sub-stream is small by design
        ledger.resolution(subject, _int(data.get("width")), _int(data.get("height")))


def reconcile(ledger: DayLedger, rows: Iterable[RegistryChannel], at: float, *, device_id: str | None = None,
              statuses: bool = True) -> None:
    """Make the ledger agree with the registry's rows (of one device, or of all when device_id
    is None) from `at`: new channels are counted from `at`, channels no longer listed leave,
    groupings follow the registry, and (with `statuses`) a status or catalog fault that differs
    changes at `at`. Replaying history passes statuses=False: the registry's status is today's,
    and the recorded events tell the statuses of the past."""
    seen = reconcile_rows(ledger, rows, at, statuses=statuses)
    remove_missing(ledger, seen, at, device_id=device_id)


def reconcile_rows(ledger: DayLedger, rows: Iterable[RegistryChannel], at: float, *,
                   statuses: bool = True) -> set[str]:
    """The adding and updating half of `reconcile`; returns the channel IDs it saw."""
    seen: set[str] = set()
    for row in rows:
        cid = row.info.channel_id
        seen.add(cid)
        slot = ledger.slot_of.get(cid)
        if slot is None or not ledger.is_observing(slot):
            slot = ledger.add_channel(row.info, seed_state(row, False), at)
        elif ledger.infos[slot] != row.info:
            ledger.add_channel(row.info, ledger.state_of(slot), at)
        if not statuses:
            continue
        if ledger.channel_up(slot) != row.status_up:
            ledger.channel_status(cid, row.status_up, at)
        faults = ledger.faults_of(slot)
        if not faults and not row.catalog_fault:
            continue  # the common case, kept cheap: a whole registry is reconciled every few minutes
        open_catalog = faults & CATALOG_FAULTS
        wanted = {row.catalog_fault} if row.catalog_fault else set()
        for fault in open_catalog - wanted:
            ledger.fault(cid, fault, False, at)
        for fault in wanted - open_catalog:
            ledger.fault(cid, fault, True, at)
    return seen


def remove_missing(ledger: DayLedger, seen: set[str], at: float, *, device_id: str | None = None) -> None:
    """The leaving half of `reconcile`: channels (of the device, or all) not seen leave at `at`."""
    listed = ledger.channels_of(device_id) if device_id is not None else [i.channel_id for i in ledger.infos]
    for cid in listed:
        if cid not in seen and ledger.is_observing(ledger.slot_of[cid]):
            ledger.remove_channel(cid, at)


def seed_state(row: RegistryChannel, device_up: bool) -> ChannelState:
    return ChannelState(device_up=device_up, channel_up=row.status_up,
                        faults=frozenset({row.catalog_fault} if row.catalog_fault else ()))


def rewind(current_up: bool, first_transition_up: bool | None) -> bool:
    """A state at the start of a window, from its state now and the first transition in the
    window: transitions are published only on change, so the state before a transition to "up"
    was "down" and the other way round; with none in the window it is the state now."""
    return current_up if first_transition_up is None else not first_transition_up


def _vqd_faults(ledger: DayLedger, channel_id: str) -> list[str]:
    slot = ledger.slot_of.get(channel_id)
    if slot is None:
        return []
    return [f for f in ledger.state_of(slot).faults if f.startswith("vqd:")]


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
