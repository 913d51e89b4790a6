"""Orphan footage of channels the registry does not know is kept, not deleted: the retention sweep
moves it to <recordings>/_quarantine (same layout), counts it, and an operator lists it, indexes
it again once the channel is back, or deletes it (`camgrid retention orphans`). It counts toward
the quota, and low space may delete it, oldest first with the indexed footage, never before its
minimum age nor under a legal hold. Real recorder and fMP4 files, real store (SQLite and
PostgreSQL), the CLI through Typer's runner."""

from __future__ import annotations

import json
import logging
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, select
from typer.testing import CliRunner

from camgrid.config import RetentionSettings
from camgrid.media import retention_files as files
from camgrid.media.retention import QUARANTINED, Holds, Profile, Segment, decide
from camgrid.media.retention_cli import retention_app
from camgrid.media.retention_worker import QUARANTINE_LOW_SPACE, RetentionWorker
from camgrid.registry.devices import new_device_row
from camgrid.sim.video import synthetic_footage
from camgrid.store.tables import audit_log, channels, devices, events, legal_holds, recordings
from recording_helpers import age, record_days_ago

GONE, KNOWN, DEV = "34020000001310000007", "34020000001310000001", "34020000001320000001"
NODE = "n1"
NO_SPACE_RULES = {"min_free_percent": 0, "min_free_bytes": 0, "target_free_percent": 0, "target_free_bytes": 0,
                  "orphan_grace_s": 3600}


@pytest.fixture(scope="module")
def footage():
    return synthetic_footage("h264", 160, 120, 25, 3, gop_s=0.5)


async def _record(engine, root: Path, footage, channel: str) -> list[str]:
    """Real segments of `channel`, three days old; their index rows then lost. Their paths."""
    await record_days_ago(engine, root, footage, channel, device=DEV, node=NODE)
    with engine.begin() as conn:
        paths = sorted(conn.scalars(select(recordings.c.path).where(recordings.c.channel_id == channel,
                                                                    recordings.c.state == "closed")))
        conn.execute(delete(recordings).where(recordings.c.channel_id == channel))
    for path in root.rglob("*.mp4"):
        age(path, 7200)
    return paths


def _cli(engine, tmp_path, root, *args):
    url = engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(retention_app, ["orphans", *args, "--data-dir", str(tmp_path), "--database-url", url,
                                                "--recordings-dir", str(root)])
    return result


def _hold(engine, channel, start, end):
    """A legal hold placed while the channel was still in the registry (the API places none on an
    unknown channel)."""
    with engine.begin() as conn:
        conn.execute(legal_holds.insert(), {"channel_id": channel, "start_at": start, "end_at": end, "case_ref": "case 7",
                                            "reason": "kept for a case", "created_by": "tester",
                                            "created_at": datetime.now(UTC)})


def _events(engine, kind):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(events).where(events.c.kind == kind)).mappings()]


