"""A few seconds of a channel's live video, for diagnosis: joins (or starts) the shared live
stream, reads its fragmented MP4 from the media node as any viewer does, and decodes the spaced
key frames and the final burst (frames.open_sample) from a short file. A stream someone is
already watching is reused, not started twice.
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


async def capture(media: Any, device_id: str, channel_id: str, *, seconds: float, first_frame_s: float,
                  work_dir: Path, user: str = "vqd-patrol") -> Capture:
    """Up to `seconds` of the channel's video from its first key frame, decoded for diagnosis."""
    try:
        session = await media.live(device_id, channel_id)
    except CommandError as exc:
        return Capture(None, exc.message)
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
