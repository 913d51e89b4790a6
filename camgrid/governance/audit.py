"""The audit log: who viewed, commanded or changed what, from where."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Engine, select

from camgrid.store.engine import utcnow
from camgrid.store.tables import audit_log


def _jsonable(detail: dict[str, Any] | None) -> dict[str, Any]:
    return json.loads(json.dumps(detail or {}, default=str))


def audit_row(actor: str, action: str, target: str = "", detail: dict[str, Any] | None = None,
              source_addr: str | None = None) -> dict[str, Any]:
    return {"at": utcnow(), "actor": (actor or "")[:64], "action": action[:64], "target": (target or "")[:200],
            "detail": _jsonable(detail), "source_addr": (source_addr or None) and source_addr[:64]}


def audit(engine: Engine | Connection, actor: str, action: str, target: str = "",
          detail: dict[str, Any] | None = None, source_addr: str | None = None) -> None:
    """Append one audit row. Given a Connection, it joins that connection's transaction."""
    row = audit_row(actor, action, target, detail, source_addr)
    if isinstance(engine, Connection):
        engine.execute(audit_log.insert(), row)
        return
    with engine.begin() as conn:
        conn.execute(audit_log.insert(), row)


def list_audit(engine: Engine, *, actor: str | None = None, action: str | None = None,
               limit: int = 100) -> list[dict[str, Any]]:
    """Newest first."""
    stmt = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if actor is not None:
        stmt = stmt.where(audit_log.c.actor == actor)
    if action is not None:
        stmt = stmt.where(audit_log.c.action == action)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]
