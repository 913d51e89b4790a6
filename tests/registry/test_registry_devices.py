"""Secrets and the device write side, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from camgrid.gb28181.sip.digest import ha1
from camgrid.registry.devices import (
    DeviceAuth,
    DeviceExists,
    DeviceNotFound,
    RegistryError,
    add_device,
    add_pending_device,
    approve_device,
    delete_device,
    get_device,
    get_device_auth,
    list_devices,
    load_device_auth,
    record_registration,
    set_device_secret,
    update_device_info,
)
from camgrid.registry.secrets import WeakSecretError, check_secret_strength, generate_secret, ha1_md5, ha1_sha256
from camgrid.store.engine import utcnow
from camgrid.store.tables import channels, devices

REALM = "3402000000"
DEV = "34020000001320000001"
SECRET = "k9#Lm2!pQr"


def test_ha1_matches_the_digest_module():
    assert ha1_md5(DEV, REALM, SECRET) == hashlib.md5(f"{DEV}:{REALM}:{SECRET}".encode()).hexdigest()
    assert ha1_md5(DEV, REALM, SECRET) == ha1(DEV, REALM, SECRET, "MD5")
    assert ha1_sha256(DEV, REALM, SECRET) == ha1(DEV, REALM, SECRET, "SHA-256")
    assert len(ha1_sha256(DEV, REALM, SECRET)) == 64


@pytest.mark.parametrize("weak", ["", "1234567", "12345678", "admin123", "ADMIN123", "password", "88888888",
                                  "00000000", "11111111", "aaaaaaaaaa"])
def test_weak_secrets_are_refused(weak):
    with pytest.raises(WeakSecretError) as err:
        check_secret_strength(weak)
    assert isinstance(err.value, ValueError) and str(err.value)


def test_generated_secrets_are_strong_and_unique():
    made = {generate_secret() for _ in range(100)}
    assert len(made) == 100
    for s in made:
        assert len(s) >= 16
        check_secret_strength(s)


def test_add_device_stores_only_ha1(engine):
    add_device(engine, DEV, SECRET, REALM, name="Gate 1", extra={"note": "x"})
    with engine.connect() as c:
        row = c.execute(sa.select(devices).where(devices.c.id == DEV)).mappings().one()
    assert SECRET not in {str(v) for v in row.values()}
    assert row["ha1_md5"] == ha1_md5(DEV, REALM, SECRET)
    assert row["ha1_sha256"] == ha1_sha256(DEV, REALM, SECRET)
    assert (row["realm"], row["approval"], row["status"], row["name"]) == (REALM, "approved", "offline", "Gate 1")
    dev = get_device(engine, DEV)
    assert "ha1_md5" not in dev and "ha1_sha256" not in dev
    assert dev["extra"] == {"note": "x"} and dev["created_at"].tzinfo is not None


@pytest.mark.parametrize("bad", ["", "3402000000132000000", "340200000013200000011", "3402000000132000000a",
                                 "３４０２００００００１３２０００００１"])
def test_add_device_refuses_bad_ids(engine, bad):
    with pytest.raises(RegistryError, match="device ID|20 digits"):
        add_device(engine, bad, SECRET, REALM)


def test_add_device_refuses_weak_secret_and_duplicates(engine):
    with pytest.raises(WeakSecretError):
        add_device(engine, DEV, "12345678", REALM)
    add_device(engine, DEV, SECRET, REALM)
    with pytest.raises(DeviceExists, match="already"):
        add_device(engine, DEV, "another-good-one", REALM)
    assert isinstance(DeviceExists("x"), RegistryError) and isinstance(DeviceExists("x"), ValueError)


def test_auth_lookups_secret_change_and_approval(engine):
    add_device(engine, DEV, SECRET, REALM)
    assert add_pending_device(engine, "34020000001320000002", "10.0.0.2:5060") is True
    assert add_pending_device(engine, "34020000001320000002", "10.0.0.3:5060") is False  # idempotent
    assert add_pending_device(engine, DEV, "10.0.0.9:5060") is False  # an approved device stays approved
    auth = load_device_auth(engine)
    assert auth[DEV] == DeviceAuth(DEV, ha1_md5(DEV, REALM, SECRET), ha1_sha256(DEV, REALM, SECRET), REALM, "approved")
    pending = auth["34020000001320000002"]
    assert pending.approval == "pending" and pending.ha1_md5 is None
    assert get_device(engine, "34020000001320000002")["remote_addr"] == "10.0.0.2:5060"
    set_device_secret(engine, DEV, "new-Secret-77", REALM)
    assert get_device_auth(engine, DEV).ha1_md5 == ha1_md5(DEV, REALM, "new-Secret-77")
    approve_device(engine, "34020000001320000002")
    assert get_device_auth(engine, "34020000001320000002").approval == "approved"
    assert get_device_auth(engine, "34020000001320000099") is None
    with pytest.raises(DeviceNotFound):
        set_device_secret(engine, "34020000001320000099", SECRET, REALM)
    with pytest.raises(DeviceNotFound):
        approve_device(engine, "34020000001320000099")
    with pytest.raises(WeakSecretError):
        set_device_secret(engine, DEV, "password", REALM)


def test_registration_and_device_info(engine):
    add_device(engine, DEV, SECRET, REALM)
    expires = utcnow() + timedelta(hours=1)
    assert record_registration(engine, DEV, transport="tcp", remote_addr="10.1.1.1:5060",
                               contact="<sip:34020000001320000001@10.1.1.1:5060>", gb_version="3.0",
                               expires_at=expires, keepalive_interval_s=30)
    assert update_device_info(engine, DEV, manufacturer="Acme", model="X1", firmware="1.2", channel_count=4)
    assert update_device_info(engine, DEV, name=None, model="X2")  # None leaves a field alone
    dev = get_device(engine, DEV)
    assert (dev["transport"], dev["remote_addr"], dev["gb_version"], dev["keepalive_interval_s"]) == ("tcp", "10.1.1.1:5060", "3.0", 30)
    assert abs(dev["register_expires_at"] - expires) < timedelta(seconds=1)
    assert dev["registered_at"].tzinfo is not None and dev["registered_at"] <= datetime.now(UTC)
    assert (dev["manufacturer"], dev["model"], dev["firmware"], dev["channel_count"]) == ("Acme", "X2", "1.2", 4)
    assert record_registration(engine, "34020000001320000099", transport="udp", remote_addr="", contact="",
                               gb_version="2.0", expires_at=expires) is False
    assert update_device_info(engine, "34020000001320000099", name="x") is False
    assert [d["id"] for d in list_devices(engine)] == [DEV]


def test_delete_device_cascades_to_channels(engine):
    add_device(engine, DEV, SECRET, REALM)
    now = utcnow()
    with engine.begin() as c:
        c.execute(channels.insert(), [{"id": f"3402000000131000000{i}", "device_id": DEV, "updated_at": now} for i in range(3)])
    delete_device(engine, DEV)
    assert get_device(engine, DEV) is None
    with engine.connect() as c:
        assert c.execute(sa.select(sa.func.count()).select_from(channels)).scalar_one() == 0
    with pytest.raises(DeviceNotFound):
        delete_device(engine, DEV)
