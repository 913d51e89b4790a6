"""`camgrid doctor` (camgrid/doctor.py): each check against a real data dir, SQLite store,
sockets and disk; read-only; exit 1 only when something will not work."""

from __future__ import annotations

import json
import os
import socket
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import insert, update
from typer.testing import CliRunner

from camgrid.cli import app
from camgrid.config import load_settings
from camgrid.doctor import FAIL, OK, WARN, _receive_buffers, run_checks
from camgrid.governance.users import create_user
from camgrid.registry.devices import add_device
from camgrid.store.engine import alembic_config, make_engine, open_store
from camgrid.store.tables import devices, users

ADMIN_PASSWORD = "a-long-admin-password-42"


def settings_for(data_dir, **overrides):  # noqa: ANN001, ANN003, ANN201
    base = {"sip": {"port": 0}, "http": {"port": 0}}
    for section, values in overrides.items():
        base.setdefault(section, {}).update(values)
    return load_settings(data_dir=data_dir, overrides=base)


def by_check(findings):  # noqa: ANN001, ANN201
    return {f.check: f for f in findings}


def test_a_fresh_data_dir_is_only_a_warning_and_stays_untouched(tmp_path):
    data = tmp_path / "data"
    found = by_check(run_checks(settings_for(data)))
    assert found["database"].status == WARN and "creates it on its first start" in found["database"].message
    assert "schema" not in found and found["ports"].status == OK
    assert not data.exists()  # read-only: nothing created
    elsewhere = tmp_path / "db" / "camgrid.db"
    found = by_check(run_checks(settings_for(data, store={"database_url": f"sqlite:///{elsewhere}"})))
    assert found["database"].status == WARN and str(elsewhere) in found["database"].message
    assert not elsewhere.parent.exists()


def test_a_working_store_with_things_to_look_at(tmp_path):
    s = settings_for(tmp_path)
    engine = open_store(s.database_url)
    try:
        create_user(engine, "boss", ADMIN_PASSWORD, "admin")
        add_device(engine, "34020000001320000001", "cam-secret-0001", s.sip.realm)
        with engine.begin() as conn:
            now = datetime.now(UTC)
            conn.execute(insert(devices), [{"id": "34020000001320000002", "approval": "pending", "created_at": now,
                                            "updated_at": now},
                                           {"id": "34020000001320000003", "approval": "approved", "created_at": now,
                                            "updated_at": now}])
        found = by_check(run_checks(s))
        assert [found[c].status for c in ("database", "schema", "administrators", "devices")] == [OK] * 4
        assert "3 device(s)" in found["devices"].message
        assert found["pending_devices"].status == WARN and found["pending_devices"].message.startswith("1 device(s)")
        assert found["device_secrets"].status == WARN and found["device_secrets"].message.startswith("1 approved")
        with engine.begin() as conn:
            conn.execute(update(users).values(disabled=True))
        assert by_check(run_checks(s))["administrators"].status == WARN
    finally:
        engine.dispose()


def test_a_schema_behind_or_from_a_newer_version(tmp_path):
    s = settings_for(tmp_path)
    engine = make_engine(s.database_url)
    try:
        cfg = alembic_config(s.database_url)
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0016")
        found = by_check(run_checks(s))
        assert found["schema"].status == WARN and "behind" in found["schema"].message
        assert "administrators" not in found  # the tables are not read on an old schema
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_from_the_future'")
        assert by_check(run_checks(s))["schema"].status == FAIL
    finally:
        engine.dispose()


def test_busy_ports_and_a_loopback_sip_address(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        port = udp.getsockname()[1]
        found = by_check(run_checks(settings_for(tmp_path, sip={"host": "127.0.0.1", "port": port,
                                                                 "transports": ["udp"]})))
    assert found["ports"].status == WARN and f"UDP 127.0.0.1:{port}" in found["ports"].message
    assert found["sip_address"].status == WARN and "cannot register" in found["sip_address"].message
    found = by_check(run_checks(settings_for(tmp_path, sip={"host": "0.0.0.0"}, media={"advertised_host": "203.0.113.7"})))
    assert found["sip_address"].status == OK and "203.0.113.7" in found["sip_address"].message


def test_recordings_disk_under_the_low_water_or_not_writable(tmp_path):
    found = by_check(run_checks(settings_for(tmp_path, retention={"min_free_bytes": 1 << 60, "target_free_bytes": 1 << 60})))
    assert found["recordings_disk"].status == WARN and "low water" in found["recordings_disk"].message
    locked = tmp_path / "recordings"
    locked.mkdir(mode=0o500)
    try:
        status = by_check(run_checks(settings_for(tmp_path)))["recordings_disk"].status
        assert status == (OK if os.geteuid() == 0 else FAIL)  # root writes anywhere
    finally:
        locked.chmod(0o700)


def test_udp_receive_buffers_capped_by_the_kernel(tmp_path):
    rmem = tmp_path / "rmem_max"
    rmem.write_text("212992\n")
    (found,) = _receive_buffers(settings_for(tmp_path), rmem)
    assert found.status == WARN and "212992" in found.message and "net.core.rmem_max=8388608" in found.message
    (found,) = _receive_buffers(settings_for(tmp_path, media={"single_port": 30000}), rmem)
    assert "net.core.rmem_max=16777216" in found.message  # one socket takes every stream
    rmem.write_text("16777216\n")
    (found,) = _receive_buffers(settings_for(tmp_path, media={"single_port": 30000}), rmem)
    assert found.status == OK
    assert _receive_buffers(settings_for(tmp_path), tmp_path / "absent") == []


def test_the_command_exits_1_on_a_failure_and_prints_json(tmp_path):
    runner = CliRunner()
    dead = "postgresql+psycopg://postgres@127.0.0.1:1/test"
    result = runner.invoke(app, ["doctor", "--data-dir", str(tmp_path), "--database-url", dead, "--json"])
    assert result.exit_code == 1
    findings = json.loads(result.stdout)
    assert {"check": "database", "status": "fail"}.items() <= next(f for f in findings if f["check"] == "database").items()
    result = runner.invoke(app, ["doctor", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0 and "WARN  database" in result.stdout


@pytest.fixture(autouse=True)
def _no_camgrid_env(monkeypatch):
    for name in [n for n in os.environ if n.startswith("CAMGRID__")]:
        monkeypatch.delenv(name)
