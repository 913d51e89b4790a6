"""A media node's HTTP API: the signaling side's control calls, and live video for browsers.

Control routes (/node/v1/...) need `Authorization: Bearer <node secret>`; the platform holds
the secret. Live video (/live/{stream_id}) needs a viewer token that the platform's API signed
with the same secret after its own access checks (camgrid.media.tokens). The contract is
written out in docs/media-node.md.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from datetime import datetime, timezone
from typing import Any, Literal
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Header, HTTPException, Query, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from camgrid.media import tokens
from camgrid.media.ingest import PortExhausted
from camgrid.media.node import MediaNode, RecordingUnavailable, StreamExists, UnknownStream
from camgrid.media.playback import read_recorded
from camgrid.media.playback_position import PlaybackPosition
from camgrid.media.stream import StreamSpec


class RecordRequest(BaseModel):
    channel_id: str = Field(min_length=1, max_length=20, pattern=r"^[0-9A-Za-z]+$")
    device_id: str = Field(min_length=1, max_length=20, pattern=r"^[0-9A-Za-z]+$")
    mode: Literal["continuous", "event"] = "continuous"
    pre_s: float | None = Field(None, ge=0, le=120)
    post_s: float | None = Field(None, ge=1, le=3600)
    media_origin: datetime | None = Field(None, description="Importing a device recording: the wall time of its first frame.")


class OpenStream(BaseModel):
    stream_id: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.:-]+$")
    transport: Literal["udp", "tcp-passive", "tcp-active"] = "udp"
    ssrc: int | None = Field(None, ge=0, le=0xFFFFFFFF)
    ssrc_strict: bool = False
    record: RecordRequest | None = Field(None, description="Record from the first packet (a Download into the platform).")


class ExportRequest(BaseModel):
    export_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    channel_id: str = Field(min_length=1, max_length=20, pattern=r"^[0-9A-Za-z]+$")
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    exported_by: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=500)


class PositionRequest(BaseModel):
    wall: datetime = Field(description="The wall-clock time of the recording there, ISO 8601 with zone.")
    at: Literal["start", "seek"] = Field(description="start: the stream's first picture; seek: the first key frame "
                                                      "after now (sent just before the seek itself).")


class SeekAnswer(BaseModel):
    accepted: bool = Field(description="Whether the device accepted the seek.")


class DeviceAnswer(BaseModel):
    ssrc: int | None = Field(None, ge=0, le=0xFFFFFFFF, description="The SSRC in the device's y= line.")
    host: str | None = Field(None, max_length=255, description="The device's media address (TCP active).")
    port: int | None = Field(None, ge=1, le=65535, description="The device's media port (TCP active).")


def create_node_api(node: MediaNode) -> FastAPI:
    app = FastAPI(title="camgrid media node", version="1", docs_url=None, redoc_url=None, openapi_url="/node/v1/openapi.json")
    expected = f"Bearer {node.secret}".encode()

    def platform_only(authorization: str = Header("")) -> None:
        if not hmac.compare_digest(authorization.encode(), expected):
            raise HTTPException(401, "this route needs the node secret as a bearer token")

    guarded = [Depends(platform_only)]
    positions: dict[str, PlaybackPosition] = {}  # device playbacks: where their footage is, for viewers

    @app.get("/node/v1/load", dependencies=guarded)
    async def load() -> dict[str, Any]:
        return node.load()

    @app.get("/node/v1/streams", dependencies=guarded)
    async def streams() -> dict[str, Any]:
        return {"node_id": node.node_id, "now": time.monotonic(), "streams": node.stats()}

    @app.post("/node/v1/streams", dependencies=guarded, status_code=201)
    async def open_stream(body: OpenStream) -> dict[str, Any]:
        spec = StreamSpec(body.stream_id, body.transport, body.ssrc, body.ssrc_strict)
        try:
            opened = await node.open_stream(spec)
            if body.record is not None:
                r = body.record
                try:
                    node.start_recording(spec.stream_id, channel_id=r.channel_id, device_id=r.device_id,
                                         event_mode=r.mode == "event", pre_s=r.pre_s, post_s=r.post_s,
                                         media_origin=r.media_origin.timestamp() if r.media_origin else None)
                except RecordingUnavailable as exc:
                    await node.close_stream(spec.stream_id)
                    raise HTTPException(409, str(exc)) from None
            return opened
        except StreamExists as exc:
            raise HTTPException(409, str(exc)) from None
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        except PortExhausted as exc:
            raise HTTPException(503, str(exc)) from None

    @app.post("/node/v1/streams/{stream_id}/answer", dependencies=guarded)
    async def answer(stream_id: str, body: DeviceAnswer) -> dict[str, Any]:
        try:
            node.answer(stream_id, ssrc=body.ssrc, host=body.host, port=body.port)
        except UnknownStream:
            raise HTTPException(404, f"no stream {stream_id} on node {node.node_id}") from None
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        return node.stats_of(stream_id)

    @app.post("/node/v1/streams/{stream_id}/record", dependencies=guarded, status_code=201)
    async def record(stream_id: str, body: RecordRequest) -> dict[str, Any]:
        try:
            return node.start_recording(stream_id, channel_id=body.channel_id, device_id=body.device_id,
                                        event_mode=body.mode == "event", pre_s=body.pre_s, post_s=body.post_s,
                                        media_origin=body.media_origin.timestamp() if body.media_origin else None)
        except UnknownStream:
            raise HTTPException(404, f"no stream {stream_id} on node {node.node_id}") from None
        except RecordingUnavailable as exc:
            raise HTTPException(409, str(exc)) from None

    @app.post("/node/v1/streams/{stream_id}/trigger", dependencies=guarded)
    async def trigger(stream_id: str) -> dict[str, Any]:
        """An event on an event-recorded stream: write the held seconds before it and record on."""
        try:
            return node.trigger(stream_id)
        except UnknownStream:
            raise HTTPException(404, f"stream {stream_id} is not being recorded on node {node.node_id}") from None

    @app.delete("/node/v1/streams/{stream_id}/record", dependencies=guarded)
    async def stop_record(stream_id: str) -> dict[str, Any]:
        final = await node.stop_recording(stream_id)
        if final is None:
            raise HTTPException(404, f"stream {stream_id} is not being recorded on node {node.node_id}")
        return final

    @app.post("/node/v1/exports", dependencies=guarded, status_code=202)
    async def export(body: ExportRequest) -> dict[str, Any]:
        try:
            return node.start_export(export_id=body.export_id, channel_id=body.channel_id, start=body.start, end=body.end,
                                     exported_by=body.exported_by, reason=body.reason)
        except RecordingUnavailable as exc:
            raise HTTPException(409, str(exc)) from None

    @app.get("/node/v1/exports/{export_id}", dependencies=guarded)
    async def export_status(export_id: str) -> dict[str, Any]:
        job = node.export_job(export_id)
        if job is None:
            raise HTTPException(404, f"no export {export_id} on node {node.node_id}")
        return job

    @app.get("/exports/{export_id}/{name}")
    async def export_download(export_id: str, name: str, token: str = "") -> FileResponse:
        """A file of a finished export bundle, with a link the platform signed for this export."""
        try:
            tokens.verify(node.secret, token, f"export:{export_id}")
        except tokens.TokenError as exc:
            raise HTTPException(401, str(exc)) from None
        path = node.export_file(export_id, name)
        if path is None:
            raise HTTPException(404, f"{name} is not a file of finished export {export_id}")
        return FileResponse(path, filename=name)

    @app.get("/node/v1/streams/{stream_id}", dependencies=guarded)
    async def one(stream_id: str) -> dict[str, Any]:
        try:
            return node.stats_of(stream_id)
        except UnknownStream:
            raise HTTPException(404, f"no stream {stream_id} on node {node.node_id}") from None

    @app.post("/node/v1/streams/{stream_id}/position", dependencies=guarded)
    async def position(stream_id: str, body: PositionRequest) -> dict[str, Any]:
        """A device playback: where in the recording its footage is, at its start or from a seek
        on (then confirm with PUT .../position/{mark}). Viewers get it as "segment" messages;
        see camgrid.media.playback_position."""
        if body.wall.tzinfo is None:
            raise HTTPException(400, "wall needs a zone, e.g. 2026-05-17T08:00:00+08:00")
        try:
            stream = node.stream(stream_id)
        except UnknownStream:
            raise HTTPException(404, f"no stream {stream_id} on node {node.node_id}") from None
        tracker = positions.get(stream_id)
        if tracker is None:
            tracker = positions[stream_id] = PlaybackPosition(stream)
        wall = body.wall.astimezone(timezone.utc)
        if body.at == "start":
            tracker.start_at(wall)
            return {"stream_id": stream_id, "mark": 0}
        return {"stream_id": stream_id, "mark": tracker.seek_to(wall)}

    @app.put("/node/v1/streams/{stream_id}/position/{mark}", dependencies=guarded)
    async def seek_answered(stream_id: str, mark: int, body: SeekAnswer) -> dict[str, Any]:
        """The device's answer to the seek noted as `mark`: accepted (its mark goes to the viewers
        once its key frame is here) or refused (forgotten)."""
        tracker = positions.get(stream_id)
        if tracker is None or not tracker.answered(mark, body.accepted):
            raise HTTPException(404, f"no seek {mark} noted for stream {stream_id} on node {node.node_id}")
        return {"stream_id": stream_id, "mark": mark, "accepted": body.accepted}

    @app.delete("/node/v1/streams/{stream_id}", dependencies=guarded)
    async def close(stream_id: str) -> dict[str, Any]:
        tracker = positions.pop(stream_id, None)
        if tracker is not None:
            await tracker.close()
        final = await node.close_stream(stream_id)
        if final is None:
            raise HTTPException(404, f"no stream {stream_id} on node {node.node_id}")
        return final

    @app.websocket("/live/{stream_id}")
    async def live(websocket: WebSocket, stream_id: str, token: str = "") -> None:
        """fMP4 for Media Source Extensions: a JSON text message {"type": "init", "codec": ...}
        before each init segment, then one binary message per fragment (one frame each). A stream
        with audio adds "audio" (the device's codec, whether it is played, transcoded to what, or
        why not) and "codecs" (every track's codec string, for the MSE mime type). A device
        playback adds "segment" messages: where in the recording its footage is (media_s → wall)."""
        # Accepted first so that a refusal reaches the browser with its code and reason (a close
        # before the handshake is a bare HTTP 403).
        await websocket.accept()
        try:
            tokens.verify(node.secret, token, stream_id)
            stream = node.stream(stream_id)
        except tokens.TokenError as exc:
            await websocket.close(code=4401, reason=str(exc)[:120])
            return
        except UnknownStream:
            await websocket.close(code=4404, reason=f"stream {stream_id} is not running")
            return
        viewer = stream.live.add_viewer()
        marked: set[int] = set()  # device playback: the position marks this viewer has been sent
        try:
            while (chunk := await viewer.get()) is not None:
                if chunk.init and chunk.track is not None:
                    t = chunk.track
                    await websocket.send_text(json.dumps({"type": "init", "codec": t.codec, "codec_string": t.codec_string,
                                                          "width": t.width, "height": t.height, **(chunk.info or {})}))
                await websocket.send_bytes(chunk.data)
                if (tracker := positions.get(stream_id)) is not None:
                    for mark in tracker.marks:
                        if mark.number not in marked:
                            marked.add(mark.number)
                            await websocket.send_text(json.dumps(mark.message()))
            await websocket.close(code=1000, reason="stream ended")
        except (WebSocketDisconnect, RuntimeError):
            pass  # the browser went away
        finally:
            stream.live.remove_viewer(viewer)
            if stream.live.viewers == 0:
                stream.last_viewer_left_at = time.monotonic()

    def _hls_stream(stream_id: str, token: str):  # noqa: ANN202
        try:
            tokens.verify(node.secret, token, stream_id)
            stream = node.stream(stream_id)
        except tokens.TokenError as exc:
            raise HTTPException(401, str(exc)) from None
        except UnknownStream:
            raise HTTPException(404, f"stream {stream_id} is not running") from None
        now = time.monotonic()
        stream.live.hls.last_request = now
        stream.last_viewer_left_at = now  # an HLS player counts as a viewer until it stops fetching
        return stream

    @app.get("/hls/{stream_id}/index.m3u8")
    async def hls_playlist(stream_id: str, token: str = "") -> Response:
        """HLS (fMP4 segments, one per GOP) for players without Media Source Extensions. The first
        request starts segmenting: the playlist lists segments after about two GOPs."""
        stream = _hls_stream(stream_id, token)
        for _ in range(100):  # wait up to ~10 s for the first whole segment rather than answer an empty list
            if stream.live.hls.ready or stream.closed:
                break
            await asyncio.sleep(0.1)
        if not stream.live.hls.ready:
            raise HTTPException(503, "no whole segment yet: the stream has not delivered a complete GOP")
        return Response(stream.live.hls.playlist(urlencode({"token": token})), media_type="application/vnd.apple.mpegurl",
                        headers={"Cache-Control": "no-cache"})

    @app.get("/hls/{stream_id}/init.mp4")
    async def hls_init(stream_id: str, token: str = "") -> Response:
        stream = _hls_stream(stream_id, token)
        if stream.live.init is None:
            raise HTTPException(404, "no init segment yet")
        return Response(stream.live.init, media_type="video/mp4")

    @app.get("/hls/{stream_id}/{sequence}.m4s")
    async def hls_segment(stream_id: str, sequence: int, token: str = "") -> Response:
        data = _hls_stream(stream_id, token).live.hls.segment(sequence)
        if data is None:
            raise HTTPException(404, f"segment {sequence} is not (or no longer) in the window")
        return Response(data, media_type="video/iso.segment")

    @app.websocket("/playback/{channel_id}")
    async def playback(websocket: WebSocket, channel_id: str, token: str = "", start: str = Query("", alias="from"),
                       end: str = Query("", alias="to"), speed: float = 1.0) -> None:
        """Recorded footage from `from` (to `to`, or to the end of what is recorded) as fMP4, paced
        at `speed` (0.5-8) with up to 2 s sent ahead. Text messages: "init" (codec), "segment"
        (`media_s` on the player's timeline is `wall` on the clock), "missing" (a segment whose
        file is gone), "end". Seek or change speed by opening a new one."""
        await websocket.accept()
        try:
            tokens.verify(node.secret, token, f"playback:{channel_id}")
            begin = _instant(start)
            finish = _instant(end) if end else None
            if not 0.5 <= speed <= 8:
                raise ValueError("speed must be between 0.5 and 8")
            if node.engine is None:
                raise ValueError(f"media node {node.node_id} has no recording index")
        except tokens.TokenError as exc:
            await websocket.close(code=4401, reason=str(exc)[:120])
            return
        except ValueError as exc:
            await websocket.close(code=4400, reason=str(exc)[:120])
            return
        loop = asyncio.get_running_loop()
        started, first_media = loop.time(), None
        try:
            async for item in read_recorded(node.engine, node.recordings_dir, channel_id, begin, finish, browser=True):
                if item.kind == "fragment":
                    first_media = item.media_s if first_media is None else first_media
                    ahead = (item.media_s - first_media) / speed - (loop.time() - started)
                    if ahead > PLAYBACK_LEAD_S:
                        await asyncio.sleep(ahead - PLAYBACK_LEAD_S)
                    await websocket.send_bytes(item.data)
                elif item.kind == "init":
                    await websocket.send_text(json.dumps({"type": "init", **(item.info or {})}))
                    await websocket.send_bytes(item.data)
                else:
                    await websocket.send_text(json.dumps({"type": item.kind, "media_s": item.media_s,
                                                          "wall": item.wall.isoformat() if item.wall else None,
                                                          **(item.info or {})}))
            await websocket.send_text(json.dumps({"type": "end"}))
            await websocket.close(code=1000, reason="end of the range")
        except (WebSocketDisconnect, RuntimeError):
            pass

    return app


PLAYBACK_LEAD_S = 2.0


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"from/to must be ISO 8601 times with a zone, not {text[:40]!r}") from None
    if value.tzinfo is None:
        raise ValueError("from/to need a zone, e.g. 2026-05-17T08:00:00+08:00")
    return value.astimezone(timezone.utc)