async def test_footage_of_an_unknown_channel_is_quarantined_then_indexed_again(engine, tmp_path, footage, caplog):
    root = tmp_path / "rec"
    paths = await _record(engine, root, footage, GONE)
    assert len(paths) >= 2
    sizes = {p: (root / p).stat().st_size for p in paths}
    junk = root / Path(paths[0]).parent / "000001-0badf00d.mp4"
    junk.write_bytes(b"\x00" * 900)  # in the layout but not footage: deleted as before
    age(junk, 7200)

    env = {f"CAMGRID__RETENTION__{k.upper()}": str(v) for k, v in NO_SPACE_RULES.items()}
    printed = CliRunner().invoke(retention_app, ["sweep", "--data-dir", str(tmp_path), "--recordings-dir", str(root),
                                                 "--database-url", engine.url.render_as_string(hide_password=False),
                                                 "--node-id", NODE, "--dry-run"], env=env)
    assert printed.exit_code == 0, printed.output
    assert f"would move {len(paths):6} orphan segment files" in printed.output and GONE in printed.output

    w = RetentionWorker(engine, root, NODE, RetentionSettings(**NO_SPACE_RULES))
    dry = w.sweep_once(dry_run=True)
    assert dry.as_dict()["quarantined"] == {"segments": len(paths), "bytes": sum(sizes.values()), "channels": 1}
    assert all((root / p).exists() for p in paths) and not (root / files.QUARANTINE).exists()
    assert "would move" in dry.summary()

    with caplog.at_level(logging.WARNING, logger="camgrid.media.retention_orphans"):
        report = w.sweep_once()
    for p in paths:
        assert not (root / p).exists()
        assert (root / files.QUARANTINE / p).stat().st_size == sizes[p]  # same layout, same bytes
    assert not junk.exists() and report.totals()["orphan"] == {"segments": 1, "bytes": 900, "channels": 1}
    assert report.as_dict()["quarantined"] == {"segments": len(paths), "bytes": sum(sizes.values()), "channels": 1}
    assert f"moved {len(paths)} orphan segment files of 1 channels not in the registry" in report.summary()
    assert sum("not in the registry; moved it" in r.getMessage() for r in caplog.records) == len(paths)
    [event] = _events(engine, "recording.quarantined")
    assert (event["subject"], event["data"]["segments"], event["data"]["bytes"]) == (GONE, len(paths), sum(sizes.values()))
    # a later full scan leaves the quarantine alone (it is no channel directory)
    again = RetentionWorker(engine, root, NODE, RetentionSettings(**NO_SPACE_RULES)).sweep_once()
    assert again.quarantined == {} and again.deleted == {} and len(files.quarantined(root)) == len(paths)

    listed = _cli(engine, tmp_path, root, "list", "--json")
    assert listed.exit_code == 0, listed.output
    items = [json.loads(line) for line in listed.output.splitlines()]
    assert sorted(i["path"] for i in items) == paths
    assert all(i["channel_id"] == GONE and i["channel_known"] is False and i["bytes"] == sizes[i["path"]] for i in items)
    text = _cli(engine, tmp_path, root, "list")
    assert "unknown" in text.output and f"{len(paths)} files" in text.output

    refused = _cli(engine, tmp_path, root, "reindex", "--channel", GONE)
    assert refused.exit_code == 1 and "not in the registry" in refused.output
    kept = _cli(engine, tmp_path, root, "reindex")  # without --channel: what is still unknown stays, and says so
    assert kept.exit_code == 0 and "indexed 0 of" in kept.output and "channel not in the registry" in kept.output

    with engine.begin() as conn:  # the channel comes back (a re-import)
        conn.execute(devices.insert(), new_device_row(DEV))
        conn.execute(channels.insert(), [{"id": GONE, "device_id": DEV, "updated_at": datetime.now(UTC), "extra": {}}])
    done = _cli(engine, tmp_path, root, "reindex", "--channel", GONE, "--node-id", NODE, "--json")
    assert done.exit_code == 0, done.output
    assert [json.loads(line)["outcome"] for line in done.output.splitlines()] == ["indexed"] * len(paths)
    assert files.quarantined(root) == []
    with engine.connect() as conn:
        rows = {r["path"]: dict(r) for r in conn.execute(select(recordings)).mappings()}
        actions = [r.action for r in conn.execute(select(audit_log.c.action))]
    assert sorted(rows) == paths
    for p in paths:
        row = rows[p]
        assert (row["channel_id"], row["device_id"], row["state"], row["node_id"]) == (GONE, DEV, "recovered", NODE)
        assert (row["codec"], row["width"], row["height"], row["bytes"]) == ("h264", 160, 120, sizes[p])
        assert (root / p).stat().st_size == sizes[p]
    assert "retention.orphans_reindex" in actions
    [event] = _events(engine, "recording.reindexed")
    assert (event["subject"], event["data"]["segments"], event["data"]["source"]) == (GONE, len(paths), "quarantine")


