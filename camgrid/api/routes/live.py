"""Live video: start (or join) a channel's live stream and get a link to watch it.

The API checks the caller and audits the view; the browser then opens the returned WebSocket
URL on the media node, which carries a short-lived token signed for that stream and user.
Streams are shared per channel and end by themselves once nobody watches (media.linger_s).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import websockets
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from camgrid.api.errors import ApiError
from camgrid.api.routes.channels import DeviceIdQuery, find_channel
from camgrid.api.security import Principal, api_context, record, require
from camgrid.governance import roles
from camgrid.signaling.errors import CommandError

router = APIRouter(tags=["live"])


class LiveRequest(BaseModel):
    transport: Literal["udp", "tcp-passive", "tcp-active"] | None = Field(
        None, description="How the device sends RTP; default media.transport. Used only when the stream is not running yet.")
    wait_s: float = Field(5.0, ge=0, le=15, description="Wait up to this long for the first key frame before answering.")


async def audited_session(request: Request, principal: Principal, action: str, channel_id: str,
                          detail: dict[str, Any], start) -> Any:  # noqa: ANN001
    """Run `start()` (a coroutine that gives a media session) and audit the attempt either way."""
    try:
        session = await start()
    except CommandError as exc:
        await run_in_threadpool(record, request, principal, action, channel_id,
                                {**detail, "ok": False, "status": exc.status, "error": exc.message})
        raise
    await run_in_threadpool(record, request, principal, action, channel_id,
                            {**detail, "ok": True, "session_id": session.session_id})
    return session


def device_range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """A range on a device's storage: zoned, ordered, at most a day."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ApiError(400, "from and to need a zone, e.g. 2026-05-17T08:00:00+08:00")
    start, end = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
    if not timedelta(0) < end - start <= timedelta(hours=24):
        raise ApiError(400, "to must be after from, and at most 24 hours later")
    return start, end


def media_of(ctx: Any) -> Any:
    if ctx.media is None:
        raise ApiError(503, "live video is unavailable: this API runs without media nodes")
    return ctx.media


@router.post("/channels/{channel_id}/live")
async def start_live(channel_id: str, request: Request, body: LiveRequest | None = None,
                     device_id: str | None = DeviceIdQuery,
                     principal: Principal = require(roles.VIDEO_LIVE)) -> dict[str, Any]:
    """Start or join the channel's live stream. `ws_url` plays fMP4 fragments for Media Source
    Extensions (a JSON "init" text message with the codec string precedes each init segment)."""
    body = body or LiveRequest()
    ctx = api_context(request)
    media = media_of(ctx)
    channel = await run_in_threadpool(find_channel, ctx, channel_id, device_id)
    async def start() -> Any:
        session = await media.live(channel["device_id"], channel_id, transport=body.transport)
        if body.wait_s:
            await media.wait_first_frame(session, body.wait_s)
        if session.state == "ended":
            raise CommandError(502, f"the stream ended before it showed video: {session.end_reason}")
        return session
    session = await audited_session(request, principal, "video.live", channel_id, {"device_id": channel["device_id"]}, start)
    ttl = ctx.settings.media.viewer_token_ttl_s
    return {**session.describe(), "ws_url": session.node.live_url(session.session_id, principal.username, ttl),
            # An HLS player re-fetches with the same URL for as long as it plays: that link lives as long as a login.
            "hls_url": session.node.hls_url(session.session_id, principal.username, ctx.settings.http.token_ttl_s),
            "link_valid_s": ttl}


@router.get("/channels/{channel_id}/live.mp4", response_class=StreamingResponse,
            responses={200: {"content": {"video/mp4": {}}, "description": "Fragmented MP4 for as long as it is read."}})
