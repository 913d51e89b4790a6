"""Retention sweeps on a real store (SQLite and PostgreSQL) and real files: ages, holds, orphans,
a real low disk (a small tmpfs), and a recorder writing while footage is deleted."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import pytest
from sqlalchemy import select

from camgrid.config import RetentionSettings
from camgrid.governance.retention import assign_profile, create_hold, create_profile, release_hold
from camgrid.media.ps import VIDEO_ID, AccessUnit
from camgrid.media.recorder import Recorder
from camgrid.media.recording_index import RecordingIndex
from camgrid.media.retention import Holds
from camgrid.media.retention_worker import RetentionWorker
from camgrid.media.segment_file import scan_segment
from camgrid.sim.video import synthetic_footage
from camgrid.store.tables import channel_retention, channels, devices, events, recordings, retention_sweeps
from camgrid.registry.devices import new_device_row

CH_A, CH_B, DEV = "34020000001310000001", "34020000001310000002", "34020000001320000001"
NODE = "n1"
NO_SPACE_RULES = {"min_free_percent": 0, "min_free_bytes": 0, "target_free_percent": 0, "target_free_bytes": 0}


def now() -> datetime:
    return datetime.now(UTC)


def add_segment(engine, root: Path, channel: str, days_old: float, *, size: int = 1000, state: str = "closed",
                node: str = NODE, write_file: bool = True, length_s: int = 60) -> dict:
    end = now() - timedelta(days=days_old)
    start = end - timedelta(seconds=length_s)
    seg_id = uuid.uuid4().hex
    relative = f"{channel}/{start:%Y%m%d}/{start:%H%M%S}-{seg_id[:8]}.mp4"
    if write_file:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * size)
    row = {"id": seg_id, "channel_id": channel, "device_id": DEV, "start_at": start, "end_at": end, "bytes": size,
           "path": relative, "codec": "h264", "width": 160, "height": 120, "state": state, "node_id": node,
           "created_at": start}
    with engine.begin() as conn:
        conn.execute(recordings.insert(), row)
    return row


def register(engine, *channel_ids: str) -> None:
    """Put the channels in the registry (holds and profiles are for channels the platform knows)."""
    with engine.begin() as conn:
        conn.execute(devices.insert(), new_device_row(DEV))
        conn.execute(channels.insert(), [{"id": c, "device_id": DEV, "updated_at": now(), "extra": {}} for c in channel_ids])


def segment_ids(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.scalars(select(recordings.c.id)))


def events_of(engine, kind: str) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(events).where(events.c.kind == kind).order_by(events.c.id)).mappings()]


def worker(engine, root: Path, **rules) -> RetentionWorker:
    root.mkdir(parents=True, exist_ok=True)
    return RetentionWorker(engine, root, NODE, RetentionSettings(**{**NO_SPACE_RULES, **rules}))


@pytest.fixture
def root(tmp_path) -> Path:
    return tmp_path / "recordings"


def test_footage_past_its_maximum_age_is_deleted_rows_files_and_logged(engine, root):
    w = worker(engine, root)
    old_a = [add_segment(engine, root, CH_A, 100 + i) for i in range(3)]
    old_b = add_segment(engine, root, CH_B, 40, size=500)
    young = [add_segment(engine, root, CH_A, 10), add_segment(engine, root, CH_B, 20)]
    profile = create_profile(engine, "thirty", 30, 3, "short", "tester")
    assign_profile(engine, CH_B, profile["id"], "tester")
    report = w.sweep_once()
    assert segment_ids(engine) == {r["id"] for r in young}
    for r in [*old_a, old_b]:
        assert not (root / r["path"]).exists()
        assert not (root / r["path"]).parent.exists()  # its day directory was left empty: removed
    assert all((root / r["path"]).exists() for r in young)
    logged = {e["subject"]: e["data"] for e in events_of(engine, "recording.deleted")}
    assert logged[CH_A]["segments"] == 3 and logged[CH_A]["bytes"] == 3000 and logged[CH_A]["reason"] == "max_age"
    assert logged[CH_B]["segments"] == 1 and logged[CH_B]["bytes"] == 500 and logged[CH_B]["node_id"] == NODE
    assert logged[CH_A]["from"] == old_a[-1]["start_at"].isoformat() and logged[CH_A]["missing_files"] == 0
    assert report.totals()["max_age"] == {"segments": 4, "bytes": 3500, "channels": 2}
    with engine.connect() as conn:
        status = conn.execute(select(retention_sweeps)).mappings().one()
    assert status["node_id"] == NODE and status["result"]["deleted"]["max_age"]["segments"] == 4
    # A second sweep finds nothing more to do and logs nothing more.
    assert w.sweep_once().deleted == {} and len(events_of(engine, "recording.deleted")) == 2


def test_a_legal_hold_keeps_footage_until_released(engine, root):
    w = worker(engine, root)
    held = add_segment(engine, root, CH_A, 120)
    free = add_segment(engine, root, CH_A, 121)
    register(engine, CH_A)
    hold = create_hold(engine, channel_id=CH_A, start_at=held["start_at"] + timedelta(seconds=10),
                       end_at=held["start_at"] + timedelta(seconds=20), case_ref="2026-XJ-0042", reason="assault on the square",
                       until=None, actor="inspector")
    assert hold["segments"] == 1 and hold["bytes"] == 1000
    report = w.sweep_once()
    assert segment_ids(engine) == {held["id"]} and (root / held["path"]).exists()
    assert report.kept_past_max_age["held"] == [1, 1000]
    assert not (root / free["path"]).exists()
    release_hold(engine, hold["id"], "inspector", "case closed")
    w.sweep_once()
    assert segment_ids(engine) == set() and not (root / held["path"]).exists()


def test_open_segments_other_nodes_and_missing_files(engine, root):
    w = worker(engine, root)
    still_open = add_segment(engine, root, CH_A, 200, state="open")  # left by a dead node, not yet recovered
    other_node = add_segment(engine, root, CH_A, 200, node="n2")
    recovered = add_segment(engine, root, CH_A, 200, state="recovered")
    add_segment(engine, root, CH_B, 200, write_file=False)  # its file is gone already
    w.sweep_once()
    assert segment_ids(engine) == {still_open["id"], other_node["id"]}
    assert not (root / recovered["path"]).exists()
    [logged] = [e["data"] for e in events_of(engine, "recording.deleted") if e["subject"] == CH_B]
    assert logged["segments"] == 1 and logged["missing_files"] == 1


def test_many_batches_keyset_past_kept_rows(engine, root):
    w = worker(engine, root, batch_size=3)
    rows = [add_segment(engine, root, CH_A, 100 + i / 24, size=10) for i in range(10)]
    kept = [add_segment(engine, root, CH_A, 100.01 + i / 24, state="open") for i in range(4)]
    report = w.sweep_once()
    assert segment_ids(engine) == {r["id"] for r in kept}
    assert report.totals()["max_age"]["segments"] == len(rows)


def test_a_dry_run_deletes_nothing(engine, root):
    w = worker(engine, root)
    old = add_segment(engine, root, CH_A, 100)
    report = w.sweep_once(dry_run=True)
    assert report.totals()["max_age"]["segments"] == 1 and "would delete 1 segments" in report.summary()
    assert segment_ids(engine) == {old["id"]} and (root / old["path"]).exists()
    assert events_of(engine, "recording.deleted") == []
    with engine.connect() as conn:
        assert conn.execute(select(retention_sweeps)).first() is None


def _orphan(root: Path, channel: str, days_old: float, *, age_s: float) -> Path:
    start = now() - timedelta(days=days_old)
    path = root / channel / f"{start:%Y%m%d}" / f"{start:%H%M%S}-{uuid.uuid4().hex[:8]}.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * 700)
    t = time.time() - age_s
    os.utime(path, (t, t))
    return path


def test_orphan_files_are_deleted_after_the_grace_unless_held(engine, root):
    w = worker(engine, root, orphan_grace_s=3600)
    indexed = add_segment(engine, root, CH_A, 3)
    os.utime(root / indexed["path"], (time.time() - 7200,) * 2)
    orphan = _orphan(root, CH_A, 3, age_s=7200)
    fresh = _orphan(root, CH_A, 0, age_s=60)  # its index row may still be queued
    held_orphan = _orphan(root, CH_B, 5, age_s=7200)
    register(engine, CH_B)
    create_hold(engine, channel_id=CH_B, start_at=now() - timedelta(days=6), end_at=now() - timedelta(days=4),
                case_ref="C-1", reason="evidence", until=None, actor="inspector")
    foreign = [root / "lost+found" / "x", root / CH_A / "20260101" / "notes.txt", root / "readme.mp4"]
    for f in foreign:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"keep")
        os.utime(f, (time.time() - 10 * 86400,) * 2)
    report = w.sweep_once()
    assert not orphan.exists()
    assert fresh.exists() and held_orphan.exists() and (root / indexed["path"]).exists()
    assert all(f.exists() for f in foreign)
    assert report.orphans_scanned and report.totals()["orphan"] == {"segments": 1, "bytes": 700, "channels": 1}
    [logged] = [e["data"] for e in events_of(engine, "recording.deleted") if e["data"]["reason"] == "orphan"]
    assert logged["segments"] == 1
    # The next sweep does not search again before orphan_scan_interval_s.
    assert not w.sweep_once().orphans_scanned


def test_channels_assigned_to_profiles_are_listed_by_channel_table(engine, root):
    """A channel in the registry with a profile of its own, and one only in recordings."""
    register(engine, CH_A)
    keep_long = create_profile(engine, "keep-long", None, 0, "", "tester")
    assign_profile(engine, CH_A, "keep-long", "tester")
    very_old = add_segment(engine, root, CH_A, 1000)
    w = worker(engine, root)
    w.sweep_once()
    assert segment_ids(engine) == {very_old["id"]}  # no maximum age
    assert keep_long["max_age_days"] is None


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
    if result.returncode:
        pytest.skip(f"a low disk needs a small filesystem; mount failed: {result.stderr.strip()}")


def test_a_low_disk_deletes_the_oldest_footage_first_and_raises_an_alarm(engine, tmp_path):
    root = tmp_path / "small"
    _mount_tmpfs(root, "1m")
    try:
        w = RetentionWorker(engine, root, NODE, RetentionSettings(
            min_free_percent=30, target_free_percent=50, min_free_bytes=0, target_free_bytes=0, alarm_interval_s=3600))
        size = 100 * 1024
        oldest_first = [add_segment(engine, root, CH_A if i % 2 else CH_B, 60 - i, size=size) for i in range(7)]
        young = [add_segment(engine, root, CH_A, 1 + i / 10, size=size) for i in range(2)]  # under the 7-day minimum
        total, free = os.statvfs(root).f_blocks * os.statvfs(root).f_frsize, os.statvfs(root).f_bavail * os.statvfs(root).f_frsize
        assert free < 0.3 * total
        report = w.sweep_once()
        after = os.statvfs(root)
        assert after.f_bavail / after.f_blocks >= 0.5
        gone = [r for r in oldest_first if r["id"] not in segment_ids(engine)]
        assert gone == oldest_first[:len(gone)] and 1 <= len(gone) < len(oldest_first)  # oldest first, not all
        freed_before_last = sum(r["bytes"] for r in gone[:-1])
        assert free + freed_before_last < 0.5 * total  # the last one deleted was still needed
        assert all(not (root / r["path"]).exists() for r in gone)
        assert all(r["id"] in segment_ids(engine) for r in young)
        [alarm] = events_of(engine, "recording.low_space")
        assert alarm["subject"] == NODE and alarm["data"]["severity"] == "warning"
        assert alarm["data"]["deleted_before_max_age"] == len(gone) and report.short_bytes == 0
        assert {e["data"]["reason"] for e in events_of(engine, "recording.deleted")} == {"low_space"}

        # Fill the disk with footage too young to delete: nothing may go, a critical alarm.
        filler = root / "filler"
        filler.write_bytes(b"\0" * int(0.4 * total))
        for r in oldest_first[len(gone):]:
            with engine.begin() as conn:
                conn.execute(recordings.update().where(recordings.c.id == r["id"]).values(
                    end_at=now() - timedelta(hours=1)))
        report = w.sweep_once()
        assert report.deleted == {} and report.short_bytes > 0
        alarms = events_of(engine, "recording.low_space")
        assert len(alarms) == 2 and alarms[-1]["data"]["severity"] == "critical"
        assert alarms[-1]["data"]["too_young_segments"] >= 2 and "fail to record" in alarms[-1]["data"]["message"]
        w.sweep_once()
        assert len(events_of(engine, "recording.low_space")) == 2  # rate-limited
    finally:
        subprocess.run(["umount", str(root)], check=False)


def test_a_quota_limits_the_node_s_footage(engine, root):
    w = worker(engine, root, quota_bytes=10_000, min_free_percent=10, target_free_percent=20)
    rows = [add_segment(engine, root, CH_A, 50 - i, size=1000) for i in range(10)]  # exactly the quota
    report = w.sweep_once()
    assert report.need.limit == "quota" and report.need.bytes == 2000
    assert segment_ids(engine) == {r["id"] for r in rows[2:]}


async def test_the_worker_runs_sweeps_until_stopped(engine, root):
    w = RetentionWorker(engine, root, NODE, RetentionSettings(**NO_SPACE_RULES, sweep_interval_s=1))
    root.mkdir()
    old = add_segment(engine, root, CH_A, 100)
    await w.start()
    for _ in range(100):
        if w.sweeps:
            break
        await asyncio.sleep(0.05)
    started = time.monotonic()
    await w.stop()
    assert time.monotonic() - started < 1.0
    assert w.sweeps >= 1 and old["id"] not in segment_ids(engine)
    assert w.stats()["last"]["deleted"]["max_age"]["segments"] == 1


async def test_deleting_while_the_recorder_writes(tmp_path, engine):
    """Footage is deleted for space while a channel records into the same directory: the open
    segment is never touched, the recorder never fails, and what remains plays."""
    footage = synthetic_footage("h264", 160, 120, 25, 4, gop_s=0.5)
    root = tmp_path / "rec"
    index = RecordingIndex(engine, flush_interval_s=0.05)
    await index.start()
    clock_now = [time.time() - 3600]  # footage an hour old, so a minimum age of 0 lets it go
    recorder = Recorder(channel_id=CH_A, device_id=DEV, root=root, index=index, node_id=NODE, part_s=0.25,
                        segment_s=0.5, clock=lambda: clock_now[0])
    recorder.start()
    profile = create_profile(engine, "no-minimum", 30, 0, "", "tester")
    with engine.begin() as conn:  # (assign_profile wants a known channel; this one has no footage yet)
        conn.execute(channel_retention.insert(), {"channel_id": CH_A, "profile_id": profile["id"], "updated_at": now(),
                                                  "updated_by": "t"})
    # Any disk is "low": the worker deletes every closed segment it may.
    w = RetentionWorker(engine, root, NODE, RetentionSettings(min_free_percent=99, target_free_percent=99.9,
                                                              min_free_bytes=0, target_free_bytes=0))
    deleted = 0
    for i, f in enumerate(footage.frames * 2):
        pts = i * 3600
        recorder.push(AccessUnit(VIDEO_ID, "h264", pts, pts, f.data, f.keyframe))
        clock_now[0] += 0.04
        if i % 10 == 0:
            await asyncio.sleep(0.01)
        if i % 25 == 24:
            await index.flush()
            report = await asyncio.to_thread(w.sweep_once)
            deleted += report.totals().get("low_space", {}).get("segments", 0)
    await recorder.stop()
    await index.stop()
    assert deleted > 0 and recorder.write_error is None and recorder.parts_dropped == 0
    with engine.connect() as conn:
        left = [dict(r) for r in conn.execute(select(recordings)).mappings()]
    assert left, "the newest segments stay"
    for row in left:
        path = root / row["path"]
        assert path.stat().st_size == row["bytes"]
        with av.open(str(path)) as container:
            assert sum(1 for _ in container.decode(video=0)) > 0


def test_a_hold_placed_during_a_sweep_still_wins(engine, root):
    """The worker read the holds before this one was placed; the DELETE re-checks them."""
    class StaleHolds(RetentionWorker):
        def _load_holds(self, now):
            return Holds([], now)  # read before the hold was placed

    old = add_segment(engine, root, CH_A, 100)
    register(engine, CH_A)
    create_hold(engine, channel_id=CH_A, start_at=old["end_at"], end_at=old["end_at"] + timedelta(days=1),
                case_ref="C-9", reason="placed mid-sweep", until=None, actor="inspector")
    w = StaleHolds(engine, root, NODE, RetentionSettings(**NO_SPACE_RULES))
    report = w.sweep_once()
    assert segment_ids(engine) == {old["id"]} and (root / old["path"]).exists()
    assert report.deleted == {} and events_of(engine, "recording.deleted") == []


async def test_a_full_disk_the_policy_frees_space_and_recording_resumes(engine, tmp_path):
    """The whole chain on a real full filesystem: the recorder fails to write (event), the
    low-space policy deletes the oldest eligible footage (alarm, deletions logged), and the
    recorder writes again (event) without anyone touching it."""
    root = tmp_path / "full"
    _mount_tmpfs(root, "1m")
    try:
        old = [add_segment(engine, root, CH_B, 30 - i, size=150 * 1024) for i in range(6)]  # a month old: eligible
        footage = synthetic_footage("h264", 160, 120, 25, 4, gop_s=0.5)
        index = RecordingIndex(engine, flush_interval_s=0.05)
        await index.start()
        clock = [time.time()]
        recorder = Recorder(channel_id=CH_A, device_id=DEV, root=root, index=index, node_id=NODE, part_s=0.25,
                            segment_s=1.0, clock=lambda: clock[0])
        recorder.start()
        retention = RetentionWorker(engine, root, NODE, RetentionSettings(
            min_free_percent=20, target_free_percent=40, min_free_bytes=0, target_free_bytes=0, alarm_interval_s=3600))
        frames = footage.frames * 4
        for i, f in enumerate(frames):
            pts = i * 3600
            recorder.push(AccessUnit(VIDEO_ID, "h264", pts, pts, f.data, f.keyframe))
            clock[0] += 0.04
            if i % 10 == 0:
                await asyncio.sleep(0.01)
            if recorder.write_error == "disk full" and not events_of(engine, "recording.low_space"):
                await index.flush()
                await asyncio.to_thread(retention.sweep_once)  # what the node's sweep does on its next round
        await recorder.stop()
        await index.stop()
        assert events_of(engine, "recording.write_failed")[0]["data"]["cause"] == "disk full"
        [alarm] = events_of(engine, "recording.low_space")
        assert alarm["data"]["severity"] == "warning"
        deleted = [r for r in old if r["id"] not in segment_ids(engine)]
        assert deleted and deleted == old[:len(deleted)]  # the oldest first
        assert events_of(engine, "recording.resumed") and recorder.write_error is None
        with engine.connect() as conn:
            mine = [dict(r) for r in conn.execute(select(recordings).where(recordings.c.channel_id == CH_A)).mappings()]
        assert any(r["bytes"] for r in mine)
        for r in mine:  # what is indexed is whole on disk
            if r["bytes"]:
                assert scan_segment(root / r["path"]).whole_bytes == r["bytes"]
    finally:
        subprocess.run(["umount", str(root)], check=False)
