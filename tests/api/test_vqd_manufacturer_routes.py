"""An operator's sub-stream selector per manufacturer through the API: a viewer reads the entries
beside the configuration's; only vqd:manage sets or removes one; the entry beats the
configuration's for the same key and is said to ("manufacturer_operator"), a device's own
selector still beats it; every change is audited with before and after (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from api_helpers import dev_id, device_row, seed
from sqlalchemy import select

from camgrid.config import Settings
from camgrid.store.tables import audit_log, vqd_manufacturer_dialects

HIK, DAHUA, UNIVIEW = dev_id(1), dev_id(2), dev_id(3)
PATH = "/api/v1/vqd/substream/manufacturers"


@pytest.fixture
def mapi(make_api, users, engine):
    settings = Settings()
    settings.vqd.substream.manufacturers = {"Hikvision": "streamprofile"}
    settings.vqd.substream.devices = {DAHUA: "stream"}
    a = make_api(settings=settings)
    a.tokens = users
    seed(engine, [device_row(1, manufacturer="HIKVISION Digital"), device_row(2, manufacturer="Dahua"),
                  device_row(3, manufacturer="Uniview")], [])
    return a


def selectors(api) -> dict[str, tuple[str, str]]:
    items = api.get("/api/v1/vqd/devices", "viewer").json()["items"]
    return {d["device_id"]: (d["dialect"], d["dialect_source"]) for d in items}


def audited(engine):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(audit_log).where(audit_log.c.action == "vqd.manufacturer_dialect")
                                              .order_by(audit_log.c.id)).mappings()]


def test_an_operators_manufacturer_entry_beats_the_configurations_and_is_audited(mapi, engine):
    assert selectors(mapi) == {HIK: ("streamprofile", "manufacturer"), DAHUA: ("stream", "device"),
                               UNIVIEW: ("all", "default")}
    for key, dialect in (("hikvision", "streamnumber"), ("Uniview", "streammode"), ("dahua", "none")):
        r = mapi.client.put(f"{PATH}/{key}", headers=mapi.h("operator"), json={"dialect": dialect})
        assert r.status_code == 200, r.text
    assert r.json()["key"] == "dahua" and r.json()["set_by"] == "operator1" and r.json()["config_dialect"] is None
    # same key as the configuration's (case ignored): the operator's is newer and wins, and says so;
    # a device's own configured selector still comes first
    assert selectors(mapi) == {HIK: ("streamnumber", "manufacturer_operator"), DAHUA: ("stream", "device"),
                               UNIVIEW: ("streammode", "manufacturer_operator")}
    changed = mapi.client.put(f"{PATH}/HikVision", headers=mapi.h("admin"), json={"dialect": "stream"})
    assert changed.json()["config_dialect"] == "streamprofile" and changed.json()["dialect"] == "stream"
    body = mapi.get("/api/v1/vqd/settings", "viewer").json()
    assert body["substream"]["manufacturers"] == {"Hikvision": "streamprofile"}  # the configuration, unchanged
    assert [(e["key"], e["dialect"], e["set_by"]) for e in body["operator_manufacturers"]] == [
        ("dahua", "none", "operator1"), ("hikvision", "stream", "admin1"), ("uniview", "streammode", "operator1")]
    assert body["operator_manufacturers"][0]["set_at"]

    assert mapi.client.delete(f"{PATH}/HIKVISION", headers=mapi.h("operator")).status_code == 204
    assert selectors(mapi)[HIK] == ("streamprofile", "manufacturer")  # the configuration's again
    with engine.connect() as conn:
        assert sorted(conn.execute(select(vqd_manufacturer_dialects.c.key)).scalars()) == ["dahua", "uniview"]
    rows = audited(engine)
    assert [(r["actor"], r["target"]) for r in rows] == [
        ("operator1", "hikvision"), ("operator1", "uniview"), ("operator1", "dahua"), ("admin1", "hikvision"),
        ("operator1", "hikvision")]
    assert rows[0]["detail"] == {"before": {"dialect": None}, "after": {"dialect": "streamnumber"}}
    assert rows[3]["detail"] == {"before": {"dialect": "streamnumber"}, "after": {"dialect": "stream"}}
    assert rows[4]["detail"] == {"before": {"dialect": "stream"}, "after": {"dialect": None}}


def test_only_vqd_managers_change_entries_and_wrong_requests_say_why(mapi, engine):
    refused = mapi.client.put(f"{PATH}/hikvision", headers=mapi.h("viewer"), json={"dialect": "stream"})
    assert refused.status_code == 403 and "vqd:manage" in refused.json()["error"]["message"]
    assert mapi.client.delete(f"{PATH}/hikvision", headers=mapi.h("viewer")).status_code == 403
    assert mapi.client.put(f"{PATH}/hikvision", json={"dialect": "stream"}).status_code == 401
    assert mapi.client.put(f"{PATH}/hikvision", headers=mapi.h("operator"), json={"dialect": "rtsp"}).status_code == 422
    assert mapi.client.put(f"{PATH}/hikvision", headers=mapi.h("operator"), json={}).status_code == 422
    assert mapi.client.put(f"{PATH}/hikvision", headers=mapi.h("operator"),
                           json={"dialect": "stream", "by": "x"}).status_code == 422
    blank = mapi.client.put(f"{PATH}/%20%20", headers=mapi.h("operator"), json={"dialect": "stream"})
    assert blank.status_code == 400 and "empty" in blank.json()["error"]["message"]
    long = mapi.client.put(f"{PATH}/{'x' * 65}", headers=mapi.h("operator"), json={"dialect": "stream"})
    assert long.status_code == 400 and "64" in long.json()["error"]["message"]
    missing = mapi.client.delete(f"{PATH}/uniview", headers=mapi.h("operator"))
    assert missing.status_code == 404 and "uniview" in missing.json()["error"]["message"]
    config_only = mapi.client.delete(f"{PATH}/hikvision", headers=mapi.h("operator"))
    assert config_only.status_code == 404 and "configuration" in config_only.json()["error"]["message"]
    assert audited(engine) == [] and mapi.get("/api/v1/vqd/settings", "viewer").json()["operator_manufacturers"] == []
