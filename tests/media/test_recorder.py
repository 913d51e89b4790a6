"""Recording to disk: segments that decode, an index that matches the disk, a full disk, a
database outage, and recovery after a kill (tests/e2e/test_recording_kill.py kills a real
node process)."""

from __future__ import annotations

import asyncio
import subprocess

import av
import pytest
from sqlalchemy import select

from camgrid.media.ps import VIDEO_ID, AccessUnit
from camgrid.media.recorder import Recorder
from camgrid.media.recording_index import RecordingIndex
from camgrid.media.segment_file import scan_segment
from camgrid.sim.video import synthetic_footage
from camgrid.store.engine import make_engine, migrate
from camgrid.store.tables import events, recordings

CHANNEL, DEVICE = "34020000001310000001", "34020000001320000001"


@pytest.fixture(scope="module")
def footage():
    return synthetic_footage("h264", 160, 120, 25, 4, gop_s=1.0)


@pytest.fixture
def store(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'rec.db'}")
    migrate(engine)
    yield engine
    engine.dispose()


class Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


async def feed(recorder, clock, frames, seconds_per_frame=0.04, start_pts=0):
    for i, f in enumerate(frames):
        recorder.push(AccessUnit(VIDEO_ID, "h264", start_pts + f.pts, start_pts + f.pts, f.data, f.keyframe))
        clock.now += seconds_per_frame
        if i % 10 == 0:
            await asyncio.sleep(0)  # let the disk worker run


def rows(engine):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(recordings).order_by(recordings.c.start_at)).mappings()]


async def test_segments_decode_and_the_index_matches_the_disk(tmp_path, store, footage):
    index = RecordingIndex(store, flush_interval_s=0.05)
    await index.start()
    clock = Clock()
    recorder = Recorder(channel_id=CHANNEL, device_id=DEVICE, root=tmp_path / "rec", index=index, node_id="n1",
                        part_s=0.5, segment_s=2.0, clock=clock)
    recorder.start()
    await feed(recorder, clock, footage.frames)  # 4 s, key frames every second
    await recorder.stop()
    await index.stop()
    segs = rows(store)
    assert len(segs) == 2 and all(s["state"] == "closed" for s in segs)
    total_frames = 0
    for seg in segs:
        path = tmp_path / "rec" / seg["path"]
        assert path.stat().st_size == seg["bytes"]
        scan = scan_segment(path)
        assert scan.whole_bytes == scan.file_bytes == seg["bytes"]
        duration = (seg["end_at"] - seg["start_at"]).total_seconds()
        assert duration == pytest.approx(scan.duration_ticks / 90_000, abs=0.002)
        assert duration == pytest.approx(2.0, abs=0.05)
        with av.open(str(path)) as container:
            frames = [(f.width, f.height) for f in container.decode(video=0)]
        assert set(frames) == {(160, 120)}
        total_frames += len(frames)
    assert total_frames == len(footage.frames)
    # Back to back: the second segment starts where the first ends (within the arrival jitter).
    assert abs((segs[1]["start_at"] - segs[0]["end_at"]).total_seconds()) < 0.05


async def test_a_database_outage_does_not_stop_recording_and_the_index_catches_up(tmp_path, footage):
    db = tmp_path / "outage.db"
    engine = make_engine(f"sqlite:///{db}")
    migrate(engine)
    index = RecordingIndex(engine, flush_interval_s=0.05)
    await index.start()
    clock = Clock()
    recorder = Recorder(channel_id=CHANNEL, device_id=DEVICE, root=tmp_path / "rec", index=index, node_id="n1",
                        part_s=0.5, segment_s=60, clock=clock)
    recorder.start()
    with engine.begin() as conn:  # the index becomes unwritable (as when the database is down)
        conn.exec_driver_sql("DROP TABLE recordings")
    await feed(recorder, clock, footage.frames[:50])
    await asyncio.sleep(0.3)
    assert index.write_failures > 0 and recorder.parts_written > 0
    recordings.create(engine)  # ... and writable again
    await feed(recorder, clock, footage.frames[50:])
    await recorder.stop()
    await index.stop()
    [seg] = rows(engine)
    assert seg["bytes"] == (tmp_path / "rec" / seg["path"]).stat().st_size
    assert (seg["end_at"] - seg["start_at"]).total_seconds() == pytest.approx(len(footage.frames) / 25, abs=0.05)
    engine.dispose()


def _mount_tmpfs(path, size):
    path.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
    if result.returncode:
        pytest.skip(f"a full disk needs a small filesystem; mount failed: {result.stderr.strip()}")


