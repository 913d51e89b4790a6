"""Retention: profiles (how long footage is kept), which profile a channel uses, legal holds
(footage no rule may delete), and the state of each media node's sweeps.

Reading profiles and status needs channels:read. Changing them, and everything about legal
holds (case references and reasons are for the people who manage them), needs
retention:manage. Every change is audited with who, what and why. The routes work from the
database alone: the media nodes apply the rules at their next sweep and report back through
the retention_sweeps table.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from camgrid.api.errors import ApiError
from camgrid.api.paging import CursorQuery, LimitQuery, aware_row, decode_cursor, fill_page
from camgrid.api.security import Principal, api_context, record, require
from camgrid.governance import retention as rules
from camgrid.governance import roles
from camgrid.store.tables import retention_sweeps

router = APIRouter(tags=["retention"])

# Until camgrid.governance.roles defines retention:manage, only admins (users:admin) manage retention.
RETENTION_MANAGE = roles.RETENTION_MANAGE


class ProfileRequest(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
    max_age_days: int | None = Field(rules.DEFAULT_MAX_AGE_DAYS, ge=1, le=rules.MAX_DAYS,
                                     description="Footage older than this is deleted; null: kept until space runs low.")
    min_age_days: int = Field(0, ge=0, le=rules.MAX_DAYS,
                              description="Footage younger than this is never deleted, even when the disk is full.")
    description: str = Field("", max_length=500)


class ProfileChange(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")
    max_age_days: int | None = Field(None, ge=1, le=rules.MAX_DAYS, description="null: no maximum age.")
    min_age_days: int | None = Field(None, ge=0, le=rules.MAX_DAYS)
    description: str | None = Field(None, max_length=500)


class AssignRequest(BaseModel):
    profile: int | str = Field(description="The profile's id or name (\"default\" returns the channel to the default).")


class HoldRequest(BaseModel):
    channel_id: str = Field(min_length=1, max_length=20)
    start: datetime = Field(alias="from", description="Start of the footage held, ISO 8601 with zone.")
    end: datetime = Field(alias="to", description="End of the footage held, ISO 8601 with zone.")
    case_ref: str = Field(min_length=1, max_length=100, description="The case, order or request the hold is for.")
    reason: str = Field(min_length=1, max_length=500)
    until: datetime | None = Field(None, description="When the hold lapses by itself; omit to hold until released.")


class ReleaseRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=500, description="Why the footage may go again (case closed, ...).")


def _refused(exc: rules.RetentionError) -> ApiError:
    status = 404 if isinstance(exc, rules.NotFound) else 409 if isinstance(exc, rules.Conflict) else 400
    return ApiError(status, str(exc))


def _hold(row: dict[str, Any]) -> dict[str, Any]:
    item = aware_row(row)
    item["from"], item["to"] = item.pop("start_at"), item.pop("end_at")
    now = datetime.now(UTC)
    item["active"] = item["released_at"] is None and (item["until"] is None or item["until"] > now)
    return item


# -- profiles ---------------------------------------------------------------------------------


@router.get("/retention/profiles")
def list_profiles(request: Request, principal: Principal = require(roles.CHANNELS_READ)) -> dict[str, Any]:
    """Every profile with the number of channels assigned to it. Channels without a profile use
    "default"."""
    return {"items": [aware_row(p) for p in rules.list_profiles(api_context(request).engine)]}


@router.post("/retention/profiles", status_code=201)
def create_profile(body: ProfileRequest, request: Request, principal: Principal = require(RETENTION_MANAGE)) -> dict[str, Any]:
    try:
        profile = rules.create_profile(api_context(request).engine, body.name, body.max_age_days, body.min_age_days,
                                       body.description, principal.username)
    except rules.RetentionError as exc:
        raise _refused(exc) from None
    record(request, principal, "retention.profile.create", body.name, body.model_dump())
    return aware_row(profile)


@router.patch("/retention/profiles/{profile_id}")
def update_profile(profile_id: int, body: ProfileChange, request: Request,
                   principal: Principal = require(RETENTION_MANAGE)) -> dict[str, Any]:
    """Change a profile; only the fields sent change (max_age_days: null removes the limit).
    The media nodes apply it at their next sweep."""
    changes = {k: getattr(body, k) for k in body.model_fields_set}
    for name in ("name", "min_age_days", "description"):
        if name in changes and changes[name] is None:
            raise ApiError(400, f"{name} cannot be null")
    if not changes:
        raise ApiError(400, "send at least one of name, max_age_days, min_age_days, description")
    try:
        before, after = rules.update_profile(api_context(request).engine, profile_id, changes, principal.username)
    except rules.RetentionError as exc:
        raise _refused(exc) from None
    record(request, principal, "retention.profile.update", after["name"], {
        "id": profile_id, "before": {k: before[k] for k in changes}, "after": changes})
    return aware_row(after)


# -- channels ---------------------------------------------------------------------------------


@router.get("/channels/{channel_id}/retention")
def channel_retention(channel_id: str, request: Request, principal: Principal = require(roles.CHANNELS_READ)) -> dict[str, Any]:
    """The channel's profile, its oldest footage kept, and how many legal holds are active on it."""
    with api_context(request).engine.begin() as conn:
        profile = rules.channel_profile(conn, channel_id)
        oldest = rules.oldest_footage(conn, channel_id)
        holds = rules.active_hold_count(conn, channel_id)
    return {"channel_id": channel_id, "profile": aware_row(profile), "oldest_footage": oldest and aware_row(oldest),
            "active_holds": holds}


