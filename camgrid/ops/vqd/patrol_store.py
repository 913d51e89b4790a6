"""The patrol's SQL: which channels to look at, results (the history), each channel's state
(open findings, reference picture, own thresholds) and the rounds. Blocking; callers run it in
a worker thread."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, or_, select, update

from camgrid.registry._sql import aware
from camgrid.store.tables import (audit_log, channels, devices, vqd_channels, vqd_devices, vqd_manufacturer_dialects,
                                  vqd_results, vqd_rounds)


_COLUMNS = (channels.c.id, channels.c.device_id, channels.c.organisation_id, channels.c.ptz_type,
            devices.c.manufacturer)


def channels_to_patrol(engine: Engine) -> list[dict[str, Any]]:
    """Every channel, least recently diagnosed first (never diagnosed before all others)."""
    query = (select(*_COLUMNS)
             .select_from(channels.outerjoin(vqd_channels, vqd_channels.c.channel_id == channels.c.id)
                          .outerjoin(devices, devices.c.id == channels.c.device_id))
             .order_by(vqd_channels.c.last_at.isnot(None), vqd_channels.c.last_at, channels.c.id))
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def channel(engine: Engine, channel_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(*_COLUMNS).select_from(channels.outerjoin(devices, devices.c.id == channels.c.device_id))
                           .where(channels.c.id == channel_id)).mappings().first()
    return dict(row) if row else None


def state(engine: Engine, channel_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(vqd_channels).where(vqd_channels.c.channel_id == channel_id)).mappings().first()
    if row is None:
        return {"channel_id": channel_id, "open_faults": [], "reference": None, "thresholds": {}, "last_at": None,
                "reference_at": None, "reference_by": None, "last_result_id": None}
    out = dict(row)
    out["last_at"], out["reference_at"] = aware(out["last_at"]), aware(out["reference_at"])
    return out


def _ensure(conn: Connection, channel_id: str) -> None:
    exists = conn.execute(select(vqd_channels.c.channel_id).where(vqd_channels.c.channel_id == channel_id)).first()
    if exists is None:
        conn.execute(vqd_channels.insert().values(channel_id=channel_id, open_faults=[], thresholds={}))


def record(engine: Engine, *, channel_id: str, device_id: str, at: datetime, round_id: int | None, diagnosed: bool,
           reason: str, faults: list[dict[str, Any]], resolution: tuple[int, int] | None, codec: str | None,
           frames: int, duration_s: float, reference: bytes | None = None,
           reference_by: str = "vqd-patrol", stream: str = "main") -> tuple[int, list[str]]:
    """Store a result and the channel's new open findings; returns (result id, findings open before)."""
    with engine.begin() as conn:
        result_id = conn.execute(vqd_results.insert().values(
            channel_id=channel_id, device_id=device_id, at=at, round_id=round_id, diagnosed=diagnosed,
            reason=reason[:300], faults=faults, width=resolution[0] if resolution else None,
            height=resolution[1] if resolution else None, codec=(codec or None) and codec[:16], frames=frames,
            duration_s=duration_s, stream=stream)).inserted_primary_key[0]
        _ensure(conn, channel_id)
        before = conn.execute(select(vqd_channels.c.open_faults).where(vqd_channels.c.channel_id == channel_id)).scalar()
        values: dict[str, Any] = {"last_at": at, "last_result_id": result_id,
                                  "open_faults": sorted({f["type"] for f in faults})}
        if reference is not None:
            values.update(reference=reference, reference_at=at, reference_by=reference_by[:64])
        conn.execute(update(vqd_channels).where(vqd_channels.c.channel_id == channel_id).values(**values))
    return result_id, list(before or [])


def set_reference(engine: Engine, channel_id: str, data: bytes | None, at: datetime, by: str) -> None:
    with engine.begin() as conn:
        _ensure(conn, channel_id)
        conn.execute(update(vqd_channels).where(vqd_channels.c.channel_id == channel_id).values(
            reference=data, reference_at=at if data else None, reference_by=by if data else None))


def set_thresholds(engine: Engine, channel_id: str, overrides: dict[str, Any]) -> None:
    with engine.begin() as conn:
        _ensure(conn, channel_id)
        conn.execute(update(vqd_channels).where(vqd_channels.c.channel_id == channel_id).values(thresholds=overrides))


