"""`camgrid record list` and `camgrid export` as an operator runs them (subprocess) against a
data directory with real recorded segments: the list, the spans and gaps, a bundle that decodes
and verifies, refusals with reasons, the export in the audit log."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import av
from recording_helpers import CHANNEL, at

from camgrid.store.tables import audit_log


def camgrid(*args: str, recordings) -> subprocess.CompletedProcess:  # noqa: ANN001
    env = dict(os.environ, CAMGRID__MEDIA__RECORDINGS_DIR=str(recordings))
    return subprocess.run([sys.executable, "-m", "camgrid", *args], capture_output=True, text=True, timeout=120, env=env)


def test_record_list_names_every_segment(recorded, tmp_path):
    engine, root = recorded
    db = ["--data-dir", str(tmp_path / "data"), "--database-url", str(engine.url)]
    listed = camgrid("record", "list", *db, "--channel", CHANNEL, "--json", recordings=root)
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)
    assert len(items) == 4 and all(i["codec"] == "h264" and (i["width"], i["height"]) == (160, 120) for i in items)
    assert items[0]["start"] == at(0).isoformat() and all(os.path.isfile(i["path"]) for i in items)
    assert [i["start"] for i in items] == sorted(i["start"] for i in items)
    table = camgrid("record", "list", *db, "--channel", CHANNEL, recordings=root)
    assert "4 segments, 2 continuous spans, 1 gaps" in table.stdout
    window = camgrid("record", "list", *db, "--channel", CHANNEL, "--from", at(0).isoformat(),
                     "--to", at(3).isoformat(), "--json", recordings=root)
    assert len(json.loads(window.stdout)) == 2
    none = camgrid("record", "list", *db, "--channel", "34020000001310000099", recordings=root)
    assert none.returncode == 0 and "nothing of channel" in none.stderr
    bad = camgrid("record", "list", *db, "--channel", CHANNEL, "--from", "yesterday", recordings=root)
    assert bad.returncode == 2 and "ISO 8601" in bad.stderr


def test_export_writes_a_bundle_that_verifies_and_is_audited(recorded, tmp_path):
    engine, root = recorded
    data = tmp_path / "data"
    db = ["--data-dir", str(data), "--database-url", str(engine.url)]
    out = tmp_path / "bundle"
    done = camgrid("export", *db, "--channel", CHANNEL, "--from", at(1).isoformat(), "--to", at(30).isoformat(),
                   "--out", str(out), "--reason", "case 2026-114", recordings=root)
    assert done.returncode == 0, done.stderr
    assert "exporting: 100 %" in done.stderr and "manifest.json" in done.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["reason"] == "case 2026-114" and manifest["exported_by"].startswith("cli:")
    with av.open(str(out / manifest["files"][0]["name"])) as container:
        assert sum(1 for _ in container.decode(video=0)) == 200 - 25
    verified = camgrid("export", "verify", str(out), "--data-dir", str(data), recordings=root)
    assert verified.returncode == 0 and "signature is valid" in verified.stdout
    with engine.connect() as conn:
        rows = conn.execute(audit_log.select().where(audit_log.c.action == "video.export")).all()
    assert len(rows) == 1 and rows[0].target == CHANNEL and rows[0].detail["reason"] == "case 2026-114"
    again = camgrid("export", *db, "--channel", CHANNEL, "--from", at(1).isoformat(), "--to", at(30).isoformat(),
                    "--out", str(out), "--reason", "again", recordings=root)
    assert again.returncode == 2 and "exists already" in again.stderr
    empty = camgrid("export", *db, "--channel", CHANNEL, "--from", at(100).isoformat(), "--to", at(200).isoformat(),
                    "--out", str(tmp_path / "empty"), "--reason", "r", recordings=root)
    assert empty.returncode == 1 and "nothing of channel" in empty.stderr and not (tmp_path / "empty").exists()
    missing = camgrid("export", *db, "--channel", CHANNEL, "--out", str(tmp_path / "x"), recordings=root)
    assert missing.returncode == 2 and "missing --from, --to, --reason" in missing.stderr
