"""`camgrid admin ...` through Typer's CliRunner, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from camgrid.governance.cli import admin_app
from camgrid.governance.users import authenticate
from camgrid.store.engine import open_store

runner = CliRunner()


@pytest.fixture
def cli(tmp_path, db_url):
    def run(*args, input=None):
        return runner.invoke(admin_app, [*args, "--data-dir", str(tmp_path / "data"), "--database-url", db_url],
                             input=input)
    run.db_url = db_url
    return run


def test_create_list_disable(cli):
    ok = cli("create-user", "--username", "Ops", "--role", "operator", "--password-stdin", input="Correct-Horse-42\n")
    assert ok.exit_code == 0, ok.output
    assert "created user ops" in ok.output
    dup = cli("create-user", "--username", "ops", "--role", "viewer", "--password-stdin", input="Correct-Horse-42\n")
    assert dup.exit_code == 1 and "already exists" in dup.output
    weak = cli("create-user", "--username", "viewer2", "--role", "viewer", "--password-stdin", input="short\n")
    assert weak.exit_code == 1 and "weak password" in weak.output
    bad_role = cli("create-user", "--username", "root", "--role", "god", "--password-stdin", input="Correct-Horse-42\n")
    assert bad_role.exit_code == 2
    no_stdin = cli("create-user", "--username", "x1x", "--role", "viewer")
    assert no_stdin.exit_code == 2 and "--password-stdin" in no_stdin.output
    listed = cli("list-users")
    assert listed.exit_code == 0 and "ops" in listed.output and "operator" in listed.output
    assert cli("disable-user", "--username", "ops").exit_code == 0
    engine = open_store(cli.db_url)
    try:
        assert authenticate(engine, "ops", "Correct-Horse-42") is None
        assert "disabled" in cli("list-users").output
        assert cli("enable-user", "--username", "ops").exit_code == 0
        assert authenticate(engine, "ops", "Correct-Horse-42") is not None
    finally:
        engine.dispose()
    missing = cli("disable-user", "--username", "ghost")
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_default_sqlite_in_data_dir(tmp_path):
    data = tmp_path / "d"
    result = runner.invoke(admin_app, ["create-user", "--data-dir", str(data), "--username", "admin2", "--role", "admin",
                                       "--password-stdin"], input="Correct-Horse-42\n")
    assert result.exit_code == 0, result.output
    assert (data / "camgrid.db").exists()
