"""Maintenance: work orders (opened from alarms or by hand, assigned to a team, started,
repaired, closed once the fault has cleared, or cancelled with a reason), their history and SLA
timers, and the maintenance teams.

Reading needs maintenance:read; handling needs maintenance:handle and is audited in the same
transaction as the change; teams need maintenance:configure. A step the order's state does not
allow is 409 with what to do instead.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, model_validator

from camgrid.api.errors import ApiError
from camgrid.api.paging import CursorQuery, LimitQuery, decode_cursor, fill_page
from camgrid.api.security import Principal, api_context, client_addr, require
from camgrid.governance import roles
from camgrid.ops.maintenance import model, orders, store
from camgrid.ops.maintenance.model import OrderError
from camgrid.store.engine import utcnow

router = APIRouter(tags=["maintenance"])
StateFilter = Literal["open", "assigned", "in_progress", "verifying", "closed", "cancelled", "active", "all"]


class OpenBody(BaseModel):
    alarm_id: int | None = Field(None, description="The alarm to repair; or give device_id/channel_id and a title.")
    device_id: str | None = Field(None, max_length=20)
    channel_id: str | None = Field(None, max_length=20)
    title: str | None = Field(None, max_length=300, description="What needs doing (work orders without an alarm).")
    priority: int = Field(3, ge=1, le=4, description="1 most urgent (work orders without an alarm; else the alarm's).")
    team: str | None = Field(None, max_length=64, description="The team; omit to route by maintenance.routes.")
    assignee: str | None = Field(None, max_length=64, description="The person (a user) who does the work.")
    note: str = Field("", max_length=2000)

    @model_validator(mode="after")
    def _what(self) -> OpenBody:
        if self.alarm_id is None and not self.title:
            raise ValueError("give an alarm_id, or a title with the device_id or channel_id")
        return self


class AssignBody(BaseModel):
    team: str | None = Field(None, max_length=64)
    assignee: str | None = Field(None, max_length=64)
    note: str = Field("", max_length=2000)


class NoteBody(BaseModel):
    note: str = Field("", max_length=2000, description="What was seen or done.")


class RequiredNote(BaseModel):
    note: str = Field(min_length=1, max_length=2000)


class TeamBody(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[^\s].*$")
    contact: str = Field("", max_length=200, description="Phone, radio channel or e-mail of the team.")
    members: list[str] = Field([], max_length=200, description="Usernames of the team's technicians.")


def _view(order: dict[str, Any]) -> dict[str, Any]:
    return {**order, "sla": model.sla_view(order, utcnow())}


async def _call(fn: Any, *args: Any, **kw: Any) -> Any:
    try:
        return await run_in_threadpool(fn, *args, **kw)
    except OrderError as exc:
        raise ApiError(exc.status, str(exc)) from None


@router.get("/work-orders")
def list_orders(
    request: Request,
    state: StateFilter = Query("active", description="A state; active: not closed or cancelled; all: every order."),
    team: str | None = Query(None, max_length=64, description="Only this team's (by name)."),
    assignee: str | None = Query(None, max_length=64, description="Only this person's; 'me' for the caller's own."),
    channel_id: str | None = Query(None, max_length=20),
    device_id: str | None = Query(None, max_length=20),
    breached: bool | None = Query(None, description="Only orders past (true) or within (false) their SLA deadlines."),
    cursor: str | None = CursorQuery,
    limit: int = LimitQuery,
    principal: Principal = require(roles.MAINTENANCE_READ),
) -> dict[str, Any]:
    """Work orders, newest first, each with its SLA timers."""
    engine = api_context(request).engine
    team_id = None
    if team is not None:
        with engine.connect() as conn:
            row = store.team_by_name(conn, team)
        if row is None:
            raise ApiError(404, f"no maintenance team named {team!r}")
        team_id = row["id"]
    stmt = store.query(state=state, team_id=team_id, assignee=principal.username if assignee == "me" else assignee,
                       channel_id=channel_id, device_id=device_id, breached=breached)
    after = decode_cursor(cursor, (int,))
    rows, next_cursor = fill_page(lambda key, n: store.page(engine, stmt, key[0] if key else None, n),
                                  lambda r: [r["id"]], None, after, limit)
    return {"items": [_view(r) for r in rows], "next_cursor": next_cursor}


@router.get("/work-orders/{order_id}")
def get_order(order_id: int, request: Request, principal: Principal = require(roles.MAINTENANCE_READ)) -> dict[str, Any]:
    with api_context(request).engine.connect() as conn:
        try:
            order = store.get(conn, order_id)
        except OrderError as exc:
            raise ApiError(exc.status, str(exc)) from None
        return {**_view(order), "history": store.history_of(conn, order_id)}


@router.post("/work-orders", status_code=201)
async def open_order(body: OpenBody, request: Request,
                     principal: Principal = require(roles.MAINTENANCE_HANDLE)) -> dict[str, Any]:
    """Open a work order for an alarm, or for a device or channel with a title."""
    ctx = api_context(request)
    common = {"team": body.team, "assignee": body.assignee, "note": body.note, "now": utcnow(),
              "source_addr": client_addr(request)}
    if body.alarm_id is not None:
        order = await _call(orders.open_for_alarm, ctx.engine, ctx.settings, body.alarm_id, principal.username, **common)
    else:
        order = await _call(orders.open_manual, ctx.engine, ctx.settings, principal.username, title=body.title,
                            priority=body.priority, device_id=body.device_id, channel_id=body.channel_id, **common)
    return _view(order)


async def _step(request: Request, principal: Principal, order_id: int, action: str, note: str,
                **kw: Any) -> dict[str, Any]:
    ctx = api_context(request)
    _, after = await _call(store.step, ctx.engine, order_id, action, principal.username, note,
                           source_addr=client_addr(request), **kw)
    if after["state"] == model.CLOSED:
        await run_in_threadpool(orders.after_close, ctx.engine, ctx.settings, after, principal.username)
    return _view(after)


@router.post("/work-orders/{order_id}/assign")
async def assign(order_id: int, body: AssignBody, request: Request,
                 principal: Principal = require(roles.MAINTENANCE_HANDLE)) -> dict[str, Any]:
    """Give the order to a team and/or a person (again, to hand it over)."""
    return await _step(request, principal, order_id, "assign", body.note, team=body.team, assignee=body.assignee)


@router.post("/work-orders/{order_id}/start")
async def start(order_id: int, request: Request, body: NoteBody | None = None,
                principal: Principal = require(roles.MAINTENANCE_HANDLE)) -> dict[str, Any]:
    """The team has taken the work on (the respond deadline stops)."""
    return await _step(request, principal, order_id, "start", body.note if body else "")


@router.post("/work-orders/{order_id}/repaired")
async def repaired(order_id: int, body: RequiredNote, request: Request,
                   principal: Principal = require(roles.MAINTENANCE_HANDLE)) -> dict[str, Any]:
    """The repair is done: the order waits for the fault to clear (or closes, if the platform cannot see it)."""
    return await _step(request, principal, order_id, "repaired", body.note)


@router.post("/work-orders/{order_id}/cancel")
async def cancel(order_id: int, body: RequiredNote, request: Request,
                 principal: Principal = require(roles.MAINTENANCE_HANDLE)) -> dict[str, Any]:
    """Cancel with a reason (a duplicate, a camera being removed)."""
    return await _step(request, principal, order_id, "cancel", body.note)


@router.post("/work-orders/{order_id}/hold")
async def hold(order_id: int, body: RequiredNote, request: Request,
               principal: Principal = require(roles.MAINTENANCE_HANDLE)) -> dict[str, Any]:
    """Put the order on hold, saying what it waits for (access, a part): its SLA clocks stop."""
    return await _step(request, principal, order_id, "hold", body.note)


@router.post("/work-orders/{order_id}/resume")
async def resume(order_id: int, request: Request, body: NoteBody | None = None,
                 principal: Principal = require(roles.MAINTENANCE_HANDLE)) -> dict[str, Any]:
    """End the hold: the SLA clocks run again, the deadlines moved by the time held."""
    return await _step(request, principal, order_id, "resume", body.note if body else "")


@router.post("/work-orders/{order_id}/notes", status_code=201)
async def add_note(order_id: int, body: RequiredNote, request: Request,
                   principal: Principal = require(roles.MAINTENANCE_HANDLE)) -> dict[str, Any]:
    return await _step(request, principal, order_id, "note", body.note)


@router.get("/maintenance/teams")
def teams(request: Request, principal: Principal = require(roles.MAINTENANCE_READ)) -> list[dict[str, Any]]:
    """The teams, with their members and how many active work orders each holds."""
    return store.list_teams(api_context(request).engine)


@router.post("/maintenance/teams", status_code=201)
async def create_team(body: TeamBody, request: Request,
                      principal: Principal = require(roles.MAINTENANCE_CONFIGURE)) -> dict[str, Any]:
    return await _call(store.save_team, api_context(request).engine, principal.username, body.name,
                       contact=body.contact, members=body.members, source_addr=client_addr(request))


@router.put("/maintenance/teams/{team_id}")
async def update_team(team_id: int, body: TeamBody, request: Request,
                      principal: Principal = require(roles.MAINTENANCE_CONFIGURE)) -> dict[str, Any]:
    return await _call(store.save_team, api_context(request).engine, principal.username, body.name,
                       contact=body.contact, members=body.members, team_id=team_id, source_addr=client_addr(request))

