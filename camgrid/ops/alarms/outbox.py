"""The notification outbox: what is sent where, written in the same transaction as the change
it announces, and taken out by the notifier with a lease so that a crash or a second instance
never loses a delivery. Payloads, topics and the backoff schedule live here too. Blocking SQL:
call from a worker thread.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, select, update

from camgrid.ops.alarms.store import Change, public
from camgrid.store.tables import alarm_outbox

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
SCHEMA = "camgrid.alarm/1"


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def payload(change: Change, platform_id: str) -> dict[str, Any]:
    """The JSON document every receiver gets (docs/alarms.md, "Notifications")."""
    return jsonable({
        "schema": SCHEMA, "event": change.event, "event_id": uuid.uuid4().hex, "at": change.at,
        "platform": platform_id, "actor": change.actor, "note": change.note, "data": change.data,
        "alarm": public(change.alarm),
    })


def body(document: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact, keys sorted, UTF-8."""
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def topic(prefix: str, alarm: dict[str, Any]) -> str:
    return f"{prefix.rstrip('/')}/{alarm['priority']}/{alarm['type']}".replace("+", "_").replace("#", "_")


def wanted(change: Change, settings: Any) -> bool:
    return change.event in settings.notify_events and change.alarm.get("priority", 4) <= settings.notify_max_priority


def rows_for(changes: Iterable[Change], settings: Any, platform_id: str, now: datetime) -> list[dict[str, Any]]:
    """Outbox rows for the changes that are to be notified, one per receiver."""
    if not settings.webhooks and settings.mqtt is None:
        return []
    rows = []
    for change in changes:
        if not wanted(change, settings):
            continue
        doc = payload(change, platform_id)
        base = {"alarm_id": change.alarm.get("id"), "payload": doc, "state": PENDING, "attempts": 0,
                "next_attempt_at": now, "created_at": now}
        rows.extend({**base, "kind": "webhook", "target": hook.url[:500]} for hook in settings.webhooks)
        if settings.mqtt is not None:
            rows.append({**base, "kind": "mqtt", "target": topic(settings.mqtt.topic_prefix, change.alarm)[:500]})
    return rows


def enqueue(conn: Connection, rows: list[dict[str, Any]]) -> int:
    if rows:
        conn.execute(alarm_outbox.insert(), rows)
    return len(rows)


def backoff_s(attempts: int, base_s: float, max_s: float, rand: Callable[[], float] = random.random) -> float:
    """Wait before attempt `attempts + 1`: exponential from base_s, capped at max_s, with jitter
    (between half and all of it), so receivers coming back are not hit by every sender at once."""
    delay = min(max_s, base_s * 2 ** min(max(attempts - 1, 0), 30))
    return delay * (0.5 + rand() / 2)


def claim(engine: Engine, now: datetime, limit: int, lease_s: float) -> list[dict[str, Any]]:
    """Due deliveries, leased until now + lease_s (another claim skips them meanwhile)."""
    with engine.begin() as conn:
        stmt = (select(alarm_outbox).where(alarm_outbox.c.state == PENDING, alarm_outbox.c.next_attempt_at <= now)
                .order_by(alarm_outbox.c.next_attempt_at, alarm_outbox.c.id).limit(limit))
        if conn.dialect.name != "sqlite":
            stmt = stmt.with_for_update(skip_locked=True)
        rows = [dict(r) for r in conn.execute(stmt).mappings()]
        if rows:
            conn.execute(update(alarm_outbox).where(alarm_outbox.c.id.in_([r["id"] for r in rows]))
                         .values(next_attempt_at=now + timedelta(seconds=lease_s)))
    for row in rows:
        for key in ("next_attempt_at", "created_at", "delivered_at"):
            if isinstance(row.get(key), datetime) and row[key].tzinfo is None:
                row[key] = row[key].replace(tzinfo=UTC)
    return rows


def settle(engine: Engine, outcomes: list[dict[str, Any]]) -> None:
    """Write what became of claimed deliveries: {"id", "state", "attempts", "next_attempt_at",
    "delivered_at", "last_error"} each."""
    if not outcomes:
        return
    with engine.begin() as conn:
        for o in outcomes:
            conn.execute(update(alarm_outbox).where(alarm_outbox.c.id == o["id"]).values(
                **{k: v for k, v in o.items() if k != "id"}))


def next_due(engine: Engine) -> datetime | None:
    with engine.connect() as conn:
        value = conn.execute(select(func.min(alarm_outbox.c.next_attempt_at))
                             .where(alarm_outbox.c.state == PENDING)).scalar()
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value


def prune(engine: Engine, before: datetime) -> int:
    with engine.begin() as conn:
        return conn.execute(delete(alarm_outbox).where(alarm_outbox.c.state == DELIVERED,
                                                       alarm_outbox.c.delivered_at < before)).rowcount


def status(engine: Engine, recent: int = 20) -> dict[str, Any]:
    """Counts by state and kind, and the latest failures with their errors."""
    with engine.connect() as conn:
        counts: dict[str, dict[str, int]] = {}
        for state, kind, n in conn.execute(select(alarm_outbox.c.state, alarm_outbox.c.kind, func.count())
                                           .group_by(alarm_outbox.c.state, alarm_outbox.c.kind)):
            counts.setdefault(state, {})[kind] = n
        failing = conn.execute(
            select(alarm_outbox.c.id, alarm_outbox.c.alarm_id, alarm_outbox.c.kind, alarm_outbox.c.target,
                   alarm_outbox.c.state, alarm_outbox.c.attempts, alarm_outbox.c.next_attempt_at,
                   alarm_outbox.c.last_error)
            .where(alarm_outbox.c.state != DELIVERED, alarm_outbox.c.attempts > 0)
            .order_by(alarm_outbox.c.id.desc()).limit(recent)).mappings()
        failing = [{k: (v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v)
                    for k, v in dict(r).items()} for r in failing]
    return {"counts": counts, "failing": failing}


def retry_failed(engine: Engine, now: datetime) -> int:
    """Queue every given-up delivery again (after the receiver was fixed)."""
    with engine.begin() as conn:
        return conn.execute(update(alarm_outbox).where(alarm_outbox.c.state == FAILED).values(
            state=PENDING, attempts=0, next_attempt_at=now, created_at=now)).rowcount


def pending_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(alarm_outbox)
                            .where(and_(alarm_outbox.c.state == PENDING))).scalar_one()