def history(engine: Engine, channel_id: str, limit: int = 50) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(vqd_results).where(vqd_results.c.channel_id == channel_id)
                            .order_by(vqd_results.c.at.desc(), vqd_results.c.id.desc()).limit(limit)).mappings()
        return [{**dict(r), "at": aware(r["at"])} for r in rows]


def start_round(engine: Engine, at: datetime, trigger: str, by: str, total: int) -> int:
    with engine.begin() as conn:
        return conn.execute(vqd_rounds.insert().values(started_at=at, trigger=trigger, by=by[:64], total=total, diagnosed=0,
                                                       failed=0, with_faults=0, skipped=0)).inserted_primary_key[0]


def finish_round(engine: Engine, round_id: int, at: datetime, counts: dict[str, int]) -> None:
    with engine.begin() as conn:
        conn.execute(update(vqd_rounds).where(vqd_rounds.c.id == round_id).values(finished_at=at, **counts))


def rounds(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(vqd_rounds).order_by(vqd_rounds.c.id.desc()).limit(limit)).mappings()
        return [{**dict(r), "started_at": aware(r["started_at"]), "finished_at": aware(r["finished_at"])} for r in rows]


def latest_started(engine: Engine) -> datetime | None:
    with engine.connect() as conn:
        return aware(conn.execute(select(func.max(vqd_rounds.c.started_at))).scalar())


# -- what the patrol learned about devices --------------------------------------------------------
def set_substream_refused(engine: Engine, device_id: str, at: datetime | None, dialect: str | None = None,
                          reason: str | None = None) -> None:
    """Remember (at) or forget (None) that the device refused the sub-stream."""
    values = {"substream_refused_at": at, "substream_dialect": dialect, "substream_reason": (reason or None) and reason[:300]}
    with engine.begin() as conn:
        _upsert(conn, device_id, values, insert=at is not None)


def _upsert(conn: Connection, device_id: str, values: dict[str, Any], *, insert: bool = True) -> None:
    if conn.execute(update(vqd_devices).where(vqd_devices.c.device_id == device_id).values(**values)).rowcount == 0:
        if insert:
            conn.execute(vqd_devices.insert().values(device_id=device_id, **values))


DEVICE_DEFAULTS: dict[str, Any] = {c.name: None for c in vqd_devices.columns if c.name != "device_id"}
_TIMES = ("substream_refused_at", "substream_ok_at", "ptz_checked_at", "override_at")


def _device_view(row: Any) -> dict[str, Any]:
    out = dict(row)
    for key in _TIMES:
        if key in out:
            out[key] = aware(out[key])
    return out


def device_state(engine: Engine, device_id: str) -> dict[str, Any]:
    """What the patrol learned about the device and what an operator set for it (None: nothing)."""
    with engine.connect() as conn:
        row = conn.execute(select(vqd_devices).where(vqd_devices.c.device_id == device_id)).mappings().first()
    return _device_view(row) if row is not None else {"device_id": device_id, **DEVICE_DEFAULTS}


def substream_served(engine: Engine, device_id: str, at: datetime, dialect: str) -> None:
    """The device served a sub-stream asked for with `dialect`: remember that, forget any refusal."""
    with engine.begin() as conn:
        _upsert(conn, device_id, {"substream_ok_dialect": dialect, "substream_ok_at": at, "substream_refused_at": None,
                                  "substream_dialect": None, "substream_reason": None})


def set_ptz_result(engine: Engine, device_id: str, at: datetime, result: dict[str, Any]) -> None:
    with engine.begin() as conn:
        _upsert(conn, device_id, {"ptz_checked_at": at, "ptz_result": result})


def set_overrides(engine: Engine, device_id: str, dialect: str | None, ptz_check: bool | None, by: str,
                  at: datetime) -> None:
    """The operator's selector and PTZ check for the device (None each: back to the configuration)."""
    with engine.begin() as conn:
        _upsert(conn, device_id, {"override_dialect": dialect, "override_ptz_check": ptz_check, "override_by": by[:64],
                                  "override_at": at})


# -- an operator's selectors per manufacturer ------------------------------------------------------
def manufacturer_key(key: str) -> str:
    """The stored form of a manufacturer key: trimmed, lower-case (matching ignores case)."""
    return key.strip().lower()


