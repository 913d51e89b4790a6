"""Alarms: the list (filters, cursor paging), one alarm with its history, the handling workflow
(acknowledge → dispatch → resolve, notes), the live stream for the console, bookmarks on a
channel's timeline, and the state of notifications.

Reading needs alarms:read; handling needs alarms:handle and is audited (who, what, note) in
the same transaction as the change; notification administration needs alarms:configure. A step
the alarm's state does not allow is 409 with a message that says what to do instead.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from camgrid.api.errors import ApiError
from camgrid.api.paging import CursorQuery, LimitQuery, decode_cursor, fill_page
from camgrid.api.routes.channels import require_zone
from camgrid.api.security import Principal, api_context, client_addr, require
from camgrid.governance import roles
from camgrid.ops.alarms import outbox, store, workflow
from camgrid.ops.alarms.model import RESOLUTIONS, SOURCES, WorkflowError
from camgrid.ops.alarms.store import Change

router = APIRouter(tags=["alarms"])
KEEPALIVE_S = 15.0
MAX_BOOKMARK_RANGE = timedelta(days=93)
StateFilter = Literal["open", "acknowledged", "dispatched", "resolved", "active", "all"]


class NoteBody(BaseModel):
    note: str = Field("", max_length=2000, description="Why, what was seen or done.")


class RequiredNote(BaseModel):
    note: str = Field(min_length=1, max_length=2000)


class DispatchBody(BaseModel):
    to: str = Field(min_length=1, max_length=100, description="The person or team who goes and fixes it.")
    note: str = Field("", max_length=2000)


class ResolveBody(BaseModel):
    resolution: Literal[RESOLUTIONS] = Field(description="fixed, false_alarm, duplicate, no_action or other.")  # type: ignore[valid-type]
    note: str = Field("", max_length=2000)


def _ctx_alarm(alarm: dict[str, Any]) -> dict[str, Any]:
    return outbox.jsonable(store.public(alarm))


async def _step(request: Request, principal: Principal, fn: Any, alarm_id: int, **kw: Any) -> dict[str, Any]:
    ctx = api_context(request)
    try:
        change: Change = await run_in_threadpool(
            fn, ctx.engine, alarm_id, principal.username, settings=ctx.settings.alarms, platform_id=ctx.settings.sip.id,
            source_addr=client_addr(request), **kw)
    except WorkflowError as exc:
        raise ApiError(exc.status, str(exc)) from None
    if ctx.alarms is not None:
        ctx.alarms.announce(change)
    return _ctx_alarm(change.alarm)


# -- reading ------------------------------------------------------------------------------------

@router.get("/alarms")
def list_alarms(
    request: Request,
    state: StateFilter = Query("all", description="A state; active: not resolved; all: every alarm."),
    priority: int | None = Query(None, ge=1, le=4, description="Exactly this priority (1 most urgent)."),
    max_priority: int | None = Query(None, ge=1, le=4, description="This priority or more urgent."),
    type: str | None = Query(None, max_length=64, description="Exact type, or a prefix ending in '.*' (vqd.*)."),
    source: Literal[SOURCES] | None = Query(None, description="device, health, vqd, recording, media or platform."),  # type: ignore[valid-type]
    channel_id: str | None = Query(None, max_length=20),
    device_id: str | None = Query(None, max_length=20),
    since: datetime | None = Query(None, description="Alarms active at or after this time (last seen ≥ since), with zone."),
    until: datetime | None = Query(None, description="Alarms raised before this time, with zone."),
    cursor: str | None = CursorQuery,
    limit: int = LimitQuery,
    principal: Principal = require(roles.ALARMS_READ),
) -> dict[str, Any]:
    """Alarms, newest first; follow next_cursor for the next page."""
    engine = api_context(request).engine
    stmt = store.query(state=state, priority=priority, max_priority=max_priority, type_=type, source=source,
                       channel_id=channel_id, device_id=device_id,
                       since=since and require_zone("since", since), until=until and require_zone("until", until))
    after = decode_cursor(cursor, (int,))

    def fetch(key: list[Any] | None, n: int) -> list[dict[str, Any]]:
        return store.page(engine, stmt, key[0] if key else None, n)

    rows, next_cursor = fill_page(fetch, lambda r: [r["id"]], None, after, limit)
    return {"items": [_ctx_alarm(r) for r in rows], "next_cursor": next_cursor}


@router.get("/alarms/summary")
def summary(request: Request, principal: Principal = require(roles.ALARMS_READ)) -> dict[str, Any]:
    """Unresolved alarms by state and by priority (the console's badge)."""
    return store.summary(api_context(request).engine)


@router.get("/alarms/stream", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}, "description": "Server-sent events"}})
async def stream(request: Request, principal: Principal = require(roles.ALARMS_READ)) -> StreamingResponse:
    """Server-sent events: `hello` once, then one `alarm` event per change (raised, recurred,
    escalated, cleared, acknowledged, dispatched, resolved, note) with the alarm and `popup`
    (a linkage rule asks the console to open the channel's video); a comment every 15 s keeps
    proxies from closing the stream. Send the bearer token as for any route (fetch() with a
    streamed body; EventSource cannot send headers)."""
    centre = api_context(request).alarms
    if centre is None:
        raise ApiError(503, "the alarm centre is not running in this process (alarms.enabled is off?)")

    async def events() -> Any:
        async with centre.live.listen() as queue:
            yield f"event: hello\ndata: {json.dumps({'user': principal.username})}\n\n"
            while not await request.is_disconnected():
                try:
                    message = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                yield f"event: alarm\ndata: {json.dumps(message, ensure_ascii=False)}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/alarms/notifications")
