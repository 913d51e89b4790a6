"""`camgrid vqd manufacturers list|set|delete`: the operator's per-manufacturer sub-stream
selectors from the command line, audited as the API audits them."""

from __future__ import annotations

import json
import subprocess
import sys

from typer.testing import CliRunner

from camgrid.governance.audit import list_audit
from camgrid.ops.vqd import patrol_store as store
from camgrid.ops.vqd.manufacturers_cli import manufacturers_app
from camgrid.store.engine import open_store


def run(*args: str):
    return CliRunner().invoke(manufacturers_app, list(args))


def test_it_is_a_command_of_camgrid_vqd():
    out = subprocess.run([sys.executable, "-c", "import sys; from camgrid.cli import main; sys.argv[0] = 'camgrid'; main()",
                          "vqd", "manufacturers", "--help"], check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "list" in out.stdout and "delete" in out.stdout, out.stdout + out.stderr


def test_set_list_replace_delete_and_the_audit(tmp_path):
    d = ["--data-dir", str(tmp_path)]
    first = run("set", " HikVision ", "streamnumber", *d)
    assert first.exit_code == 0, first.output
    assert "hikvision: - -> streamnumber" in first.output
    again = run("set", "hikvision", "streamprofile", *d)
    assert again.exit_code == 0 and "hikvision: streamnumber -> streamprofile" in again.output
    listed = run("list", "--json", *d)
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert listed.exit_code == 0 and [(r["key"], r["dialect"], r["set_by"]) for r in rows] == [("hikvision", "streamprofile", "cli")]
    gone = run("delete", "HIKVISION", *d)
    assert gone.exit_code == 0 and "hikvision: streamprofile -> -" in gone.output
    engine = open_store(f"sqlite:///{tmp_path / 'camgrid.db'}")
    assert store.manufacturer_dialects(engine) == []
    trail = [(a["actor"], a["target"], a["detail"]) for a in list_audit(engine, action="vqd.manufacturer_dialect")]
    assert sorted(trail, key=lambda t: json.dumps(t[2], sort_keys=True)) == sorted([
        ("cli", "hikvision", {"before": {"dialect": None}, "after": {"dialect": "streamnumber"}}),
        ("cli", "hikvision", {"before": {"dialect": "streamnumber"}, "after": {"dialect": "streamprofile"}}),
        ("cli", "hikvision", {"before": {"dialect": "streamprofile"}, "after": {"dialect": None}}),
    ], key=lambda t: json.dumps(t[2], sort_keys=True))


def test_refusals_change_nothing(tmp_path):
    d = ["--data-dir", str(tmp_path)]
    assert run("set", "dahua", "rtsp", *d).exit_code == 2  # not a selector
    assert run("set", "   ", "all", *d).exit_code == 2  # no key
    assert run("set", "x" * 65, "all", *d).exit_code == 2  # longer than the API allows
    missing = run("delete", "dahua", *d)
    assert missing.exit_code == 1 and "no operator's selector" in missing.output
    empty = run("list", *d)
    assert empty.exit_code == 0 and "no operator's selectors" in empty.output
    engine = open_store(f"sqlite:///{tmp_path / 'camgrid.db'}")
    assert list_audit(engine, action="vqd.manufacturer_dialect") == []
