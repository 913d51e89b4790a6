"""Alarms in the database: applying a batch of candidates and clears (de-duplication in one
transaction), and reading alarms back. Blocking: call from a worker thread.

A batch is applied in event order against the unresolved alarms of the keys it names, loaded
once: a flood of 10,000 repeats of one condition is one row update (count + 10,000), not 10,000
statements. Counts are added in SQL (count = count + n), so a concurrent writer loses none.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import IntegrityError

from camgrid.ops.alarms.model import (
    OPEN, RESOLVED, SYSTEM_ACTOR, UNRESOLVED, AlarmNotFound, Candidate, Clear, Supersede, matches,
)
from camgrid.store.tables import alarm_bookmarks, alarm_history, alarm_sources, alarms

CHUNK = 500
_MUTABLE = ("count", "last_at", "detail", "priority", "cleared_at", "state", "resolved_at", "resolved_by",
            "resolution", "open_key", "title")


@dataclass(slots=True)
class Change:
    """Something that happened to an alarm: what (`event`), the alarm after it, who and why."""

    event: str  # raised | recurred | escalated | cleared | acknowledged | dispatched | resolved | note
    alarm: dict[str, Any]
    at: datetime
    actor: str = SYSTEM_ACTOR
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def aware(value: Any) -> Any:
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value


def alarm_dict(row: Any) -> dict[str, Any]:
    return {k: aware(v) for k, v in dict(row).items()}


def public(alarm: dict[str, Any]) -> dict[str, Any]:
    """An alarm as the API and notifications show it (no internal keys)."""
    return {k: v for k, v in alarm.items() if k != "open_key"}


def _history(alarm_id: int, at: datetime, action: str, actor: str = SYSTEM_ACTOR, note: str = "",
             data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"alarm_id": alarm_id, "at": at, "actor": actor[:64], "action": action, "note": note[:2000], "data": data or {}}


def _load_open(conn: Connection, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    keys = sorted(set(keys))
    out: dict[str, dict[str, Any]] = {}
    for i in range(0, len(keys), CHUNK):
        for row in conn.execute(select(alarms).where(alarms.c.open_key.in_(keys[i:i + CHUNK]))).mappings():
            out[row["open_key"]] = alarm_dict(row)
    return out


def _insert(conn: Connection, row: dict[str, Any]) -> int | None:
    """Insert a new alarm; None when another writer created the same open key meanwhile."""
    if conn.dialect.name == "sqlite":  # one writer at a time: no race to lose
        return conn.execute(alarms.insert().values(**row).returning(alarms.c.id)).scalar_one()
    try:
        with conn.begin_nested():
            return conn.execute(alarms.insert().values(**row).returning(alarms.c.id)).scalar_one()
    except IntegrityError:
        return None


def resolve_fields(at: datetime, actor: str, resolution: str) -> dict[str, Any]:
    return {"state": RESOLVED, "resolved_at": at, "resolved_by": actor[:64], "resolution": resolution, "open_key": None}


def apply(conn: Connection, items: Sequence[Candidate | Clear | Supersede], *,
          auto_resolve: Sequence[str] = ()) -> list[Change]:
    """Apply candidates (raise or repeat), clears and supersessions in order; the changes that
    matter to people (not plain repeats) come back, in order."""
    keys: set[str] = set()
    for item in items:
        keys.update(item.keys + (item.by_key,) if isinstance(item, Supersede) else (item.key,))
    open_rows = _load_open(conn, keys)
    added: dict[int, int] = defaultdict(int)
    dirty: dict[int, dict[str, Any]] = {}
    history: list[dict[str, Any]] = []
    changes: list[Change] = []

    def write(row: dict[str, Any]) -> None:
        values = {k: row[k] for k in _MUTABLE if k != "count"}
        if added.get(row["id"]):
            values["count"] = alarms.c.count + added.pop(row["id"])
        conn.execute(alarms.update().where(alarms.c.id == row["id"]).values(**values))
        dirty.pop(row["id"], None)

    def resolve(row: dict[str, Any], at: datetime, resolution: str, note: str) -> None:
        row.update(resolve_fields(at, SYSTEM_ACTOR, resolution))
        write(row)  # now: a new alarm with the same key may follow in this batch
        open_rows.pop(row["dedup_key"], None)
        history.append(_history(row["id"], at, "resolved", note=note, data={"resolution": resolution}))
        changes.append(Change("resolved", dict(row), at, note=note, data={"resolution": resolution}))

    for item in items:
        if isinstance(item, Candidate):
            row = open_rows.get(item.key)
            if row is None:
                row = {"dedup_key": item.key, "open_key": item.key, "type": item.type, "source": item.source,
                       "priority": item.priority, "state": OPEN, "device_id": item.device_id,
                       "channel_id": item.channel_id, "title": item.title, "detail": item.detail, "count": 1,
                       "first_at": item.at, "last_at": item.at, "cleared_at": None, "acknowledged_at": None,
                       "acknowledged_by": None, "dispatched_at": None, "dispatched_by": None, "dispatched_to": None,
                       "resolved_at": None, "resolved_by": None, "resolution": None}
                new_id = _insert(conn, row)
                if new_id is not None:
                    row["id"] = new_id
                    open_rows[item.key] = row
                    history.append(_history(new_id, item.at, "raised", note=item.title))
                    changes.append(Change("raised", dict(row), item.at))
                    continue
                open_rows.update(_load_open(conn, [item.key]))  # lost the race: repeat the winner's alarm
                if item.key not in open_rows:
                    continue
                row = open_rows[item.key]
            added[row["id"]] += 1
            row["count"] += 1
            row["last_at"] = max(row["last_at"], item.at)
            row["detail"], row["title"] = item.detail, item.title
            dirty[row["id"]] = row
            if row["cleared_at"] is not None:
                row["cleared_at"] = None
                history.append(_history(row["id"], item.at, "recurred", note=item.title))
                changes.append(Change("recurred", dict(row), item.at))
            if item.priority < row["priority"]:
                before, row["priority"] = row["priority"], item.priority
                history.append(_history(row["id"], item.at, "escalated", data={"from": before, "to": item.priority}))
                changes.append(Change("escalated", dict(row), item.at, data={"from": before, "to": item.priority}))
        elif isinstance(item, Clear):
            row = open_rows.get(item.key)
            if row is None or row["cleared_at"] is not None:
                continue
            row["cleared_at"] = item.at
            dirty[row["id"]] = row
            history.append(_history(row["id"], item.at, "cleared", note=item.reason))
            changes.append(Change("cleared", dict(row), item.at, note=item.reason))
            if row["state"] == OPEN and matches(row["type"], auto_resolve):
                resolve(row, item.at, "cleared", f"resolved automatically: {item.reason}")
        else:
            by = open_rows.get(item.by_key)
            for key in item.keys:
                row = open_rows.get(key)
                if row is not None and row["state"] == OPEN and by is not None:
                    resolve(row, item.at, "superseded", f"superseded by alarm {by['id']} ({by['type']})")
    for row in list(dirty.values()):
        write(row)
    if history:
        conn.execute(alarm_history.insert(), history)
    return changes


# -- reads --------------------------------------------------------------------------------------

def get(conn: Connection, alarm_id: int, *, for_update: bool = False) -> dict[str, Any]:
    stmt = select(alarms).where(alarms.c.id == alarm_id)
    if for_update and conn.dialect.name != "sqlite":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).mappings().first()
    if row is None:
        raise AlarmNotFound(f"no alarm {alarm_id}")
    return alarm_dict(row)


def history_of(conn: Connection, alarm_id: int) -> list[dict[str, Any]]:
    stmt = select(alarm_history).where(alarm_history.c.alarm_id == alarm_id).order_by(alarm_history.c.id)
    return [alarm_dict(r) for r in conn.execute(stmt).mappings()]


def query(*, state: str | None = None, priority: int | None = None, max_priority: int | None = None,
          type_: str | None = None, source: str | None = None, channel_id: str | None = None,
          device_id: str | None = None, since: datetime | None = None, until: datetime | None = None) -> Any:
    """The filtered SELECT of alarms, newest first (by id). state: a state, "active"
    (not resolved) or "all"/None."""
    stmt = select(alarms).order_by(alarms.c.id.desc())
    if state == "active":
        stmt = stmt.where(alarms.c.state.in_(UNRESOLVED))
    elif state and state != "all":
        stmt = stmt.where(alarms.c.state == state)
    if priority is not None:
        stmt = stmt.where(alarms.c.priority == priority)
    if max_priority is not None:
        stmt = stmt.where(alarms.c.priority <= max_priority)
    if type_:
        stmt = stmt.where(alarms.c.type.startswith(type_[:-1], autoescape=True) if type_.endswith(".*")
                          else alarms.c.type == type_)
    if source:
        stmt = stmt.where(alarms.c.source == source)
    if channel_id:
        stmt = stmt.where(alarms.c.channel_id == channel_id)
    if device_id:
        stmt = stmt.where(alarms.c.device_id == device_id)
    if since is not None:
        stmt = stmt.where(alarms.c.last_at >= since)
    if until is not None:
        stmt = stmt.where(alarms.c.first_at < until)
    return stmt


def page(engine: Engine, stmt: Any, after_id: int | None, limit: int) -> list[dict[str, Any]]:
    if after_id is not None:
        stmt = stmt.where(alarms.c.id < after_id)
    with engine.connect() as conn:
        return [alarm_dict(r) for r in conn.execute(stmt.limit(limit)).mappings()]


def summary(engine: Engine) -> dict[str, Any]:
    """Unresolved alarms by state and by priority (the console's badge)."""
    stmt = (select(alarms.c.state, alarms.c.priority, func.count()).where(alarms.c.state.in_(UNRESOLVED))
            .group_by(alarms.c.state, alarms.c.priority))
    by_state = {s: 0 for s in UNRESOLVED}
    by_priority = {str(p): 0 for p in (1, 2, 3, 4)}
    with engine.connect() as conn:
        for state, priority, n in conn.execute(stmt):
            by_state[state] = by_state.get(state, 0) + n
            by_priority[str(priority)] = by_priority.get(str(priority), 0) + n
    return {"active": sum(by_state.values()), "by_state": by_state, "by_priority": by_priority}


def bookmarks(engine: Engine, channel_id: str, start: datetime, end: datetime, limit: int = 1000) -> list[dict[str, Any]]:
    stmt = (select(alarm_bookmarks).where(alarm_bookmarks.c.channel_id == channel_id, alarm_bookmarks.c.at >= start,
                                          alarm_bookmarks.c.at < end).order_by(alarm_bookmarks.c.at).limit(limit))
    with engine.connect() as conn:
        return [alarm_dict(r) for r in conn.execute(stmt).mappings()]


# -- tailed sources -----------------------------------------------------------------------------

def source_position(conn: Connection, name: str) -> int | None:
    return conn.execute(select(alarm_sources.c.position).where(alarm_sources.c.name == name)).scalar()


def set_source_position(conn: Connection, name: str, position: int, at: datetime) -> None:
    if conn.execute(alarm_sources.update().where(alarm_sources.c.name == name)
                    .values(position=position, updated_at=at)).rowcount == 0:
        conn.execute(alarm_sources.insert().values(name=name, position=position, updated_at=at))