async def live_mp4(channel_id: str, request: Request, device_id: str | None = DeviceIdQuery,
                   wait_s: float = Query(5.0, ge=0, le=15, description="Wait up to this long for the first key frame."),
                   principal: Principal = require(roles.VIDEO_LIVE)) -> StreamingResponse:
    """The channel's live video as one fragmented MP4 (init segment, then a fragment per frame from
    a key frame on) for as long as the client reads: for players, FFmpeg and scripts that cannot
    speak the WebSocket. Starts or joins the shared live stream; the view is audited."""
    ctx = api_context(request)
    media = media_of(ctx)
    channel = await run_in_threadpool(find_channel, ctx, channel_id, device_id)

    async def start() -> Any:
        session = await media.live(channel["device_id"], channel_id)
        if not await media.wait_first_frame(session, wait_s) and session.state == "ended":
            raise CommandError(502, f"the stream ended before it showed video: {session.end_reason}")
        return session
    session = await audited_session(request, principal, "video.live", channel_id,
                                    {"device_id": channel["device_id"], "as": "mp4"}, start)
    # The node's own viewer socket: the node counts this reader as a viewer, so the stream lives
    # as long as it reads (and lingers media.linger_s after, as for any viewer).
    url = session.node.internal_live_url(session.session_id, principal.username, ctx.settings.http.token_ttl_s)
    try:
        socket = await websockets.connect(url, max_size=None, open_timeout=10)
    except (OSError, websockets.WebSocketException) as exc:
        raise ApiError(502, f"the media node does not serve the stream: {exc}") from None

    async def body() -> Any:
        try:
            async for message in socket:
                if isinstance(message, bytes):  # text messages describe the track; the MP4 carries it
                    yield message
        except websockets.ConnectionClosed:
            return
        finally:
            await socket.close()
    return StreamingResponse(body(), media_type="video/mp4", headers={"Cache-Control": "no-store"})


@router.get("/live")
def list_live(request: Request, principal: Principal = require(roles.CHANNELS_READ)) -> dict[str, Any]:
    """The running streams, with their counters as of the last supervision round (about a second)."""
    media = media_of(api_context(request))
    return {"items": [s.describe() for s in media.sessions.values()]}


def may_steer(session: Any, principal: Principal) -> None:
    """A device playback is its starter's to control and stop; anyone else needs commands:device
    (which a live stream, shared by all its viewers, always needs)."""
    if session.kind != "Play" and session.started_by == principal.username:
        return
    if not roles.has_permission(principal.role, roles.COMMANDS_DEVICE):
        whose = f"started by {session.started_by}" if session.kind != "Play" and session.started_by else "shared"
        raise ApiError(403, f"stream {session.session_id} is {whose}; only its starter or a role with "
                            f"{roles.COMMANDS_DEVICE!r} may change or stop it")


@router.delete("/live/{session_id}")
async def stop_live(session_id: str, request: Request, principal: Principal = require(roles.VIDEO_PLAYBACK)) -> dict[str, Any]:
    """End a stream now (BYE to the device) for everyone watching it: a device playback by the user
    who started it, any stream by a role with commands:device."""
    media = media_of(api_context(request))
    session = media.sessions.get(session_id)
    if session is None:
        raise ApiError(404, f"no running stream {session_id}")
    may_steer(session, principal)
    await media.end(session, f"stopped by {principal.username}")
    await run_in_threadpool(record, request, principal, "video.live_stop", session.channel_id,
                            {"device_id": session.device_id, "session_id": session_id})
    return session.describe()


class DevicePlaybackRequest(BaseModel):
    start: datetime = Field(alias="from", description="Start of the device's recording to play, ISO 8601 with zone.")
    end: datetime = Field(alias="to", description="End, ISO 8601 with zone (at most 24 h after from).")
    download_speed: int | None = Field(None, ge=1, le=8, description="Download instead of play, at this multiple of real time.")
    transport: Literal["udp", "tcp-passive", "tcp-active"] | None = None
    wait_s: float = Field(5.0, ge=0, le=15)


