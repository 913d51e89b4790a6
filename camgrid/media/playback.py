"""Playback of recorded footage as one continuous fMP4 stream, from any moment on.

The segments of a channel that cover [start, end) are read in order. In the first one, sending
starts at the fragment holding the last key frame at or before `start` (a player drops the
frames before that key frame, as Media Source Extensions do). Each fragment's tfdt is moved
onto one playback timeline that runs on across gaps and segment boundaries, so the player sees
no hole; a "segment" message maps playback time back to wall-clock time for the operator.
Pure apart from reading files (in a worker thread) and the index.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from camgrid.media.recordings_query import segments_between
from camgrid.media.fmp4 import codec_string_of
from camgrid.media.segment_file import SegmentError, read_fragments

TIMESCALE = 90_000
BATCH = timedelta(hours=2)  # segments looked up at a time


@dataclass
class PlaybackItem:
    kind: str  # init | segment | fragment | missing
    data: bytes = b""
    media_s: float = 0.0  # position on the playback timeline
    wall: datetime | None = None  # for "segment": the wall-clock time at media_s
    info: dict | None = None


def _retime(data: bytes, fragment, new_base: int) -> bytes:  # noqa: ANN001
    chunk = bytearray(data[fragment.offset:fragment.offset + fragment.size])
    at = fragment.tfdt_at - fragment.offset
    if chunk[at + 8] == 1:  # version 1: 64-bit decode time
        struct.pack_into(">Q", chunk, at + 12, new_base)
    else:
        struct.pack_into(">I", chunk, at + 12, new_base & 0xFFFFFFFF)
    return bytes(chunk)


async def read_recorded(engine: Engine, root: Path, channel_id: str, start: datetime,
                        end: datetime | None = None) -> AsyncIterator[PlaybackItem]:
    """Items to send, in order; ends when the range (or the recorded footage) ends."""
    cursor, out_base, last_init = start, 0, None
    first = True
    while end is None or cursor < end:
        batch_end = cursor + BATCH if end is None else min(end, cursor + BATCH)
        segments = await asyncio.to_thread(segments_between, engine, channel_id, cursor, batch_end)
        segments = [s for s in segments if s["end_at"] > cursor]
        if not segments:
            if end is None:
                later = await asyncio.to_thread(segments_between, engine, channel_id, batch_end, batch_end + timedelta(days=31))
                if not later:
                    return
                cursor = later[0]["start_at"]
                continue
            cursor = batch_end
            continue
        for seg in segments:
            try:
                data = await asyncio.to_thread((root / seg["path"]).read_bytes)
                init, fragments = read_fragments(data)
            except (OSError, SegmentError) as exc:
                yield PlaybackItem("missing", info={"segment_id": seg["id"], "error": str(exc)})
                cursor = seg["end_at"]
                continue
            if not fragments:
                continue
            seg_first = fragments[0].base_dts
            target = seg_first + max(0, int((cursor - seg["start_at"]).total_seconds() * TIMESCALE))
            stop = None if end is None else seg_first + int((end - seg["start_at"]).total_seconds() * TIMESCALE)
            begin = 0
            for i, frag in enumerate(fragments):  # the last key frame at or before the target
                if frag.sync_dts is not None and frag.sync_dts <= target:
                    begin = i
            chosen = [f for f in fragments[begin:] if stop is None or f.base_dts < stop]
            if not chosen:
                continue
            if init != last_init:
                yield PlaybackItem("init", init, out_base / TIMESCALE, info={
                    "codec": seg["codec"], "codec_string": codec_string_of(init), "width": seg["width"],
                    "height": seg["height"]})
                last_init = init
            shift = out_base - chosen[0].base_dts
            wall = seg["start_at"] + timedelta(seconds=(chosen[0].base_dts - seg_first) / TIMESCALE)
            yield PlaybackItem("segment", media_s=out_base / TIMESCALE, wall=wall,
                               info={"segment_id": seg["id"], "first": first})
            first = False
            for frag in chosen:
                new_base = frag.base_dts + shift
                yield PlaybackItem("fragment", _retime(data, frag, new_base), new_base / TIMESCALE)
            last = chosen[-1]
            out_base = last.base_dts + shift + last.duration
            cursor = seg["end_at"]
