"""Liveness (public) and the online summary: devices, channels, online rate by point class."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import case, func, select

from camgrid.api.security import Principal, api_context, require
from camgrid.governance import roles
from camgrid.store.tables import channels, devices

public_router = APIRouter(prefix="/health", tags=["health"])
router = APIRouter(prefix="/health", tags=["health"])


@public_router.get("/live")
def live() -> dict[str, bool]:
    """Liveness for load balancers and supervisors; needs no token and shows no data."""
    return {"ok": True}


def _class_key(point_class: int | None) -> str:
    return str(point_class) if point_class is not None else "unclassified"


def summarise(ctx: Any) -> dict[str, Any]:
    """Counts in three grouped queries (no per-channel work, whatever the channel count)."""
    online_channel = case((channels.c.status == "online", 1), else_=0)
    with ctx.engine.connect() as conn:
        # With the live health view the device counts come from memory; the table is scanned
        # only without it (an API process of its own).
        dev_rows = [] if ctx.health is not None else conn.execute(
            select(devices.c.status, func.count()).where(devices.c.approval == "approved").group_by(devices.c.status)).all()
        pending = conn.execute(select(func.count()).select_from(devices)
                               .where(devices.c.approval == "pending")).scalar_one()
        ch_rows = conn.execute(select(channels.c.device_id, channels.c.point_class, func.count(),
                                      func.sum(online_channel))
                               .group_by(channels.c.device_id, channels.c.point_class)).all()
        online_in_db = set() if ctx.health is not None else set(conn.execute(
            select(devices.c.id).where(devices.c.status == "online")).scalars())
    if ctx.health is not None:
        counts = ctx.health.counts()
        dev = {"total": int(counts.get("devices", 0)), "online": int(counts.get("online", 0))}
        is_online = ctx.health.is_online
    else:
        by_status = {s: n for s, n in dev_rows}
        dev = {"total": sum(by_status.values()), "online": by_status.get("online", 0)}
        is_online = online_in_db.__contains__
    dev["offline"] = dev["total"] - dev["online"]
    dev["pending"] = pending
    classes: dict[str, dict[str, Any]] = {}
    total = online = 0
    for device_id, point_class, n, n_online in ch_rows:
        up = int(n_online or 0) if is_online(device_id) else 0
        entry = classes.setdefault(_class_key(point_class), {"total": 0, "online": 0})
        entry["total"] += n
        entry["online"] += up
        total += n
        online += up
    for entry in classes.values():
        entry["online_rate"] = round(entry["online"] / entry["total"], 4) if entry["total"] else None
    return {
        "devices": dev,
        "channels": {"total": total, "online": online, "offline": total - online,
                     "online_rate": round(online / total, 4) if total else None},
        "by_point_class": dict(sorted(classes.items())),
    }


@router.get("/summary")
def summary(request: Request, principal: Principal = require(roles.HEALTH_READ)) -> dict[str, Any]:
    """Devices total/online/offline, channels total/online, and online rate per point class."""
    return summarise(api_context(request))