async def test_deleting_quarantined_footage_by_hand(engine, tmp_path, footage):
    root = tmp_path / "rec"
    paths = await _record(engine, root, footage, GONE)
    for p in paths:
        assert files.quarantine(root, p) == (files.REMOVED, None)
        q = files.quarantined(root, GONE)
        start = next(x.start_at for x in q if x.relative == p)
        os.utime(root / files.QUARANTINE / p, (start.timestamp() + 0.5,) * 2)  # last written as its footage ended
    held = files.quarantined(root)[0]
    _hold(engine, GONE, held.start_at - timedelta(seconds=10), held.start_at + timedelta(seconds=0.2))

    refused = _cli(engine, tmp_path, root, "delete")
    assert refused.exit_code == 2 and "--channel ID, or --all" in refused.output
    other = _cli(engine, tmp_path, root, "delete", "--channel", KNOWN)
    assert other.exit_code == 0 and len(files.quarantined(root)) == len(paths)  # another channel's: nothing to do

    done = _cli(engine, tmp_path, root, "delete", "--channel", GONE, "--json")
    assert done.exit_code == 0, done.output
    outcomes = {json.loads(line)["path"]: json.loads(line) for line in done.output.splitlines()}
    assert outcomes[held.relative]["outcome"] == "kept" and "legal hold" in outcomes[held.relative]["why"]
    assert sorted(p for p, o in outcomes.items() if o["outcome"] == "deleted") == sorted(set(paths) - {held.relative})
    assert [q.relative for q in files.quarantined(root)] == [held.relative]
    [event] = _events(engine, "recording.deleted")
    assert (event["subject"], event["data"]["reason"], event["data"]["segments"]) == (GONE, "quarantine_by_hand",
                                                                                      len(paths) - 1)
    with engine.connect() as conn:
        [entry] = conn.execute(select(audit_log).where(audit_log.c.action == "retention.orphans_delete")).mappings().all()
    assert entry["detail"]["channels"][GONE]["segments"] == len(paths) - 1


def _indexed(engine, root, channel, days_old, size=1000):
    end = datetime.now(UTC) - timedelta(days=days_old)
    start = end - timedelta(minutes=1)
    seg_id = uuid.uuid4().hex
    relative = f"{channel}/{start:%Y%m%d}/{start:%H%M%S}-{seg_id[:8]}.mp4"
    (root / relative).parent.mkdir(parents=True, exist_ok=True)
    (root / relative).write_bytes(b"\0" * size)
    with engine.begin() as conn:
        conn.execute(recordings.insert(), {
            "id": seg_id, "channel_id": channel, "device_id": DEV, "start_at": start, "end_at": end, "bytes": size,
            "path": relative, "codec": "h264", "state": "closed", "node_id": NODE, "created_at": start})
    return relative


def _quarantined(root, channel, days_old, size=1000):
    """A quarantined file whose footage (its name and its last change) is `days_old` days old."""
    start = datetime.now(UTC) - timedelta(days=days_old, minutes=1)
    relative = f"{channel}/{start:%Y%m%d}/{start:%H%M%S}-{uuid.uuid4().hex[:8]}.mp4"
    path = root / files.QUARANTINE / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * size)
    age(path, days_old * 86400)
    return relative


