"""Recorded footage for playback and export tests: real segments written by the Recorder."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime, timezone
from pathlib import Path

from camgrid.media.ps import VIDEO_ID, AccessUnit
from camgrid.media.recorder import Recorder
from camgrid.media.recording_index import RecordingIndex
from camgrid.store.engine import make_engine, migrate

CHANNEL, DEVICE = "34020000001310000001", "34020000001320000001"
T0 = 1_790_000_000.0


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(T0 + seconds, timezone.utc)


async def record_runs(tmp_path, footage, runs=2, gap_s=10.0, segment_s=2.0):
    """`runs` recordings of the footage, `gap_s` apart, into a fresh SQLite index; (engine, recordings dir)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'rec-index.db'}")
    migrate(engine)
    index = RecordingIndex(engine, flush_interval_s=0.05)
    await index.start()
    clock = [T0]
    for _ in range(runs):
        recorder = Recorder(channel_id=CHANNEL, device_id=DEVICE, root=tmp_path / "rec", index=index, node_id="n1",
                            part_s=0.5, segment_s=segment_s, clock=lambda: clock[0])
        recorder.start()
        for f in footage.frames:
            recorder.push(AccessUnit(VIDEO_ID, "h264", f.pts, f.pts, f.data, f.keyframe))
            clock[0] += 1 / footage.fps
            await asyncio.sleep(0)
        await recorder.stop()
        clock[0] += gap_s
    await index.stop()
    return engine, tmp_path / "rec"


async def record_days_ago(engine, root: Path, footage, channel: str, *, device: str = DEVICE, node: str = "n1",
                          days: float = 3) -> Recorder:
    """Real segments of `channel` as if recorded `days` ago (1 s segments, 0.25 s parts), closed
    and indexed in `engine`; the Recorder, for its stats."""
    index = RecordingIndex(engine, flush_interval_s=0.05)
    await index.start()
    clock = [time.time() - days * 86400]
    recorder = Recorder(channel_id=channel, device_id=device, root=root, index=index, node_id=node, part_s=0.25,
                        segment_s=1.0, clock=lambda: clock[0])
    recorder.start()
    for i, f in enumerate(footage.frames):
        recorder.push(AccessUnit(VIDEO_ID, "h264", i * 3600, i * 3600, f.data, f.keyframe))
        clock[0] += 0.04
        if i % 10 == 0:
            await asyncio.sleep(0.01)
    await recorder.stop()
    await index.stop()
    return recorder


def age(path: Path, seconds: float = 7200) -> None:
    """Make a file look unchanged for `seconds` (orphan scans wait for a grace period)."""
    t = time.time() - seconds
    os.utime(path, (t, t))
