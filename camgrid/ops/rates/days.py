"""Rebuilding the ledger from what is stored: the last closed day's end states (or, the first
time, the registry as it is now), then the recorded events replayed in order, closing each day
that ends on the way. Blocking; the service runs it in a worker thread at start, the CLI in its
own process.

Days are local days in the configured time zone (the figures are judged per local day).

How the start of the first replayed day is known:
- after a closed day: each channel starts in the state it ended that day in;
- the first time (nothing closed yet): from the registry now, rewound over the events since the
  day's start (a device that went online during the window was offline before it, and so on);
  every channel in the registry counts from the day's start.
Channels the registry no longer holds are counted until an event says they left (channel.del,
device.deleted, or their device's catalog changing), or not at all when none does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from camgrid.ops.rates import facts, store
from camgrid.ops.rates.ledger import ChannelState, DayLedger

log = logging.getLogger(__name__)


def day_bounds(day: date, tz: ZoneInfo) -> tuple[float, float]:
    start = datetime.combine(day, time(0), tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tz)
    return start.timestamp(), end.timestamp()


def day_of(ts: float, tz: ZoneInfo) -> date:
    return datetime.fromtimestamp(ts, tz).date()


def rebuild(engine: Engine, tz: ZoneInfo, now: float, *, backfill_days: int, hd_min_height: int,
            write: bool = True, on_closed: Callable[[date, DayLedger], None] | None = None) -> DayLedger:
    """Close (and, with `write`, store) every day not yet closed up to yesterday, and return
    today's ledger with today's events applied up to `now`."""
    today = day_of(now, tz)
    last = store.last_closed_day(engine)
    registry = store.load_registry(engine)
    oldest = today - timedelta(days=max(backfill_days, 0))
    if last is not None:
        first = min(max(last + timedelta(days=1), oldest), today)
    else:
        first_event = store.first_event_at(engine)
        first = today if first_event is None else min(max(first_event.astimezone(tz).date(), oldest), today)
    start, _ = day_bounds(first, tz)
    events = store.load_events(engine, datetime.fromtimestamp(start, tz), datetime.fromtimestamp(now + 1, tz))
    ledger = DayLedger(*day_bounds(first, tz))
    if last is not None:
        _seed_from_day(ledger, store.load_day_end(engine, last), registry, events)
    else:
        _seed_from_registry(ledger, registry, store.load_device_status(engine), events)
    by_device: dict[str, list[facts.RegistryChannel]] = {}
    for row in registry:
        by_device.setdefault(row.info.device_id, []).append(row)
    day = first
    for at, kind, subject, data in events:
        while at >= ledger.end:
            ledger = _close(engine, day, ledger, tz, hd_min_height, write, on_closed)
            day += timedelta(days=1)
        if facts.needs_registry(kind, data if isinstance(data, dict) else {}):
            device_id = facts.registry_device(kind, subject, data if isinstance(data, dict) else {})
            if device_id:  # the registry as it is now: channels it lists are added, others leave
                facts.reconcile(ledger, by_device.get(device_id, []), at, device_id=device_id, statuses=False)
        else:
            facts.apply(ledger, kind, subject, data, at)
    while ledger.end <= now:
        ledger = _close(engine, day, ledger, tz, hd_min_height, write, on_closed)
        day += timedelta(days=1)
    facts.reconcile(ledger, registry, now)  # whatever the events did not tell, from now on
    return ledger


def _close(engine: Engine, day: date, ledger: DayLedger, tz: ZoneInfo, hd_min_height: int, write: bool,
           on_closed: Callable[[date, DayLedger], None] | None) -> DayLedger:
    if write:
        store.write_day(engine, day, ledger, hd_min_height)
    if on_closed is not None:
        on_closed(day, ledger)
    return ledger.next_day(day_bounds(day + timedelta(days=1), tz)[1])


def _seed_from_day(ledger: DayLedger, ended: dict, registry: list[facts.RegistryChannel], events: list) -> None:
    in_registry = {row.info.channel_id for row in registry}
    announced = _leaving(events)
    for cid, (info, state) in ended.items():
        if cid in in_registry or cid in announced[0] or info.device_id in announced[1]:
            ledger.add_channel(info, state)
    for row in registry:
        if row.info.channel_id not in ended:  # new since that day: counted from when the registry got it
            ledger.add_channel(row.info, facts.seed_state(row, False), max(row.updated_at, ledger.start))


def _seed_from_registry(ledger: DayLedger, registry: list[facts.RegistryChannel], device_up: dict[str, bool],
                        events: list) -> None:
    first_device: dict[str, bool] = {}
    first_channel: dict[str, bool] = {}
    fault_events: set[str] = set()
    for _, kind, subject, _ in events:
        if kind in ("device.online", "device.offline"):
            first_device.setdefault(subject, kind == "device.online")
        elif kind in ("channel.on", "channel.off"):
            first_channel.setdefault(subject, kind == "channel.on")
        if kind in ("channel.on", "channel.vlost", "channel.defect"):
            fault_events.add(subject)
    for row in registry:
        cid = row.info.channel_id
        state = ChannelState(
            device_up=facts.rewind(device_up.get(row.info.device_id, False), first_device.get(row.info.device_id)),
            channel_up=facts.rewind(row.status_up, first_channel.get(cid)),
            faults=frozenset({row.catalog_fault} if row.catalog_fault and cid not in fault_events else ()))
        ledger.add_channel(row.info, state)


def _leaving(events: list) -> tuple[set[str], set[str]]:
    """Channels and devices whose leaving (or catalog change) an event in the window tells."""
    chans, devs = set(), set()
    for _, kind, subject, data in events:
        if kind == "channel.del":
            chans.add(subject)
        elif kind == "device.deleted":
            devs.add(subject)
        elif facts.needs_registry(kind, data if isinstance(data, dict) else {}):
            devs.add(facts.registry_device(kind, subject, data if isinstance(data, dict) else {}))
    return chans, devs