def notifications(request: Request, principal: Principal = require(roles.ALARMS_CONFIGURE)) -> dict[str, Any]:
    """Deliveries by state and kind, the latest failing ones with their errors, and the receivers
    configured (URLs and broker; never secrets)."""
    ctx = api_context(request)
    s = ctx.settings.alarms
    out = outbox.status(ctx.engine)
    out["receivers"] = {"webhooks": [h.url for h in s.webhooks],
                        "mqtt": s.mqtt and {"host": s.mqtt.host, "port": s.mqtt.port, "topic_prefix": s.mqtt.topic_prefix}}
    if ctx.alarms is not None:
        out["counters"] = ctx.alarms.notifier.collect()
    return outbox.jsonable(out)


@router.post("/alarms/notifications/retry")
async def retry_notifications(request: Request, principal: Principal = require(roles.ALARMS_CONFIGURE)) -> dict[str, Any]:
    """Queue every given-up delivery again (after the receiver was fixed)."""
    ctx = api_context(request)
    now = datetime.now(UTC)

    def run() -> int:
        n = outbox.retry_failed(ctx.engine, now)
        from camgrid.governance.audit import audit

        audit(ctx.engine, principal.username, "alarm.notifications.retry", "", {"requeued": n}, client_addr(request))
        return n

    n = await run_in_threadpool(run)
    if ctx.alarms is not None:
        ctx.alarms.notifier.wake()
    return {"requeued": n}


class NotificationTestBody(BaseModel):
    kind: Literal["webhook", "mqtt"] | None = Field(None, description="Which kind of receiver; none: every one configured.")
    url: str | None = Field(None, max_length=2000, description="Only this configured webhook (its URL).")


@router.post("/alarms/notifications/test")
async def send_test_notifications(request: Request, body: NotificationTestBody | None = None,
                             principal: Principal = require(roles.ALARMS_CONFIGURE)) -> dict[str, Any]:
    """Send a clearly marked test notification (event "test", alarm type test.notification) to
    the configured receivers now, through the real senders, and say for each whether it took it
    or what went wrong. Only configured receivers: this is no way to POST to any URL."""
    ctx = api_context(request)
    if ctx.alarms is None:
        raise ApiError(503, "the alarm centre is not running in this process")
    s = ctx.settings.alarms
    body = body or NotificationTestBody()
    targets: list[tuple[str, str]] = []
    if body.kind in (None, "webhook"):
        hooks = [h.url for h in s.webhooks if body.url is None or h.url == body.url]
        if body.url is not None and not hooks:
            raise ApiError(404, f"no webhook {body.url} is configured (alarms.webhooks)")
        targets += [("webhook", url) for url in hooks]
    if body.kind in (None, "mqtt") and body.url is None and s.mqtt is not None:
        targets.append(("mqtt", s.mqtt.topic_prefix))
    if not targets:
        raise ApiError(404, "no notification receiver of that kind is configured (alarms.webhooks, alarms.mqtt)")
    results = await asyncio.gather(*(ctx.alarms.notifier.send_test(kind, target, actor=principal.username,
                                                                   platform_id=ctx.settings.sip.id)
                                     for kind, target in targets))
    from camgrid.governance.audit import audit

    await run_in_threadpool(audit, ctx.engine, principal.username, "alarm.notifications.test", "",
                            {"results": [{k: r[k] for k in ("kind", "target", "ok", "error")} for r in results]},
                            client_addr(request))
    return {"ok": all(r["ok"] for r in results), "results": list(results)}