def manufacturer_dialects(engine: Engine) -> list[dict[str, Any]]:
    """The operator's entries ({key, dialect, set_by, set_at}) in key order; a few rows, read once a round."""
    with engine.connect() as conn:
        rows = conn.execute(select(vqd_manufacturer_dialects).order_by(vqd_manufacturer_dialects.c.key)).mappings()
        return [{**dict(r), "set_at": aware(r["set_at"])} for r in rows]


def set_manufacturer_dialect(engine: Engine, key: str, dialect: str, by: str, at: datetime) -> str | None:
    """Set the operator's selector for manufacturers matching `key`; returns the one it replaced."""
    key = manufacturer_key(key)
    table = vqd_manufacturer_dialects
    with engine.begin() as conn:
        before = conn.execute(select(table.c.dialect).where(table.c.key == key)).scalar()
        values = {"dialect": dialect, "set_by": by[:64], "set_at": at}
        if before is None:
            conn.execute(table.insert().values(key=key, **values))
        else:
            conn.execute(update(table).where(table.c.key == key).values(**values))
    return before


def drop_manufacturer_dialect(engine: Engine, key: str) -> str | None:
    """Remove the operator's entry for `key`; returns its selector (None: there was none)."""
    key = manufacturer_key(key)
    table = vqd_manufacturer_dialects
    with engine.begin() as conn:
        before = conn.execute(select(table.c.dialect).where(table.c.key == key)).scalar()
        if before is not None:
            conn.execute(table.delete().where(table.c.key == key))
    return before


_DEVICE_COLUMNS = (devices.c.id, devices.c.name, devices.c.manufacturer, devices.c.status,
                   *(c for c in vqd_devices.columns if c.name != "device_id"))


def _device_query() -> Any:
    return select(*_DEVICE_COLUMNS).select_from(devices.outerjoin(vqd_devices, vqd_devices.c.device_id == devices.c.id))


def device_row(engine: Engine, device_id: str) -> dict[str, Any] | None:
    """The device (ID, name, manufacturer) with what the patrol knows of it; None: no such device."""
    with engine.connect() as conn:
        row = conn.execute(_device_query().where(devices.c.id == device_id)).mappings().first()
    return _device_view(row) if row is not None else None


def device_rows(engine: Engine, *, q: str | None, only: str | None, after: str | None, n: int) -> list[dict[str, Any]]:
    """Devices in ID order after `after` with what the patrol knows of them: `only` "refused"
    (a sub-stream refusal remembered) or "overridden" (an operator's setting); `q` a substring of
    the ID, name or manufacturer."""
    query = _device_query().order_by(devices.c.id).limit(n)
    if after is not None:
        query = query.where(devices.c.id > after)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(*(col.ilike(pattern, escape="\\") for col in (devices.c.id, devices.c.name,
                                                                              devices.c.manufacturer))))
    if only == "refused":
        query = query.where(vqd_devices.c.substream_refused_at.isnot(None))
    elif only == "overridden":
        query = query.where(or_(vqd_devices.c.override_dialect.isnot(None), vqd_devices.c.override_ptz_check.isnot(None)))
    with engine.connect() as conn:
        return [_device_view(r) for r in conn.execute(query).mappings()]


def ptz_channels(engine: Engine, device_ids: list[str], ptz_types: tuple[int, ...]) -> dict[str, list[dict[str, Any]]]:
    """The channels of these devices a PTZ check may move ({device: [{id, organisation_id}]})."""
    out: dict[str, list[dict[str, Any]]] = {d: [] for d in device_ids}
    if not device_ids:
        return out
    with engine.connect() as conn:
        for r in conn.execute(select(channels.c.id, channels.c.device_id, channels.c.organisation_id)
                              .where(channels.c.device_id.in_(device_ids), channels.c.ptz_type.in_(ptz_types))
                              .order_by(channels.c.id)).mappings():
            out[r["device_id"]].append(dict(r))
    return out


def operator_ptz_since(engine: Engine, channel_id: str, since: datetime) -> datetime | None:
    """The latest PTZ command someone sent to the channel through the API (audited as
    command.ptz) after `since`; None when nobody did."""
    with engine.connect() as conn:
        return aware(conn.execute(select(func.max(audit_log.c.at)).where(
            audit_log.c.action == "command.ptz", audit_log.c.target == channel_id, audit_log.c.at >= since)).scalar())