@router.post("/channels/{channel_id}/device-playback")
async def device_playback(channel_id: str, body: DevicePlaybackRequest, request: Request,
                          device_id: str | None = DeviceIdQuery,
                          principal: Principal = require(roles.VIDEO_PLAYBACK)) -> dict[str, Any]:
    """Play (or download) footage from the device's own storage (Playback INVITE with the range;
    find ranges with GET .../device-records). It ends at the device's end-of-file notice.
    `ws_url` streams fMP4 as live video does, plus "segment" messages that map the player's time
    to the recording's wall-clock time (at the start and after each seek). `range` is the range
    the device was asked for (whole seconds); `audio_codec` the device's sound once known."""
    ctx = api_context(request)
    media = media_of(ctx)
    start, end = device_range(body.start, body.end)
    channel = await run_in_threadpool(find_channel, ctx, channel_id, device_id)
    detail = {"device_id": channel["device_id"], "from": start.isoformat(), "to": end.isoformat(),
              "download_speed": body.download_speed}

    async def begin() -> Any:
        session = await media.playback(channel["device_id"], channel_id, start, end, download_speed=body.download_speed,
                                       transport=body.transport)
        session.started_by = principal.username
        if body.wait_s:
            await media.wait_first_frame(session, body.wait_s)
        return session
    session = await audited_session(request, principal, "video.device_playback", channel_id, detail, begin)
    ttl = ctx.settings.media.viewer_token_ttl_s
    return {**session.describe(), "ws_url": session.node.live_url(session.session_id, principal.username, ttl),
            "link_valid_s": ttl}


class ControlRequest(BaseModel):
    action: Literal["pause", "resume", "seek", "speed"]
    value: float | None = Field(None, description="seek: seconds into the range; speed: 0.25, 0.5, 1, 2, 4 or 8.")


@router.post("/live/{session_id}/control")
async def control(session_id: str, body: ControlRequest, request: Request,
                  principal: Principal = require(roles.VIDEO_PLAYBACK)) -> dict[str, Any]:
    """Pause, resume, seek or change the speed of a device playback (MANSRTSP in an INFO). A seek
    answers with `wall`, the recording's time it went to; the viewers' "segment" messages say
    where the new footage starts on their timeline. The user who started it, or a role with
    commands:device."""
    media = media_of(api_context(request))
    session = media.sessions.get(session_id)
    if session is None:
        raise ApiError(404, f"no running stream {session_id}")
    may_steer(session, principal)
    result = await media.control(session, body.action, body.value)
    await run_in_threadpool(record, request, principal, "video.playback_control", session.channel_id,
                            {"session_id": session_id, "action": body.action, "value": body.value})
    return result


class DownloadRequest(BaseModel):
    start: datetime = Field(alias="from", description="Start of the device's recording to copy, ISO 8601 with zone.")
    end: datetime = Field(alias="to", description="End, ISO 8601 with zone (at most 24 h after from).")
    speed: int = Field(4, ge=1, le=8, description="downloadspeed: how many times real time the device sends.")


@router.post("/channels/{channel_id}/device-download", status_code=202)
async def device_download(channel_id: str, body: DownloadRequest, request: Request, device_id: str | None = DeviceIdQuery,
                          principal: Principal = require(roles.RECORDINGS_MANAGE)) -> dict[str, Any]:
    """Copy a range of the device's own recording into the platform's recordings (Download
    INVITE, recorded at the range's own times). Follow it in GET /live; it ends at the device's
    end-of-file notice, and the footage then shows in GET .../recordings."""
    ctx = api_context(request)
    media = media_of(ctx)
    start, end = device_range(body.start, body.end)
    channel = await run_in_threadpool(find_channel, ctx, channel_id, device_id)
    detail = {"device_id": channel["device_id"], "from": start.isoformat(), "to": end.isoformat(), "speed": body.speed}
    session = await audited_session(request, principal, "recording.download", channel_id, detail,
                                    lambda: media.download(channel["device_id"], channel_id, start, end, speed=body.speed))
    return session.describe()
