"""Events the platform published on its bus (kept by the EventRecorder), newest first."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import select

from camgrid.api.paging import CursorQuery, LimitQuery, aware_row, decode_cursor, fill_page
from camgrid.api.security import Principal, api_context, require
from camgrid.governance import roles
from camgrid.store.tables import events

router = APIRouter(prefix="/events", tags=["events"])


@router.get("")
def list_events(
    request: Request,
    kind: str | None = Query(None, max_length=64, description="Exact kind, or a prefix ending in '.*' (device.*)."),
    subject: str | None = Query(None, max_length=64, description="Device or channel ID."),
    since: datetime | None = Query(None, description="Only events at or after this time (ISO 8601 with zone)."),
    cursor: str | None = CursorQuery,
    limit: int = LimitQuery,
    principal: Principal = require(roles.EVENTS_READ),
) -> dict[str, Any]:
    ctx = api_context(request)
    after = decode_cursor(cursor, (int,))
    stmt = select(events).order_by(events.c.id.desc())
    if kind:
        stmt = stmt.where(events.c.kind.startswith(kind[:-1], autoescape=True) if kind.endswith(".*")
                          else events.c.kind == kind)
    if subject:
        stmt = stmt.where(events.c.subject == subject)
    if since is not None:
        since = since.astimezone(UTC) if since.tzinfo else since.replace(tzinfo=UTC)
        stmt = stmt.where(events.c.at >= since)

    def fetch(key: list[Any] | None, n: int) -> list[dict[str, Any]]:
        page = stmt if key is None else stmt.where(events.c.id < key[0])
        with ctx.engine.connect() as conn:
            return [aware_row(dict(r)) for r in conn.execute(page.limit(n)).mappings()]

    items, next_cursor = fill_page(fetch, lambda r: [r["id"]], None, after, limit)
    return {"items": items, "next_cursor": next_cursor}
