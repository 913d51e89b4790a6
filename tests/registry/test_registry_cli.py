"""`camgrid device ...` through Typer's CliRunner, against SQLite in a temp data dir and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from camgrid.registry.cli import device_app
from camgrid.registry.devices import add_pending_device, get_device, get_device_auth
from camgrid.store.engine import open_store

DEV = "34020000001320000001"
runner = CliRunner()


@pytest.fixture
def cli(tmp_path, db_url):
    """Runs a device command with --data-dir and --database-url; returns the result."""
    def run(*args, input=None):
        return runner.invoke(device_app, [*args, "--data-dir", str(tmp_path / "data"), "--database-url", db_url],
                             input=input)
    run.db_url = db_url
    return run


def test_add_list_and_errors(cli):
    ok = cli("add", "--id", DEV, "--password-stdin", "--name", "Gate 1", input="cli-Secret-1\n")
    assert ok.exit_code == 0, ok.output
    assert "added device" in ok.output
    dup = cli("add", "--id", DEV, "--password-stdin", input="cli-Secret-1\n")
    assert dup.exit_code == 1 and "already in the registry" in dup.output
    bad = cli("add", "--id", "1234", "--password-stdin", input="cli-Secret-1\n")
    assert bad.exit_code == 1 and "20" in bad.output
    weak = cli("add", "--id", "34020000001320000002", "--password-stdin", input="12345678\n")
    assert weak.exit_code == 1 and "default" in weak.output
    no_stdin = cli("add", "--id", "34020000001320000002")
    assert no_stdin.exit_code == 2 and "--password-stdin" in no_stdin.output
    listed = cli("list")
    assert listed.exit_code == 0 and DEV in listed.output and "Gate 1" in listed.output
    as_json = json.loads(cli("list", "--json").output)
    assert [d["id"] for d in as_json] == [DEV] and "ha1_md5" not in as_json[0]


def test_import_export_and_exit_codes(cli, tmp_path):
    good = tmp_path / "good.csv"
    good.write_text(f"id,password,name\n{DEV},cli-Secret-1,Gate 1\n", encoding="utf-8")
    result = cli("import", str(good))
    assert result.exit_code == 0, result.output
    assert "accepted 1" in result.output
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(f"id,password,name\n34020000001320000002,cli-Secret-2,ok\nbad-id,cli-Secret-3,no\n", encoding="utf-8")
    result = cli("import", str(mixed))
    assert result.exit_code == 1 and "line 3" in result.output and "bad-id" in result.output
    engine = open_store(cli.db_url)
    try:
        assert get_device(engine, "34020000001320000002")["name"] == "ok"  # the good row landed
    finally:
        engine.dispose()
    missing = cli("import", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 1 and "does not exist" in missing.output
    noid = tmp_path / "noid.csv"
    noid.write_text("name\nx\n", encoding="utf-8")
    assert cli("import", str(noid)).exit_code == 1
    out = tmp_path / "out.xlsx"
    result = cli("export", str(out))
    assert result.exit_code == 0 and "exported 2 device(s)" in result.output and out.exists()


def test_approve(cli):
    engine = open_store(cli.db_url)
    try:
        add_pending_device(engine, DEV, "10.0.0.1:5060")
        result = cli("approve", "--id", DEV)
        assert result.exit_code == 0 and "approved" in result.output and "no secret" in result.output
        result = cli("approve", "--id", DEV, "--password-stdin", input="cli-Secret-1\n")
        assert result.exit_code == 0 and "no secret" not in result.output
        auth = get_device_auth(engine, DEV)
        assert auth.approval == "approved" and auth.ha1_md5
        missing = cli("approve", "--id", "34020000001320000099")
        assert missing.exit_code == 1 and "not in the registry" in missing.output
    finally:
        engine.dispose()


def test_default_database_is_sqlite_in_the_data_dir(tmp_path):
    data = tmp_path / "data"
    result = runner.invoke(device_app, ["add", "--data-dir", str(data), "--id", DEV, "--password-stdin"],
                           input="cli-Secret-1\n")
    assert result.exit_code == 0, result.output
    assert (data / "camgrid.db").exists()
    assert DEV in runner.invoke(device_app, ["list", "--data-dir", str(data)]).output
