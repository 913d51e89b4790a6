"""Live video: start (or join) a channel's live stream and get a link to watch it.

The API checks the caller and audits the view; the browser then opens the returned WebSocket
URL on the media node, which carries a short-lived token signed for that stream and user.
Streams are shared per channel and end by themselves once nobody watches (media.linger_s).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
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
    detail = {"device_id": channel["device_id"]}
    try:
        session = await media.live(channel["device_id"], channel_id, transport=body.transport)
        if body.wait_s:
            await media.wait_first_frame(session, body.wait_s)
        if session.state == "ended":
            raise CommandError(502, f"the stream ended before it showed video: {session.end_reason}")
    except CommandError as exc:
        await run_in_threadpool(record, request, principal, "video.live", channel_id,
                                {**detail, "ok": False, "status": exc.status, "error": exc.message})
        raise
    ttl = ctx.settings.media.viewer_token_ttl_s
    await run_in_threadpool(record, request, principal, "video.live", channel_id,
                            {**detail, "ok": True, "session_id": session.session_id})
    return {**session.describe(), "ws_url": session.node.live_url(session.session_id, principal.username, ttl),
            "link_valid_s": ttl}


@router.get("/live")
def list_live(request: Request, principal: Principal = require(roles.CHANNELS_READ)) -> dict[str, Any]:
    """The running streams, with their counters as of the last supervision round (about a second)."""
    media = media_of(api_context(request))
    return {"items": [s.describe() for s in media.sessions.values()]}


@router.delete("/live/{session_id}")
async def stop_live(session_id: str, request: Request, principal: Principal = require(roles.COMMANDS_DEVICE)) -> dict[str, Any]:
    """End a stream now (BYE to the device) for everyone watching it."""
    media = media_of(api_context(request))
    session = media.sessions.get(session_id)
    if session is None:
        raise ApiError(404, f"no running stream {session_id}")
    await media.end(session, f"stopped by {principal.username}")
    await run_in_threadpool(record, request, principal, "video.live_stop", session.channel_id,
                            {"device_id": session.device_id, "session_id": session_id})
    return session.describe()