async def test_a_full_disk_drops_parts_raises_an_event_and_recording_resumes(tmp_path, store, footage):
    mount = tmp_path / "small"
    _mount_tmpfs(mount, "256k")
    try:
        index = RecordingIndex(store, flush_interval_s=0.05)
        await index.start()
        clock = Clock()
        recorder = Recorder(channel_id=CHANNEL, device_id=DEVICE, root=mount, index=index, node_id="n1",
                            part_s=0.5, segment_s=1.0, clock=clock)
        recorder.start()
        ballast = mount / "ballast"
        ballast.write_bytes(b"\0" * 200_000)
        frames = footage.frames * 3
        await feed(recorder, clock, frames[:150])
        await asyncio.sleep(0.2)
        assert recorder.write_error == "disk full" and recorder.parts_dropped > 0
        ballast.unlink()  # space comes back (what the retention policy does)
        await feed(recorder, clock, frames[150:], start_pts=len(frames) * 3600)
        await recorder.stop()
        await index.stop()
        assert recorder.write_error is None
        with store.connect() as conn:
            kinds = [r.kind for r in conn.execute(select(events.c.kind, events.c.data))]
        assert kinds.count("recording.write_failed") == 1 and "recording.resumed" in kinds
        for seg in rows(store):  # whatever is indexed is whole on disk
            path = mount / seg["path"]
            if seg["bytes"]:
                scan = scan_segment(path)
                assert scan.whole_bytes == seg["bytes"] <= scan.file_bytes
    finally:
        subprocess.run(["umount", str(mount)], check=False)


async def test_recovery_cuts_a_torn_part_and_reports_the_gap(tmp_path, store, footage):
    from camgrid.media.recovery import recover_segments

    index = RecordingIndex(store, flush_interval_s=0.05)
    await index.start()
    clock = Clock()
    recorder = Recorder(channel_id=CHANNEL, device_id=DEVICE, root=tmp_path / "rec", index=index, node_id="n1",
                        part_s=0.5, segment_s=60, clock=clock)
    recorder.start()
    await feed(recorder, clock, footage.frames[:60])
    await asyncio.sleep(0.3)
    await index.flush()
    # The node dies here: the segment stays open; a part was half written.
    [seg] = rows(store)
    assert seg["state"] == "open"
    path = tmp_path / "rec" / seg["path"]
    indexed = seg["bytes"]
    with open(path, "ab") as f:
        f.write(b"\x00\x00\x10\x00moof" + b"\x01" * 100)  # a torn fragment
    recorder.stopped = True
    report = recover_segments(store, tmp_path / "rec", "n1", rows(store))
    [fixed] = rows(store)
    assert fixed["state"] == "recovered" and fixed["bytes"] == path.stat().st_size >= indexed
    assert fixed["end_at"] >= seg["end_at"]
    assert "torn bytes cut" in report[0]["detail"]
    with store.connect() as conn:
        [gap] = [dict(r) for r in conn.execute(select(events).where(events.c.kind == "recording.gap")).mappings()]
    assert "stopped without closing" in gap["data"]["cause"] and gap["subject"] == CHANNEL
    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) > 0
    await index.stop()


async def test_event_recording_keeps_the_seconds_before_the_trigger(tmp_path, store, footage):
    index = RecordingIndex(store, flush_interval_s=0.05)
    await index.start()
    clock = Clock()
    recorder = Recorder(channel_id=CHANNEL, device_id=DEVICE, root=tmp_path / "rec", index=index, node_id="n1",
                        part_s=0.5, segment_s=60, clock=clock, event_mode=True, pre_s=1.0, post_s=0.3)
    recorder.start()
    t0 = clock.now
    await feed(recorder, clock, footage.frames[:63])  # 2.52 s: nothing is written yet
    assert recorder.segments == 0 and not rows(store)
    recorder.trigger()  # at 2.52 s: from the key frame at 1 s (the GOP that covers 1 s before) to 2.82 s
    await feed(recorder, clock, footage.frames[63:])
    await recorder.stop()
    await index.stop()
    [seg] = rows(store)
    assert (seg["start_at"].timestamp() - t0) == pytest.approx(1.0, abs=0.01)
    assert (seg["end_at"] - seg["start_at"]).total_seconds() == pytest.approx(2.0, abs=0.05)  # cut at the key frame at 3 s
    with av.open(str(tmp_path / "rec" / seg["path"])) as container:
        assert sum(1 for _ in container.decode(video=0)) == 50
