"""The handling workflow: acknowledge → dispatch → resolve, and notes, each with who, when and
why. One transaction per step holds the alarm's change, its history row, the audit row and the
notifications it causes, so none exists without the others. Blocking: call from a worker thread.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from camgrid.governance.audit import audit
from camgrid.ops.alarms import outbox, store
from camgrid.ops.alarms.model import RESOLUTIONS, WorkflowError, next_state
from camgrid.store.engine import utcnow
from camgrid.store.tables import alarm_history, alarms

MAX_NOTE = 2000


def _step(engine: Engine, alarm_id: int, action: str, actor: str, note: str, settings: Any, platform_id: str,
          source_addr: str | None, changes: dict[str, Any], data: dict[str, Any]) -> store.Change:
    now = utcnow()
    with engine.begin() as conn:
        row = store.get(conn, alarm_id, for_update=True)
        state = next_state(alarm_id, row["state"], action, row) if action != "note" else row["state"]
        values = {k: v(now) if callable(v) else v for k, v in changes.items()}
        if action != "note":
            values["state"] = state
            conn.execute(alarms.update().where(alarms.c.id == alarm_id).values(**values))
        row.update(values)
        event = {"acknowledge": "acknowledged", "dispatch": "dispatched", "resolve": "resolved"}.get(action, "note")
        conn.execute(alarm_history.insert().values(alarm_id=alarm_id, at=now, actor=actor[:64], action=event,
                                                   note=note[:MAX_NOTE], data=data))
        change = store.Change(event, row, now, actor=actor, note=note, data=data)
        outbox.enqueue(conn, outbox.rows_for([change], settings, platform_id, now))
        audit(conn, actor, f"alarm.{action}", str(alarm_id),
              {"type": row["type"], "state": row["state"], "note": note[:500], **data}, source_addr)
    return change


def acknowledge(engine: Engine, alarm_id: int, actor: str, note: str = "", *, settings: Any, platform_id: str = "",
                source_addr: str | None = None) -> store.Change:
    return _step(engine, alarm_id, "acknowledge", actor, note, settings, platform_id, source_addr,
                 {"acknowledged_at": lambda now: now, "acknowledged_by": actor[:64]}, {})


def dispatch(engine: Engine, alarm_id: int, actor: str, to: str, note: str = "", *, settings: Any,
             platform_id: str = "", source_addr: str | None = None) -> store.Change:
    to = to.strip()
    if not to:
        raise WorkflowError("say to whom the alarm is dispatched (a person or a team)")
    return _step(engine, alarm_id, "dispatch", actor, note, settings, platform_id, source_addr,
                 {"dispatched_at": lambda now: now, "dispatched_by": actor[:64], "dispatched_to": to[:100]}, {"to": to[:100]})


def resolve(engine: Engine, alarm_id: int, actor: str, resolution: str, note: str = "", *, settings: Any,
            platform_id: str = "", source_addr: str | None = None) -> store.Change:
    if resolution not in RESOLUTIONS:
        raise WorkflowError(f"resolution must be one of {', '.join(RESOLUTIONS)}")
    return _step(engine, alarm_id, "resolve", actor, note, settings, platform_id, source_addr,
                 {**store.resolve_fields(datetime.min, actor, resolution), "resolved_at": lambda now: now},
                 {"resolution": resolution})


def add_note(engine: Engine, alarm_id: int, actor: str, note: str, *, settings: Any, platform_id: str = "",
             source_addr: str | None = None) -> store.Change:
    if not note.strip():
        raise WorkflowError("a note needs some text")
    return _step(engine, alarm_id, "note", actor, note, settings, platform_id, source_addr, {}, {})
