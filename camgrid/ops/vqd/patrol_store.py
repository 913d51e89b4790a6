"""The patrol's SQL: which channels to look at, results (the history), each channel's state
(open findings, reference picture, own thresholds) and the rounds. Blocking; callers run it in
a worker thread."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from camgrid.registry._sql import aware
from camgrid.store.tables import audit_log, channels, devices, vqd_channels, vqd_devices, vqd_results, vqd_rounds


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
def substream_refused_since(engine: Engine, device_id: str) -> datetime | None:
    """When the device last refused the sub-stream (None: it never did, or it served one since)."""
    with engine.connect() as conn:
        return aware(conn.execute(select(vqd_devices.c.substream_refused_at)
                                  .where(vqd_devices.c.device_id == device_id)).scalar())


def set_substream_refused(engine: Engine, device_id: str, at: datetime | None, dialect: str | None = None,
                          reason: str | None = None) -> None:
    """Remember (at) or forget (None) that the device refused the sub-stream."""
    values = {"substream_refused_at": at, "substream_dialect": dialect, "substream_reason": (reason or None) and reason[:300]}
    with engine.begin() as conn:
        if conn.execute(update(vqd_devices).where(vqd_devices.c.device_id == device_id).values(**values)).rowcount == 0:
            if at is not None:
                conn.execute(vqd_devices.insert().values(device_id=device_id, **values))


def operator_ptz_since(engine: Engine, channel_id: str, since: datetime) -> datetime | None:
    """The latest PTZ command someone sent to the channel through the API (audited as
    command.ptz) after `since`; None when nobody did."""
    with engine.connect() as conn:
        return aware(conn.execute(select(func.max(audit_log.c.at)).where(
            audit_log.c.action == "command.ptz", audit_log.c.target == channel_id, audit_log.c.at >= since)).scalar())