def test_low_space_deletes_quarantined_footage_oldest_first_but_not_too_young_nor_held(engine, tmp_path, caplog):
    root = tmp_path / "rec"
    root.mkdir()
    ix10, q9, ix8, ix2, q1 = (_indexed(engine, root, KNOWN, 10), _quarantined(root, GONE, 9), _indexed(engine, root, KNOWN, 8),
                              _indexed(engine, root, KNOWN, 2), _quarantined(root, GONE, 1))
    # 5000 bytes against a quota of 5000: the quarantine counts; 2500 bytes must go (target 50 %)
    rules = {"min_free_bytes": 0, "target_free_bytes": 0, "min_free_percent": 5, "target_free_percent": 50,
             "quota_bytes": 5000}
    w = RetentionWorker(engine, root, NODE, RetentionSettings(**rules))
    dry = w.sweep_once(dry_run=True)
    assert dry.disk_before.recordings_bytes == 5000 and dry.need.limit == "quota" and dry.need.bytes == 2500
    assert dry.totals()[QUARANTINE_LOW_SPACE]["segments"] == 1 and (root / files.QUARANTINE / q9).exists()

    with caplog.at_level(logging.WARNING, logger="camgrid.media.retention_worker"):
        report = w.sweep_once()
    totals = report.totals()
    assert totals["low_space"]["segments"] == 2 and totals[QUARANTINE_LOW_SPACE] == {"segments": 1, "bytes": 1000,
                                                                                      "channels": 1}
    assert not (root / ix10).exists() and not (root / files.QUARANTINE / q9).exists() and not (root / ix8).exists()
    assert (root / ix2).exists() and (root / files.QUARANTINE / q1).exists()
    assert any("deleted quarantined footage" in r.getMessage() and q9 in r.getMessage() for r in caplog.records)
    deleted = _events(engine, "recording.deleted")
    assert {(e["subject"], e["data"]["reason"]) for e in deleted} == {(KNOWN, "low_space"), (GONE, QUARANTINE_LOW_SPACE)}
    assert report.disk_after.recordings_bytes == 2000

    # everything may go now: the young ones stay (minimum age 7 days), and so does held footage
    q20 = _quarantined(root, GONE, 20)
    start = files.quarantined(root, GONE)[0].start_at
    _hold(engine, GONE, start - timedelta(minutes=1), start + timedelta(minutes=1))
    full = {**rules, "quota_bytes": 3000, "target_free_percent": 99}  # 3000 bytes left, all of the quota
    report = RetentionWorker(engine, root, NODE, RetentionSettings(**full)).sweep_once()
    assert report.deleted == {} and report.short_bytes > 0
    assert (root / files.QUARANTINE / q20).exists() and (root / files.QUARANTINE / q1).exists() and (root / ix2).exists()
    assert report.alarm["severity"] == "critical" and report.alarm["held_segments"] == 1
    assert report.alarm["too_young_segments"] >= 1


def test_the_policy_never_expires_quarantined_footage():
    now = datetime(2026, 12, 1, tzinfo=UTC)
    profile = Profile("default", 90, 7)
    old = Segment("quarantine:a", GONE, now - timedelta(days=200), now - timedelta(days=200), 10, QUARANTINED, "a")
    young = Segment("quarantine:b", GONE, now - timedelta(days=3), now - timedelta(days=3), 10, QUARANTINED, "b")
    kept = decide([old, young], profile_of=lambda _: profile, holds=Holds([], now), now=now)
    assert kept.deletions == [] and dict(kept.blocked) == {}  # past the maximum age, yet only low space takes it
    plan = decide([old, young], profile_of=lambda _: profile, holds=Holds([], now), now=now, need_bytes=100)
    assert [(d.segment.id, d.reason) for d in plan.deletions] == [("quarantine:a", "low_space")]
    assert [s.id for s in plan.blocked["too_young"]] == ["quarantine:b"]


def test_the_quarantine_keeps_the_layout_and_never_overwrites(tmp_path):
    root = tmp_path / "rec"
    relative = f"{GONE}/20261101/101010-0123abcd.mp4"
    (root / relative).parent.mkdir(parents=True)
    (root / relative).write_bytes(b"first")
    assert files.quarantine(root, relative) == (files.REMOVED, None)
    assert (root / files.QUARANTINE / relative).read_bytes() == b"first"
    (root / relative).write_bytes(b"second")  # the same name again (it should not happen; it must not lose either)
    outcome, error = files.quarantine(root, relative)
    assert outcome == files.FAILED and "already exists" in error and (root / relative).read_bytes() == b"second"
    assert files.quarantine(root, "../outside.mp4")[0] == files.FAILED
    (root / files.QUARANTINE / GONE / "20261101" / "notes.txt").write_text("not a segment")
    [q] = files.quarantined(root)
    assert (q.relative, q.channel_id, q.bytes) == (relative, GONE, 5)
    assert q.start_at == datetime(2026, 11, 1, 10, 10, 10, tzinfo=UTC)
    assert files.quarantined(root, KNOWN) == [] and files.quarantined_bytes(root) == 5
    (root / relative).unlink()
    assert files.release(root, relative) == (files.REMOVED, None) and (root / relative).read_bytes() == b"first"
