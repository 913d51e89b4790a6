"""`camgrid alarms list` end to end, as a subprocess, on SQLite (the data dir's database) and
PostgreSQL (--database-url)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from alarm_helpers import CHANNEL, DEVICE

from camgrid.config import AlarmSettings
from camgrid.ops.alarms import store, workflow
from camgrid.ops.alarms.model import Candidate
from camgrid.store.engine import make_engine, migrate

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "camgrid", "alarms", "list", *args], capture_output=True, text=True,
                          timeout=120)


def test_alarms_list(db_url, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    url = db_url if not db_url.startswith("sqlite") else f"sqlite:///{(data_dir / 'camgrid.db').resolve()}"
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        changes = store.apply(conn, [
            Candidate("alarm.video.motion", "device", 1, f"a|{CHANNEL}", "motion on cam 1", T0, DEVICE, CHANNEL),
            Candidate("health.offline", "health", 2, f"h|{DEVICE}", "device offline", T0 + timedelta(minutes=1), DEVICE),
            Candidate("health.offline", "health", 2, f"h|{DEVICE}", "device offline", T0 + timedelta(minutes=2), DEVICE),
            Candidate("vqd.blur", "vqd", 3, f"v|{CHANNEL}", "blurred", T0 + timedelta(minutes=3), None, CHANNEL)])
    workflow.resolve(engine, changes[2].alarm["id"], "op1", "fixed", settings=AlarmSettings())
    engine.dispose()
    where = ["--data-dir", str(data_dir)] + ([] if db_url.startswith("sqlite") else ["--database-url", url])

    table = run(*where)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:4] == ["ID", "PRIO", "STATE", "TYPE"]
    assert [ln.split()[0] for ln in lines[1:]] == ["2", "1"]  # active ones, newest first
    assert "health.offline" in lines[1] and " 2 " in lines[1] and "device offline" in lines[1]

    everything = run(*where, "--state", "all", "--json")
    assert everything.returncode == 0, everything.stderr
    docs = [json.loads(ln) for ln in everything.stdout.splitlines()]
    assert [(d["id"], d["type"], d["state"], d["count"]) for d in docs] == [
        (3, "vqd.blur", "resolved", 1), (2, "health.offline", "open", 2), (1, "alarm.video.motion", "open", 1)]
    assert docs[0]["resolved_by"] == "op1" and docs[1]["last_at"] == "2026-12-01T02:02:00+00:00"

    assert [json.loads(ln)["id"] for ln in run(*where, "--state", "all", "--priority", "1", "--json").stdout.splitlines()] == [1]
    empty = run(*where, "--state", "dispatched")
    assert empty.returncode == 0 and empty.stdout == "" and "no alarms (dispatched)" in empty.stderr
    bad = run(*where, "--state", "nonsense")
    assert bad.returncode == 2
