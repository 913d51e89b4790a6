"""A few seconds of a channel's live video, for diagnosis: joins (or starts) the shared live
stream, reads its fragmented MP4 from the media node as any viewer does, and decodes the spaced
key frames and the final burst (frames.open_sample) from a short file. A stream someone is
already watching is reused, not started twice.

When it must open a stream itself it prefers the sub-stream (`substream`: the SDP selector
dialect, camgrid.gb28181.sdp.stream_selector): a fraction of the bitrate for the device, the
network and the decoder, and the detectors look at analysis size anyway. A device that refuses
it (an error answer to the INVITE) or sends no video on it gets the main stream in the same
diagnosis, and `Capture.substream_refused` says why, for the patrol to remember.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import websockets

from camgrid.ops.vqd.frames import Sample, SourceError, open_sample
from camgrid.signaling.errors import CommandError

MAX_BYTES = 64 << 20  # a runaway stream stops being read here


@dataclass
class Capture:
    sample: Sample | None  # None when no video arrived
    reason: str = ""  # why there is no sample (what the operator can act on)
    bytes: int = 0
    session_id: str = ""
    stream: str = "main"  # main | sub: the stream the sample comes from
    substream_refused: str | None = None  # why the sub-stream asked for could not be had


async def _open(media: Any, device_id: str, channel_id: str, substream: str,
                first_frame_s: float) -> tuple[Any, str, str | None]:
    """(session, "main" | "sub", why the sub-stream failed): a running main stream is joined; else
    the sub-stream is tried when a dialect is given; else (or when it fails) the main stream."""
    running = media.running_live(device_id, channel_id)
    if running is not None or substream == "none":
        return running or await media.live(device_id, channel_id), "main", None
    try:
        sub = await media.live(device_id, channel_id, stream=1, selector=substream)
    except CommandError as exc:
        if exc.status != 502:  # offline, no media node, no answer: not the sub-stream's fault
            raise
        refused = exc.message
    else:
        if await media.wait_first_frame(sub, first_frame_s):
            return sub, "sub", None
        refused = f"no video on the sub-stream: {sub.end_reason or f'none within {first_frame_s:.0f} s'}"
        await media.end(sub, "the patrol gave up on the sub-stream")
    return await media.live(device_id, channel_id), "main", refused


async def capture(media: Any, device_id: str, channel_id: str, *, seconds: float, first_frame_s: float,
                  work_dir: Path, user: str = "vqd-patrol", substream: str = "none") -> Capture:
    """Up to `seconds` of the channel's video from its first key frame, decoded for diagnosis."""
    refused: str | None = None
    try:
        session, stream, refused = await _open(media, device_id, channel_id, substream, first_frame_s)
    except CommandError as exc:
        return Capture(None, exc.message, substream_refused=refused)
    got = await _read(media, session, seconds, first_frame_s, work_dir, user)
    got.stream, got.substream_refused = stream, refused
    return got


async def _read(media: Any, session: Any, seconds: float, first_frame_s: float, work_dir: Path, user: str) -> Capture:
    if not await media.wait_first_frame(session, first_frame_s):
        return Capture(None, session.end_reason or f"no video within {first_frame_s:.0f} s", session_id=session.session_id)
    url = session.node.internal_live_url(session.session_id, user, seconds + 30)
    data = bytearray()
    try:
        async with websockets.connect(url, max_size=None, open_timeout=10) as socket:
            deadline = time.monotonic() + seconds
            while (left := deadline - time.monotonic()) > 0 and len(data) < MAX_BYTES:
                try:
                    message = await asyncio.wait_for(socket.recv(), left)
                except (asyncio.TimeoutError, websockets.ConnectionClosed):
                    break
                if isinstance(message, bytes):
                    data += message
    except (OSError, websockets.WebSocketException) as exc:
        return Capture(None, f"the media node does not serve the stream: {exc}", session_id=session.session_id)
    if not data:
        return Capture(None, session.end_reason or "the stream sent no video", session_id=session.session_id)
    sample = await asyncio.to_thread(_decode, bytes(data), work_dir, seconds)
    return Capture(sample, "" if sample is not None else "the video could not be decoded", len(data), session.session_id)


def _decode(data: bytes, work_dir: Path, seconds: float) -> Sample | None:
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=work_dir, suffix=".mp4", delete=False) as handle:
        handle.write(data)
        path = Path(handle.name)
    try:
        return open_sample(path, seconds=seconds + 1)
    except SourceError:
        return None
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
