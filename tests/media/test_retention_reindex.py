"""Orphan segment files indexed again (issue 3): a real recorded segment whose index row was
lost is found by the retention sweep's orphan scan and indexed again from what the file says
(codec, picture size, bytes, length; start from its name), a torn tail cut off; footage of a
channel the registry does not know goes to the quarantine (tests/media/test_quarantine_orphans.py);
only files that are not footage are deleted. Real recorder, real store (SQLite and
PostgreSQL), real files, PyAV decoding."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import av
import pytest
from sqlalchemy import delete, select

from camgrid.config import RetentionSettings
from camgrid.media.retention_worker import RetentionWorker
from camgrid.media.segment_file import SegmentError, describe_segment, scan_segment
from camgrid.registry.devices import new_device_row
from camgrid.sim.video import synthetic_footage
from camgrid.store.tables import channels, devices, events, recordings
from recording_helpers import age, record_days_ago

CH_A, CH_B, DEV = "34020000001310000001", "34020000001310000002", "34020000001320000001"
NODE = "n1"
RULES = {"min_free_percent": 0, "min_free_bytes": 0, "target_free_percent": 0, "target_free_bytes": 0,
         "orphan_grace_s": 3600}


@pytest.fixture(scope="module")
def footage():
    return synthetic_footage("h264", 160, 120, 25, 4, gop_s=0.5)


def rows(engine) -> dict[str, dict]:
    with engine.connect() as conn:
        return {r["path"]: dict(r) for r in conn.execute(select(recordings)).mappings()}


def aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


async def record(engine, root: Path, footage) -> dict[str, dict]:
    """Real segments of CH_A, three days old, closed and indexed."""
    recorder = await record_days_ago(engine, root, footage, CH_A, device=DEV, node=NODE)
    assert recorder.write_error is None
    return rows(engine)


async def test_a_recorded_segment_without_its_row_is_indexed_again(engine, tmp_path, footage):
    root = tmp_path / "rec"
    with engine.begin() as conn:
        conn.execute(devices.insert(), new_device_row(DEV))
        conn.execute(channels.insert(), [{"id": CH_A, "device_id": DEV, "updated_at": datetime.now(UTC), "extra": {}}])
    original = await record(engine, root, footage)
    closed = sorted((r for r in original.values() if r["state"] == "closed"), key=lambda r: r["start_at"])
    assert len(closed) >= 3
    lost, torn = closed[0], closed[1]
    with engine.begin() as conn:  # the rows are lost (a node that died before its index write)
        conn.execute(delete(recordings).where(recordings.c.id.in_([lost["id"], torn["id"]])))
    with open(root / torn["path"], "ab") as f:
        f.write(b"\x00\x00\x10\x00moof" + b"\x01" * 200)  # a torn last fragment
    junk = root / CH_A / Path(lost["path"]).parent.name / "010203-0badf00d.mp4"
    junk.write_bytes(b"\x00" * 700)  # in the layout, not a segment
    unknown = root / CH_B / Path(lost["path"]).parent.name / Path(closed[2]["path"]).name
    unknown.parent.mkdir(parents=True)
    shutil.copy(root / closed[2]["path"], unknown)  # footage, but of a channel the registry does not know
    for path in root.rglob("*.mp4"):
        age(path)

    w = RetentionWorker(engine, root, NODE, RetentionSettings(**RULES))
    dry = w.sweep_once(dry_run=True)
    assert dry.as_dict()["reindexed"] == {"segments": 2, "bytes": lost["bytes"] + torn["bytes"], "channels": 1}
    assert dry.as_dict()["quarantined"] == {"segments": 1, "bytes": closed[2]["bytes"], "channels": 1}
    assert lost["path"] not in rows(engine) and junk.exists() and unknown.exists()  # a dry run changes nothing

    report = w.sweep_once()
    after = rows(engine)
    for old in (lost, torn):
        new = after[old["path"]]
        assert new["id"] != old["id"] and new["id"][:8] == old["id"][:8]  # the file name's 8 hex digits
        assert (new["channel_id"], new["device_id"], new["node_id"], new["state"]) == (CH_A, DEV, NODE, "recovered")
        assert (new["codec"], new["width"], new["height"], new["bytes"]) == ("h264", 160, 120, old["bytes"])
        # the start comes from the file name (whole seconds), the length from the fragments
        assert abs((aware(new["start_at"]) - aware(old["start_at"])).total_seconds()) < 1
        assert aware(new["start_at"]).microsecond == 0
        length = (aware(new["end_at"]) - aware(new["start_at"])).total_seconds()
        assert length == pytest.approx((aware(old["end_at"]) - aware(old["start_at"])).total_seconds(), abs=0.05)
        path = root / old["path"]
        assert path.stat().st_size == old["bytes"]  # the torn tail was cut off
        with av.open(str(path)) as container:
            assert sum(1 for _ in container.decode(video=0)) >= 20
    assert not junk.exists()  # not footage: deleted as before
    moved = root / "_quarantine" / unknown.relative_to(root)  # footage of an unknown channel: kept aside, same layout
    assert not unknown.exists() and moved.read_bytes() == (root / closed[2]["path"]).read_bytes()
    assert report.totals()["orphan"] == {"segments": 1, "bytes": 700, "channels": 1}
    assert report.as_dict()["quarantined"] == {"segments": 1, "bytes": closed[2]["bytes"], "channels": 1}
    assert report.as_dict()["reindexed"]["segments"] == 2
    with engine.connect() as conn:
        logged = [dict(r) for r in conn.execute(select(events).where(events.c.kind == "recording.reindexed")).mappings()]
    assert [(e["subject"], e["data"]["segments"], e["data"]["node_id"]) for e in logged] == [(CH_A, 2, NODE)]
    assert "indexed 2 orphan segment files again" in report.summary()
    # the next full scan finds nothing more to do
    w2 = RetentionWorker(engine, root, NODE, RetentionSettings(**RULES))
    again = w2.sweep_once()
    assert again.reindexed == {} and "orphan" not in again.totals()


def test_describe_segment_refuses_what_is_not_a_whole_segment(tmp_path):
    init_only = tmp_path / "a.mp4"
    init_only.write_bytes(b"\x00\x00\x00\x10ftypisom\x00\x00\x00\x00" + b"\x00\x00\x00\x08moov")
    with pytest.raises(SegmentError, match="no H.264 or H.265 video track"):
        describe_segment(init_only)
    garbage = tmp_path / "b.mp4"
    garbage.write_bytes(os.urandom(500))
    with pytest.raises(SegmentError):
        describe_segment(garbage)


async def test_describe_segment_agrees_with_the_recorders_row(sqlite_engine, tmp_path, footage):
    original = await record(sqlite_engine, tmp_path / "rec", footage)
    for row in original.values():
        info = describe_segment(tmp_path / "rec" / row["path"])
        assert (info.codec, info.width, info.height, info.bytes, info.torn_bytes) == ("h264", 160, 120, row["bytes"], 0)
        seconds = (aware(row["end_at"]) - aware(row["start_at"])).total_seconds()
        assert info.duration_s == pytest.approx(seconds, abs=0.05)
        assert info.fragments == scan_segment(tmp_path / "rec" / row["path"]).fragments