@router.get("/alarms/{alarm_id}")
def get_alarm(alarm_id: int, request: Request, principal: Principal = require(roles.ALARMS_READ)) -> dict[str, Any]:
    """One alarm with its history: raised, recurred, escalated, cleared, each workflow step and
    every note, oldest first, with who and when."""
    try:
        with api_context(request).engine.connect() as conn:
            alarm = store.get(conn, alarm_id)
            alarm["history"] = store.history_of(conn, alarm_id)
    except WorkflowError as exc:
        raise ApiError(exc.status, str(exc)) from None
    return _ctx_alarm(alarm)


# -- handling -----------------------------------------------------------------------------------

@router.post("/alarms/{alarm_id}/acknowledge")
async def acknowledge(alarm_id: int, request: Request, body: NoteBody | None = None,
                      principal: Principal = require(roles.ALARMS_HANDLE)) -> dict[str, Any]:
    """Take the alarm on: someone is looking at it. Only an open alarm can be acknowledged."""
    return await _step(request, principal, workflow.acknowledge, alarm_id, note=(body or NoteBody()).note)


@router.post("/alarms/{alarm_id}/dispatch")
async def dispatch(alarm_id: int, body: DispatchBody, request: Request,
                   principal: Principal = require(roles.ALARMS_HANDLE)) -> dict[str, Any]:
    """Send someone (a person or team) to fix it; an acknowledged alarm, or a dispatched one sent
    to someone else."""
    return await _step(request, principal, workflow.dispatch, alarm_id, to=body.to, note=body.note)


@router.post("/alarms/{alarm_id}/resolve")
async def resolve(alarm_id: int, body: ResolveBody, request: Request,
                  principal: Principal = require(roles.ALARMS_HANDLE)) -> dict[str, Any]:
    """Close the alarm with a resolution. If the condition comes back later, a new alarm is raised."""
    return await _step(request, principal, workflow.resolve, alarm_id, resolution=body.resolution, note=body.note)


@router.post("/alarms/{alarm_id}/notes", status_code=201)
async def add_note(alarm_id: int, body: RequiredNote, request: Request,
                   principal: Principal = require(roles.ALARMS_HANDLE)) -> dict[str, Any]:
    """A note on the alarm, in any state (also after it was resolved)."""
    return await _step(request, principal, workflow.add_note, alarm_id, note=body.note)


# -- bookmarks ----------------------------------------------------------------------------------

@router.get("/channels/{channel_id}/bookmarks")
def channel_bookmarks(channel_id: str, request: Request,
                      start: datetime = Query(alias="from", description="Start, ISO 8601 with zone."),
                      end: datetime = Query(alias="to", description="End, ISO 8601 with zone."),
                      principal: Principal = require(roles.ALARMS_READ)) -> dict[str, Any]:
    """Alarm bookmarks on the channel's recording timeline in [from, to) (≤ 93 days)."""
    start, end = require_zone("from", start), require_zone("to", end)
    if end <= start or end - start > MAX_BOOKMARK_RANGE:
        raise ApiError(400, "to must be after from, and the range at most 93 days")
    items = store.bookmarks(api_context(request).engine, channel_id, start, end)
    return {"channel_id": channel_id, "items": outbox.jsonable(items)}