@router.put("/channels/{channel_id}/retention")
def assign_profile(channel_id: str, body: AssignRequest, request: Request,
                   principal: Principal = require(RETENTION_MANAGE)) -> dict[str, Any]:
    """Make the channel use a profile. Takes effect at the media nodes' next sweep."""
    try:
        before, after = rules.assign_profile(api_context(request).engine, channel_id, body.profile, principal.username)
    except rules.RetentionError as exc:
        raise _refused(exc) from None
    record(request, principal, "retention.assign", channel_id, {"from": before["name"], "to": after["name"]})
    return {"channel_id": channel_id, "profile": aware_row(after)}


# -- legal holds ------------------------------------------------------------------------------


@router.post("/retention/holds", status_code=201)
def create_hold(body: HoldRequest, request: Request, principal: Principal = require(RETENTION_MANAGE)) -> dict[str, Any]:
    """Keep a channel's footage in [from, to) from every deletion (maximum age, low disk) until
    released or `until`. The answer says how much footage it keeps now; footage already
    deleted cannot be held."""
    for name, value in (("from", body.start), ("to", body.end), ("until", body.until)):
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise ApiError(400, f"{name} needs a zone, e.g. 2026-05-17T08:00:00+08:00 or ...Z")
    try:
        hold = rules.create_hold(api_context(request).engine, channel_id=body.channel_id, start_at=body.start,
                                 end_at=body.end, case_ref=body.case_ref, reason=body.reason, until=body.until,
                                 actor=principal.username)
    except rules.RetentionError as exc:
        raise _refused(exc) from None
    item = _hold(hold)
    record(request, principal, "retention.hold.create", body.channel_id, {
        "hold_id": item["id"], "case_ref": item["case_ref"], "reason": item["reason"], "from": item["from"],
        "to": item["to"], "until": item["until"], "segments": item["segments"], "bytes": item["bytes"]})
    return item


@router.get("/retention/holds")
def list_holds(
    request: Request,
    channel_id: str | None = Query(None, max_length=20),
    active: bool | None = Query(None, description="true: only active holds; false: only released or lapsed ones."),
    cursor: str | None = CursorQuery,
    limit: int = LimitQuery,
    principal: Principal = require(RETENTION_MANAGE),
) -> dict[str, Any]:
    """Legal holds, oldest first; follow next_cursor for the next page."""
    engine = api_context(request).engine
    after = decode_cursor(cursor, (int,))

    def fetch(key: list[Any] | None, n: int) -> list[dict[str, Any]]:
        return rules.list_holds(engine, channel_id=channel_id, active=active, limit=n, after_id=key[0] if key else None)

    rows, next_cursor = fill_page(fetch, lambda r: [r["id"]], None, after, limit)
    return {"items": [_hold(r) for r in rows], "next_cursor": next_cursor}


@router.get("/retention/holds/{hold_id}")
def get_hold(hold_id: int, request: Request, principal: Principal = require(RETENTION_MANAGE)) -> dict[str, Any]:
    try:
        with api_context(request).engine.connect() as conn:
            return _hold(rules.hold_with_footage(conn, hold_id))
    except rules.RetentionError as exc:
        raise _refused(exc) from None


@router.post("/retention/holds/{hold_id}/release")
def release_hold(hold_id: int, body: ReleaseRequest, request: Request,
                 principal: Principal = require(RETENTION_MANAGE)) -> dict[str, Any]:
    """End a hold: its footage follows its profile again (and may go at the next sweep)."""
    try:
        hold = rules.release_hold(api_context(request).engine, hold_id, principal.username, body.reason)
    except rules.RetentionError as exc:
        raise _refused(exc) from None
    item = _hold(hold)
    record(request, principal, "retention.hold.release", item["channel_id"], {
        "hold_id": hold_id, "case_ref": item["case_ref"], "reason": body.reason})
    return item


# -- status -----------------------------------------------------------------------------------


@router.get("/retention/status")
def status(request: Request, principal: Principal = require(roles.CHANNELS_READ)) -> dict[str, Any]:
    """The rules in force and each media node's last sweep: its disk (free, size, quota use),
    what it deleted and why, and whether space ran short. A node whose last sweep is older than
    three sweep intervals is marked stale (stopped, or its sweeps fail: see its log)."""
    ctx = api_context(request)
    settings = ctx.settings.retention
    with ctx.engine.begin() as conn:
        default = rules.default_profile(conn)
        oldest = rules.oldest_footage(conn)
        holds = rules.active_hold_count(conn)
        sweeps = [aware_row(dict(r)) for r in conn.execute(retention_sweeps.select().order_by(retention_sweeps.c.node_id)).mappings()]
    stale_before = datetime.now(UTC) - timedelta(seconds=3 * settings.sweep_interval_s)
    nodes = []
    for sweep in sweeps:
        result = sweep["result"] or {}
        nodes.append({"node_id": sweep["node_id"], "swept_at": sweep["at"], "stale": sweep["at"] < stale_before,
                      "disk": result.get("disk_after") or result.get("disk_before"), "last_sweep": result})
    return {
        "enabled": settings.enabled, "sweep_interval_s": settings.sweep_interval_s,
        "low_water": {"min_free_percent": settings.min_free_percent, "min_free_bytes": settings.min_free_bytes},
        "high_water": {"target_free_percent": settings.target_free_percent, "target_free_bytes": settings.target_free_bytes},
        "quota_bytes": settings.quota_bytes, "default_profile": aware_row(default),
        "oldest_footage": oldest and aware_row(oldest), "active_holds": holds, "nodes": nodes,
    }
