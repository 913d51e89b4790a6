"""Playback of recorded footage as one continuous fMP4 stream, from any moment on.

The segments of a channel that cover [start, end) are read in order. In the first one, sending
starts at the fragment holding the last key frame at or before `start` (a player drops the
frames before that key frame, as Media Source Extensions do). Each fragment's tfdt is moved
onto one playback timeline that runs on across gaps and segment boundaries, so the player sees
no hole; a "segment" message maps playback time back to wall-clock time for the operator.
An audio track moves along with the video (its tfdt in its own timescale). For a browser
(`browser=True`), audio that Media Source Extensions cannot play (G.711) is taken out of the
init segment and the fragments; exports keep everything.
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
from camgrid.media.fmp4 import codec_string_of, fragment_without_track, mse_codecs, tracks_of, without_track
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


def _move_tfdt(chunk: bytearray, at: int, shift: int) -> None:
    if chunk[at + 8] == 1:  # version 1: 64-bit decode time
        old = struct.unpack_from(">Q", chunk, at + 12)[0]
        struct.pack_into(">Q", chunk, at + 12, max(0, old + shift))
    else:
        old = struct.unpack_from(">I", chunk, at + 12)[0]
        struct.pack_into(">I", chunk, at + 12, max(0, old + shift) & 0xFFFFFFFF)


def _retime(data: bytes, fragment, new_base: int, timescales: dict[int, int] | None = None) -> bytes:  # noqa: ANN001
    """The fragment with its video tfdt at `new_base` and the other tracks' moved by as much."""
    chunk = bytearray(data[fragment.offset:fragment.offset + fragment.size])
    shift = new_base - fragment.base_dts
    _move_tfdt(chunk, fragment.tfdt_at - fragment.offset, shift)
    for at, track_id in fragment.other_tfdts:
        rate = (timescales or {}).get(track_id, TIMESCALE)
        _move_tfdt(chunk, at - fragment.offset, round(shift * rate / TIMESCALE))
    return bytes(chunk)


def _audio_info(init: bytes) -> tuple[dict | None, list[int]]:
    """The audio track's description, and the tracks a browser cannot play."""
    audio, unplayable = None, []
    for track in tracks_of(init):
        if track.handler == "soun":
            codec = {"mp4a": "aac", "alaw": "g711a", "ulaw": "g711u"}.get(track.entry, track.entry)
            audio = {"codec": codec, "codec_string": track.codec_string, "sample_rate": track.timescale}
            if track.codec_string is None:
                unplayable.append(track.track_id)
    return audio, unplayable


async def read_recorded(engine: Engine, root: Path, channel_id: str, start: datetime,
                        end: datetime | None = None, *, browser: bool = False) -> AsyncIterator[PlaybackItem]:
    """Items to send, in order; ends when the range (or the recorded footage) ends. `browser`:
    leave out audio MSE cannot play (the "init" item's `audio` then says `"played": false`)."""
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
            audio, unplayable = _audio_info(init)
            timescales = {t.track_id: t.timescale for t in tracks_of(init)} if fragments[0].other_tfdts else None
            drop = unplayable if browser else []
            if init != last_init:
                info = {"codec": seg["codec"], "codec_string": codec_string_of(init), "width": seg["width"],
                        "height": seg["height"]}
                sent = init
                for track_id in drop:
                    sent = without_track(sent, track_id)
                if audio is not None:
                    info["audio"] = {**audio, "played": not drop}
                    if not drop:
                        info["codecs"] = mse_codecs(sent)  # for MSE: the video's and the audio's codec strings
                yield PlaybackItem("init", sent, out_base / TIMESCALE, info=info)
                last_init = init
            shift = out_base - chosen[0].base_dts
            wall = seg["start_at"] + timedelta(seconds=(chosen[0].base_dts - seg_first) / TIMESCALE)
            yield PlaybackItem("segment", media_s=out_base / TIMESCALE, wall=wall,
                               info={"segment_id": seg["id"], "first": first})
            first = False
            for frag in chosen:
                new_base = frag.base_dts + shift
                piece = _retime(data, frag, new_base, timescales)
                for track_id in drop:
                    piece = fragment_without_track(piece, track_id)
                yield PlaybackItem("fragment", piece, new_base / TIMESCALE)
            last = chosen[-1]
            out_base = last.base_dts + shift + last.duration
            cursor = seg["end_at"]
