"""Answering rate questions over a range of local days: the closed days from the database, the
days closed but not yet stored and today so far from the running service (when there is one).
Blocking (SQL); callers run it in a worker thread."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine

from camgrid.ops.rates import store
from camgrid.ops.rates.figures import ONLINE_TARGET, Figures, channel_figures, combine

BY = ("point_class", "organisation", "manufacturer", "device_type")
DEVICE_TYPES = {"111": "DVR", "112": "video server", "113": "encoder", "114": "decoder", "118": "NVR", "131": "camera",
                "132": "IPC", "133": "display", "134": "alarm input", "135": "alarm output", "136": "voice input",
                "137": "voice output", "138": "mobile transmitter", "200": "platform"}


@dataclass
class Live:
    """What the running service adds: today's rows so far, and closed days not yet stored."""
    today: date | None = None
    today_rows: list[dict[str, Any]] = field(default_factory=list)
    unwritten: dict[date, list[dict[str, Any]]] = field(default_factory=dict)
    today_channels: list[dict[str, Any]] = field(default_factory=list)


def group_rows(engine: Engine, dimension: str, first: date, last: date, live: Live,
               point_class: int | None = None, key: str | None = None) -> list[dict[str, Any]]:
    """Daily group rows of one dimension over [first, last], wherever they are kept now."""
    rows = store.read_groups(engine, dimension, first, last, point_class=point_class, key=key)
    stored_days = {r["day"] for r in rows}
    extra: list[tuple[date, list[dict[str, Any]]]] = list(live.unwritten.items())
    if live.today is not None:
        extra.append((live.today, live.today_rows))
    for day, day_rows in extra:
        if first <= day <= last and day not in stored_days:
            rows += [{**r, "day": day} for r in day_rows if r["dimension"] == dimension
                     and (point_class is None or r["point_class"] == point_class) and (key is None or r["key"] == key)]
    return rows


def by_group(engine: Engine, by: str, first: date, last: date, live: Live, *, per_class: bool = False,
             point_class: int | None = None) -> dict[str, Any]:
    if by not in BY:
        raise ValueError(f"by must be one of {', '.join(BY)}")
    dimension = "all" if by == "point_class" else by
    rows = group_rows(engine, dimension, first, last, live, point_class=point_class)
    totals = group_rows(engine, "all", first, last, live, point_class=point_class) if dimension != "all" else rows
    days = len({r["day"] for r in totals}) or 1
    if by == "point_class":
        groups = combine(rows, lambda r: (str(r["point_class"]), r["point_class"]))
    elif per_class:
        groups = combine(rows, lambda r: (r["key"], r["point_class"]))
    else:
        groups = combine(rows, lambda r: (r["key"], None))
    names = _names(engine, by, (k for k, _ in groups))
    items = []
    for (key, pclass), figures in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        item = {"key": key, "name": names.get(key, key), **figures.as_dict(days)}
        if pclass is not None:
            item["point_class"] = pclass
        items.append(item)
    overall = Figures()
    for r in totals:
        overall.add(r)
    return {"from": first.isoformat(), "to": last.isoformat(), "days": days, "by": by, "rows": items,
            "total": overall.as_dict(days)}


def trend(engine: Engine, first: date, last: date, live: Live, *, by: str | None = None, key: str | None = None,
          point_class: int | None = None) -> dict[str, Any]:
    """One figure per day (all channels, or one group's), with days that have no data left out."""
    dimension = "all" if by in (None, "point_class") else by
    if dimension not in ("all", *BY):
        raise ValueError(f"by must be one of {', '.join(BY)}")
    rows = group_rows(engine, dimension, first, last, live, point_class=point_class,
                      key=key if dimension != "all" else None)
    per_day = combine(rows, lambda r: r["day"])
    return {"from": first.isoformat(), "to": last.isoformat(), "by": by, "key": key, "point_class": point_class,
            "days": [{"day": day.isoformat(), **per_day[day].as_dict()} for day in sorted(per_day)]}


def channels(engine: Engine, first: date, last: date, live: Live, *, point_class: int | None = None,
             below_target: bool = False, limit: int = 100, hd_min_height: int = 720) -> dict[str, Any]:
    """The channels with the lowest online rate first (where to send the maintenance team)."""
    summed: dict[str, dict[str, Any]] = {}
    stored = store.read_channels(engine, first, min(last, (live.today or last + timedelta(days=1)) - timedelta(days=1)),
                                 point_class=point_class)
    today = live.today_channels if live.today is not None and first <= live.today <= last else []
    for row in chain(stored, (r for r in today if point_class is None or r["point_class"] == point_class)):
        entry = summed.setdefault(row["channel_id"], {"channel_id": row["channel_id"], "device_id": row["device_id"],
                                                      "point_class": row["point_class"], "observed_s": 0.0,
                                                      "online_s": 0.0, "intact_s": 0.0, "width": 0, "height": 0})
        for name in ("observed_s", "online_s", "intact_s"):
            entry[name] += float(row[name] or 0)
        if row.get("height"):
            entry["width"], entry["height"] = int(row["width"] or 0), int(row["height"])
    items = []
    for entry in summed.values():
        figures = channel_figures(entry["observed_s"], entry["online_s"], entry["intact_s"])
        target = ONLINE_TARGET.get(entry["point_class"])
        if below_target and (target is None or figures["online_rate"] is None or figures["online_rate"] >= target):
            continue
        items.append({"channel_id": entry["channel_id"], "device_id": entry["device_id"],
                      "point_class": entry["point_class"] or None, **figures,
                      "resolution": [entry["width"], entry["height"]] if entry["height"] else None,
                      "hd": entry["height"] >= hd_min_height if entry["height"] else None,
                      "online_target": target})
    items.sort(key=lambda i: (i["online_rate"] if i["online_rate"] is not None else 2.0, i["channel_id"]))
    items = items[:limit]
    names = store.channel_names(engine, (i["channel_id"] for i in items))
    for item in items:
        item["name"] = names.get(item["channel_id"], "")
    return {"from": first.isoformat(), "to": last.isoformat(), "items": items, "count": len(summed)}


def _names(engine: Engine, by: str, keys: Iterable[str]) -> Mapping[str, str]:
    if by == "organisation":
        return store.names_of(engine, keys)
    if by == "device_type":
        return DEVICE_TYPES
    if by == "point_class":
        return {"0": "unclassified", "1": "class one", "2": "class two"}
    return {}

