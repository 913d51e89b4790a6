"""The rates' SQL: what the ledger is seeded from (registry, last closed day, events), and the
closed days written and read back. Blocking; callers run it in a worker thread."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, and_, delete, func, insert, select

from camgrid.ops.rates.facts import ALL_KINDS, RegistryChannel, registry_channel
from camgrid.ops.rates.figures import group_sums
from camgrid.ops.rates.ledger import ChannelInfo, ChannelState, DayLedger
from camgrid.registry._sql import IN_CHUNK, WRITE_CHUNK, aware, chunks
from camgrid.store.tables import channels, devices, events, organisations, rates_channel_daily, rates_group_daily

_REGISTRY_COLUMNS = (channels.c.id, channels.c.device_id, channels.c.point_class, channels.c.organisation_id,
                     channels.c.manufacturer, channels.c.type_code, channels.c.status, channels.c.fault,
                     channels.c.updated_at)


def load_registry(engine: Engine, device_id: str | None = None) -> list[RegistryChannel]:
    query = select(*_REGISTRY_COLUMNS)
    if device_id is not None:
        query = query.where(channels.c.device_id == device_id)
    with engine.connect() as conn:
        return [registry_channel({**row, "updated_at": aware(row["updated_at"])})
                for row in conn.execute(query).mappings()]


def load_device_status(engine: Engine) -> dict[str, bool]:
    with engine.connect() as conn:
        return {d: s == "online" for d, s in conn.execute(select(devices.c.id, devices.c.status))}


def last_closed_day(engine: Engine) -> date | None:
    with engine.connect() as conn:
        return conn.execute(select(func.max(rates_group_daily.c.day))
                            .where(rates_group_daily.c.dimension == "all")).scalar_one_or_none()


def load_day_end(engine: Engine, day: date) -> dict[str, tuple[ChannelInfo, ChannelState]]:
    """The state each channel present at the end of `day` was in then."""
    t = rates_channel_daily
    out: dict[str, tuple[ChannelInfo, ChannelState]] = {}
    with engine.connect() as conn:
        for r in conn.execute(select(t).where(t.c.day == day, t.c.present.is_(True))).mappings():
            info = ChannelInfo(r["channel_id"], r["device_id"], r["point_class"], r["organisation_id"],
                               r["manufacturer"], r["type_code"])
            faults = frozenset(f for f in (r["end_faults"] or "").split(",") if f)
            out[r["channel_id"]] = (info, ChannelState(bool(r["end_device_up"]), bool(r["end_channel_up"]), faults,
                                                       int(r["width"]), int(r["height"])))
    return out


def first_event_at(engine: Engine) -> datetime | None:
    with engine.connect() as conn:
        at = conn.execute(select(func.min(events.c.at)).where(events.c.kind.in_(ALL_KINDS))).scalar_one_or_none()
    return aware(at) if at is not None else None


def load_events(engine: Engine, start: datetime, end: datetime) -> list[tuple[float, str, str, Any]]:
    """The events that move availability in [start, end), oldest first: (epoch s, kind, subject, data)."""
    query = (select(events.c.at, events.c.kind, events.c.subject, events.c.data)
             .where(events.c.kind.in_(ALL_KINDS), events.c.at >= start, events.c.at < end)
             .order_by(events.c.at, events.c.id))
    with engine.connect() as conn:
        return [(aware(at).timestamp(), kind, subject, data) for at, kind, subject, data in conn.execute(query)]


def write_day(engine: Engine, day: date, ledger: DayLedger, hd_min_height: int) -> int:
    """Store a closed day (replacing any earlier write of it) in one transaction; returns the
    number of channel rows."""
    totals = ledger.totals(ledger.end)
    rows = []
    for slot, info in enumerate(ledger.infos):
        present = ledger.is_observing(slot)
        if not present and totals.observed[slot] <= 0:
            continue
        state = ledger.state_of(slot)
        rows.append({
            "day": day, "channel_id": info.channel_id, "device_id": info.device_id, "point_class": info.point_class,
            "organisation_id": info.organisation_id[:20], "manufacturer": info.manufacturer[:100],
            "type_code": info.type_code[:3], "observed_s": float(totals.observed[slot]),
            "online_s": float(totals.online[slot]), "intact_s": float(totals.intact[slot]),
            "width": state.width, "height": state.height, "end_device_up": state.device_up,
            "end_channel_up": state.channel_up, "end_faults": ",".join(sorted(state.faults))[:400], "present": present})
    groups = [{"day": day, **row, "key": row["key"][:100]} for row in group_sums(ledger.infos, totals, ledger.height, hd_min_height)]
    with engine.begin() as conn:
        conn.execute(delete(rates_channel_daily).where(rates_channel_daily.c.day == day))
        conn.execute(delete(rates_group_daily).where(rates_group_daily.c.day == day))
        for part in chunks(rows, WRITE_CHUNK):
            conn.execute(insert(rates_channel_daily), part)
        for part in chunks(groups, WRITE_CHUNK):
            conn.execute(insert(rates_group_daily), part)
        if not groups:  # a day with no channels is still closed: the marker row says so
            conn.execute(insert(rates_group_daily), [{"day": day, "dimension": "all", "key": "", "point_class": 0,
                                                      "channels": 0, "observed_s": 0.0, "online_s": 0.0,
                                                      "intact_s": 0.0, "hd": 0, "measured": 0}])
    return len(rows)


def read_groups(engine: Engine, dimension: str, first: date, last: date, *,
                point_class: int | None = None, key: str | None = None) -> list[dict[str, Any]]:
    t = rates_group_daily
    cond = [t.c.dimension == dimension, t.c.day >= first, t.c.day <= last]
    if point_class is not None:
        cond.append(t.c.point_class == point_class)
    if key is not None:
        cond.append(t.c.key == key)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(t).where(and_(*cond)).order_by(t.c.day)).mappings()]


def read_channels(engine: Engine, first: date, last: date, channel_ids: Sequence[str] | None = None,
                  point_class: int | None = None) -> list[dict[str, Any]]:
    """Per-channel seconds summed over the days, with the latest grouping and resolution."""
    t = rates_channel_daily
    cond = [t.c.day >= first, t.c.day <= last]
    if channel_ids is not None:
        cond.append(t.c.channel_id.in_(list(channel_ids)))
    if point_class is not None:
        cond.append(t.c.point_class == point_class)
    query = (select(t.c.channel_id, func.max(t.c.device_id).label("device_id"),
                    func.max(t.c.point_class).label("point_class"), func.sum(t.c.observed_s).label("observed_s"),
                    func.sum(t.c.online_s).label("online_s"), func.sum(t.c.intact_s).label("intact_s"),
                    func.max(t.c.height).label("height"), func.max(t.c.width).label("width"))
             .where(and_(*cond)).group_by(t.c.channel_id))
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def names_of(engine: Engine, ids: Iterable[str]) -> dict[str, str]:
    wanted = [i for i in set(ids) if i]
    out: dict[str, str] = {}
    with engine.connect() as conn:
        for part in chunks(wanted, IN_CHUNK):
            out.update(conn.execute(select(organisations.c.id, organisations.c.name)
                                    .where(organisations.c.id.in_(part))).all())
    return out


def channel_names(engine: Engine, ids: Iterable[str]) -> dict[str, str]:
    wanted = list(set(ids))
    out: dict[str, str] = {}
    with engine.connect() as conn:
        for part in chunks(wanted, IN_CHUNK):
            out.update(conn.execute(select(channels.c.id, channels.c.name).where(channels.c.id.in_(part))).all())
    return out
