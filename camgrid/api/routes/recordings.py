"""Recording: what each channel records (its plan), and the timeline of what is on disk."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from camgrid.api.errors import ApiError
from camgrid.api.routes.channels import DeviceIdQuery, find_channel, require_zone
from camgrid.api.security import Principal, api_context, record, require
from camgrid.governance import roles
from camgrid.media.recordings_query import segments_between, spans_between, timeline
from camgrid.media.client import NodeError
from camgrid.signaling.recording_plans import PlanError

router = APIRouter(tags=["recordings"])
MAX_TIMELINE = timedelta(days=93)


class Window(BaseModel):
    days: list[int] = Field(default_factory=lambda: list(range(7)), description="0 = Monday ... 6 = Sunday.")
    start: str = Field(alias="from", pattern=r"^\d{2}:\d{2}$", description="HH:MM in the platform's time zone.")
    end: str = Field(alias="to", pattern=r"^\d{2}:\d{2}$", description="HH:MM, after `from` (24:00 for the end of the day).")


class PlanRequest(BaseModel):
    mode: Literal["continuous", "schedule", "event", "off"] = Field(
        description="continuous; schedule (weekly windows); event (media.event_pre_s before each device alarm of the "
                    "channel to media.event_post_s after the last); off.")
    schedule: list[Window] = Field(default_factory=list, description="Weekly windows, for mode schedule.")


def plans_of(ctx: Any) -> Any:
    if ctx.recording_plans is None:
        raise ApiError(503, "recording is unavailable: this API runs without media nodes")
    return ctx.recording_plans


@router.get("/channels/{channel_id}/record-plan")
def get_plan(channel_id: str, request: Request, principal: Principal = require(roles.CHANNELS_READ)) -> dict[str, Any]:
    return plans_of(api_context(request)).describe(channel_id)


@router.put("/channels/{channel_id}/record-plan")
def put_plan(channel_id: str, body: PlanRequest, request: Request, device_id: str | None = DeviceIdQuery,
             principal: Principal = require(roles.RECORDINGS_MANAGE)) -> dict[str, Any]:
    """Record the channel continuously, on a weekly schedule, or not at all. Takes effect within seconds."""
    ctx = api_context(request)
    plans = plans_of(ctx)
    channel = find_channel(ctx, channel_id, device_id)
    schedule = [{"days": w.days, "from": w.start, "to": w.end} for w in body.schedule]
    try:
        result = plans.set_plan(channel_id, channel["device_id"], body.mode, schedule, principal.username)
    except PlanError as exc:
        raise ApiError(400, str(exc)) from None
    record(request, principal, "recording.plan", channel_id, {"device_id": channel["device_id"], "mode": body.mode,
                                                              "schedule": schedule})
    return result


@router.get("/channels/{channel_id}/recordings")
def get_timeline(
    channel_id: str,
    request: Request,
    start: datetime = Query(..., alias="from", description="Start of the range, ISO 8601 with zone."),
    end: datetime = Query(..., alias="to", description="End of the range, ISO 8601 with zone."),
    include_segments: bool = Query(False, description="Also list the segment files."),
    principal: Principal = require(roles.CHANNELS_READ),
) -> dict[str, Any]:
    """What the platform holds of the channel in [from, to): covered spans and gaps (segments
    less than 1.5 s apart count as one span), total seconds and bytes."""
    start, end = require_zone("from", start), require_zone("to", end)
    if end <= start:
        raise ApiError(400, "to must be after from")
    if end - start > MAX_TIMELINE:
        raise ApiError(400, f"ask for at most {MAX_TIMELINE.days} days at a time")
    engine = api_context(request).engine
    if not include_segments:
        return spans_between(engine, channel_id, start, end)
    segments = segments_between(engine, channel_id, start, end)
    result = timeline(segments, start, end)
    if include_segments:
        result["items"] = [{"id": s["id"], "from": s["start_at"].isoformat(), "to": s["end_at"].isoformat(),
                            "bytes": s["bytes"], "codec": s["codec"], "audio_codec": s["audio_codec"],
                            "width": s["width"], "height": s["height"],
                            "state": s["state"]} for s in segments]
    return result


class PlaybackRequest(BaseModel):
    start: datetime = Field(alias="from", description="Where to start, ISO 8601 with zone (seek = a new request).")
    end: datetime | None = Field(None, alias="to", description="Where to stop; default: the end of what is recorded.")
    speed: float = Field(1.0, ge=0.5, le=8, description="0.5x to 8x.")


@router.post("/channels/{channel_id}/playback")
async def start_playback(channel_id: str, body: PlaybackRequest, request: Request,
                         principal: Principal = require(roles.VIDEO_PLAYBACK)) -> dict[str, Any]:
    """Play the platform's recordings of the channel from `from`. `ws_url` streams fMP4 (as live
    video does) on one continuous timeline; its "segment" messages map player time to wall time.
    `codec`, `width`, `height` and `audio_codec` (aac, g711a, g711u; null: no sound) are those of
    the first segment played; browsers get no G.711 sound (its "init" message says so)."""
    ctx = api_context(request)
    if ctx.media is None:
        raise ApiError(503, "playback is unavailable: this API runs without media nodes")
    start = require_zone("from", body.start)
    end = require_zone("to", body.end) if body.end else None
    if end is not None and end <= start:
        raise ApiError(400, "to must be after from")
    probe_end = end or start + timedelta(days=31)
    segments = await run_in_threadpool(segments_between, ctx.engine, channel_id, start, probe_end)
    if not segments:
        raise ApiError(404, f"nothing of channel {channel_id} is recorded from {start.isoformat()} on"
                            + (f" to {end.isoformat()}" if end else "") + "; see GET .../recordings for the timeline")
    node = await ctx.media.node_for(segments[0]["node_id"])
    ttl = ctx.settings.media.viewer_token_ttl_s
    detail = {"from": start.isoformat(), "to": end.isoformat() if end else None, "speed": body.speed}
    await run_in_threadpool(record, request, principal, "video.playback", channel_id, detail)
    return {"ws_url": node.playback_url(channel_id, principal.username, ttl, start=start.isoformat(),
                                        end=end.isoformat() if end else None, speed=body.speed),
            "link_valid_s": ttl, "first_recorded": max(start, segments[0]["start_at"]).isoformat(),
            "codec": segments[0]["codec"], "width": segments[0]["width"], "height": segments[0]["height"],
            "audio_codec": segments[0]["audio_codec"]}


MAX_EXPORT = timedelta(hours=24)


class ExportRequest(BaseModel):
    start: datetime = Field(alias="from", description="Start, ISO 8601 with zone.")
    end: datetime = Field(alias="to", description="End, ISO 8601 with zone (at most 24 h after from).")
    reason: str = Field(min_length=5, max_length=500, description="Why the footage leaves the platform (case, request).")


@router.post("/channels/{channel_id}/exports", status_code=202)
async def start_export(channel_id: str, body: ExportRequest, request: Request,
                       principal: Principal = require(roles.VIDEO_EXPORT)) -> dict[str, Any]:
    """Export [from, to) as MP4 files with a signed manifest (who, why, SHA-256 of every file).
    Poll GET /exports/{export_id} for progress and the download links."""
    ctx = api_context(request)
    if ctx.media is None:
        raise ApiError(503, "export is unavailable: this API runs without media nodes")
    start, end = require_zone("from", body.start), require_zone("to", body.end)
    if end <= start:
        raise ApiError(400, "to must be after from")
    if end - start > MAX_EXPORT:
        raise ApiError(400, "export at most 24 hours at a time")
    segments = await run_in_threadpool(segments_between, ctx.engine, channel_id, start, end)
    if not segments:
        raise ApiError(404, f"nothing of channel {channel_id} is recorded between {start.isoformat()} and {end.isoformat()}")
    node = await ctx.media.node_for(segments[0]["node_id"])
    export_id = uuid.uuid4().hex
    detail = {"export_id": export_id, "from": start.isoformat(), "to": end.isoformat(), "reason": body.reason}
    try:
        job = await node.export(export_id=export_id, channel_id=channel_id, **{"from": start.isoformat(), "to": end.isoformat()},
                                exported_by=principal.username, reason=body.reason)
    except NodeError as exc:
        await run_in_threadpool(record, request, principal, "video.export", channel_id, {**detail, "ok": False, "error": str(exc)})
        raise ApiError(502, str(exc)) from None
    ctx.media.exports[export_id] = node
    await run_in_threadpool(record, request, principal, "video.export", channel_id, {**detail, "ok": True})
    return {"export_id": export_id, "state": job["state"]}


@router.get("/exports/{export_id}")
async def export_status(export_id: str, request: Request, principal: Principal = require(roles.VIDEO_EXPORT)) -> dict[str, Any]:
    """Progress of an export; when done, signed download links for its files (valid viewer_token_ttl_s)."""
    ctx = api_context(request)
    if ctx.media is None:
        raise ApiError(503, "export is unavailable: this API runs without media nodes")
    node = ctx.media.exports.get(export_id)
    if node is None:  # an export from before the platform restarted: its node still has the bundle
        for candidate in ctx.media.nodes:
            try:
                await candidate.export_status(export_id)
            except NodeError:
                continue
            node = ctx.media.exports[export_id] = candidate
            break
    if node is None:
        raise ApiError(404, f"no export {export_id} on any media node")
    try:
        job = await node.export_status(export_id)
    except NodeError as exc:
        raise ApiError(exc.status if exc.status == 404 else 502, str(exc)) from None
    ttl = ctx.settings.media.viewer_token_ttl_s
    files = [{**f, "url": node.export_url(export_id, f["name"], principal.username, ttl)} for f in job.get("files", [])]
    return {**job, "files": files}
