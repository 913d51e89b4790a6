"""`camgrid retention sweep`: a dry run prints and keeps; a real run deletes and says what."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from typer.testing import CliRunner

from camgrid.media.retention_cli import retention_app
from camgrid.store.engine import open_store
from camgrid.store.tables import recordings

CHANNEL = "34020000001310000001"


def _segment(engine, root, days_old, node="embedded"):
    end = datetime.now(UTC) - timedelta(days=days_old)
    start = end - timedelta(minutes=1)
    seg_id = uuid.uuid4().hex
    relative = f"{CHANNEL}/{start:%Y%m%d}/{start:%H%M%S}-{seg_id[:8]}.mp4"
    (root / relative).parent.mkdir(parents=True, exist_ok=True)
    (root / relative).write_bytes(b"\0" * 2048)
    with engine.begin() as conn:
        conn.execute(recordings.insert(), {
            "id": seg_id, "channel_id": CHANNEL, "device_id": "34020000001320000001", "start_at": start, "end_at": end,
            "bytes": 2048, "path": relative, "codec": "h264", "state": "closed", "node_id": node, "created_at": start})
    return root / relative


def test_sweep_dry_run_then_for_real(tmp_path):
    engine = open_store(f"sqlite:///{tmp_path / 'camgrid.db'}")
    root = tmp_path / "recordings"
    old, young = _segment(engine, root, 100), _segment(engine, root, 1)
    runner = CliRunner()
    env = {"CAMGRID__RETENTION__MIN_FREE_BYTES": "0", "CAMGRID__RETENTION__MIN_FREE_PERCENT": "0"}
    dry = runner.invoke(retention_app, ["sweep", "--data-dir", str(tmp_path), "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "would delete" in dry.output and CHANNEL in dry.output and "max_age" in dry.output
    assert old.exists()
    done = runner.invoke(retention_app, ["sweep", "--data-dir", str(tmp_path)], env=env)
    assert done.exit_code == 0, done.output
    assert "deleted      1 segments" in done.output and "node embedded" in done.output
    assert not old.exists() and young.exists()
    with engine.connect() as conn:
        assert conn.execute(select(recordings.c.id)).all() != []
    engine.dispose()


def test_sweep_says_what_is_missing(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(retention_app, ["sweep", "--data-dir", str(tmp_path), "--recordings-dir", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    engine = open_store(f"sqlite:///{tmp_path / 'camgrid.db'}")
    root = tmp_path / "recordings"
    _segment(engine, root, 100, node="a")
    _segment(engine, root, 100, node="b")
    several = runner.invoke(retention_app, ["sweep", "--data-dir", str(tmp_path)])
    assert several.exit_code == 2 and "pass --node-id" in several.output
    engine.dispose()
