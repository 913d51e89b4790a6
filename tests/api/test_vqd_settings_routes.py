"""The patrol's settings API: a viewer reads the settings in effect and each device's learned state
(sub-stream refused since, retry due, the selector that worked, the last PTZ check); only roles
with vqd:manage set a device's selector and PTZ check or forget a refusal; every write is audited
with what it changed (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from api_helpers import channel_row, dev_id, device_row, seed
from sqlalchemy import select

from camgrid.config import Settings
from camgrid.ops.vqd import patrol_store as store
from camgrid.store.engine import utcnow
from camgrid.store.tables import audit_log, vqd_devices

HIK, DAHUA, PLAIN = dev_id(1), dev_id(2), dev_id(3)


@pytest.fixture
def vapi(make_api, users, engine):
    settings = Settings()
    settings.vqd.substream.manufacturers = {"hikvision": "streamprofile"}
    settings.vqd.substream.devices = {DAHUA: "stream"}
    settings.vqd.substream.retry_after_s = 3600
    settings.vqd.ptz_check.channels = ["*0000001"]
    a = make_api(settings=settings)
    a.tokens = users
    seed(engine, [device_row(1, manufacturer="Hikvision"), device_row(2, name="gate Dahua", manufacturer="Dahua"),
                  device_row(3)],
         [channel_row(HIK, f"3402000001131{n:07d}", ptz_type=t) for n, t in ((1, 1), (2, 2), (3, 3))])
    return a


def audit_rows(engine, action):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(audit_log).where(audit_log.c.action == action)
                                              .order_by(audit_log.c.id)).mappings()]


def put(api, device, role, body):
    return api.client.put(f"/api/v1/devices/{device}/vqd/settings", headers=api.h(role), json=body)


def test_a_viewer_reads_the_settings_in_effect_and_where_each_comes_from(vapi):
    settings = vapi.get("/api/v1/vqd/settings", "viewer")
    assert settings.status_code == 200, settings.text
    body = settings.json()
    assert body["substream"]["manufacturers"] == {"hikvision": "streamprofile"}
    assert body["substream"]["retry_after_s"] == 3600 and body["ptz_check"]["operator_quiet_s"] == 300
    assert set(body["dialects"]) == {"none", "streamnumber", "streamprofile", "stream", "streammode", "all"}
    listed = vapi.get("/api/v1/vqd/devices", "viewer").json()
    by_id = {d["device_id"]: d for d in listed["items"]}
    assert [d["device_id"] for d in listed["items"]] == [HIK, DAHUA, PLAIN] and listed["next_cursor"] is None
    assert (by_id[HIK]["dialect"], by_id[HIK]["dialect_source"]) == ("streamprofile", "manufacturer")
    assert (by_id[DAHUA]["dialect"], by_id[DAHUA]["dialect_source"]) == ("stream", "device")
    assert (by_id[PLAIN]["dialect"], by_id[PLAIN]["dialect_source"]) == ("all", "default")
    # three channels, two of them PTZ (dome, half-dome); the configuration opts in the first one
    assert by_id[HIK]["ptz"]["channels"] == 2
    assert by_id[HIK]["ptz"]["configured"] == by_id[HIK]["ptz"]["checked"] == ["34020000011310000001"]
    assert by_id[HIK]["substream"]["refused_at"] is None and by_id[HIK]["override"]["dialect"] is None
    # filter and pages
    assert [d["device_id"] for d in vapi.get("/api/v1/vqd/devices?q=dahua", "viewer").json()["items"]] == [DAHUA]
    first = vapi.get("/api/v1/vqd/devices?limit=2", "viewer").json()
    rest = vapi.get(f"/api/v1/vqd/devices?limit=2&cursor={first['next_cursor']}", "viewer").json()
    assert [d["device_id"] for d in first["items"] + rest["items"]] == [HIK, DAHUA, PLAIN]
    assert vapi.get("/api/v1/vqd/devices?only=overridden", "viewer").json()["items"] == []
    assert vapi.get(f"/api/v1/devices/{PLAIN}/vqd", "viewer").json()["device_id"] == PLAIN
    assert vapi.get("/api/v1/devices/34020000001329999999/vqd", "viewer").status_code == 404
    assert vapi.client.get("/api/v1/vqd/devices").status_code == 401


def test_only_vqd_managers_set_a_device_and_every_change_is_audited(vapi, engine):
    refused = put(vapi, HIK, "viewer", {"dialect": "none"})
    assert refused.status_code == 403 and "vqd:manage" in refused.json()["error"]["message"]
    assert audit_rows(engine, "vqd.device_settings") == []
    bad = put(vapi, HIK, "operator", {"dialect": "rtsp"})
    assert bad.status_code == 422
    unknown = put(vapi, HIK, "operator", {"dialect": "none", "volume": 3})
    assert unknown.status_code == 422
    assert put(vapi, "34020000001329999999", "operator", {"dialect": "none"}).status_code == 404

    done = put(vapi, HIK, "operator", {"dialect": "streamnumber", "ptz_check": True})
    assert done.status_code == 200, done.text
    item = done.json()
    assert (item["dialect"], item["dialect_source"]) == ("streamnumber", "override")
    assert item["override"]["by"] == "operator1" and item["override"]["ptz_check"] is True
    assert item["ptz"]["checked"] == ["34020000011310000001", "34020000011310000002"]  # every PTZ channel now
    # persisted: read again by a viewer, and the filter finds it
    again = vapi.get(f"/api/v1/devices/{HIK}/vqd", "viewer").json()
    assert again["dialect"] == "streamnumber" and again["override"]["ptz_check"] is True
    assert [d["device_id"] for d in vapi.get("/api/v1/vqd/devices?only=overridden", "viewer").json()["items"]] == [HIK]

    off = put(vapi, HIK, "admin", {"dialect": None, "ptz_check": False})
    assert off.status_code == 200 and off.json()["dialect_source"] == "manufacturer" and off.json()["ptz"]["checked"] == []
    rows = audit_rows(engine, "vqd.device_settings")
    assert [(r["actor"], r["target"]) for r in rows] == [("operator1", HIK), ("admin1", HIK)]
    assert rows[0]["detail"] == {"before": {"dialect": None, "ptz_check": None},
                                 "after": {"dialect": "streamnumber", "ptz_check": True}}
    assert rows[1]["detail"]["before"] == {"dialect": "streamnumber", "ptz_check": True}


def test_forgetting_a_refusal_lets_the_next_round_try_again(vapi, engine):
    at = utcnow() - timedelta(seconds=60)
    store.set_substream_refused(engine, HIK, at, "streamprofile", "488 Not Acceptable Here")
    store.set_ptz_result(engine, HIK, at, {"channel_id": "34020000011310000001", "checked": True, "moved": False,
                                           "unresponsive": True})
    item = vapi.get(f"/api/v1/devices/{HIK}/vqd", "viewer").json()
    sub = item["substream"]
    assert sub["main_only"] is True and sub["refused_dialect"] == "streamprofile" and "488" in sub["reason"]
    assert sub["retry_due_at"].startswith((at + timedelta(seconds=3600)).isoformat()[:19])
    assert item["ptz"]["last"]["unresponsive"] is True and item["ptz"]["last_at"] is not None
    assert [d["device_id"] for d in vapi.get("/api/v1/vqd/devices?only=refused", "viewer").json()["items"]] == [HIK]
    # a refusal with one selector does not hold another back
    assert put(vapi, HIK, "operator", {"dialect": "stream"}).json()["substream"]["main_only"] is False
    assert put(vapi, HIK, "operator", {}).json()["substream"]["main_only"] is True

    assert vapi.post(f"/api/v1/devices/{HIK}/vqd/substream/retry", "viewer").status_code == 403
    done = vapi.post(f"/api/v1/devices/{HIK}/vqd/substream/retry", "operator")
    assert done.status_code == 200, done.text
    assert done.json()["substream"]["refused_at"] is None and done.json()["substream"]["main_only"] is False
    with engine.connect() as conn:
        row = conn.execute(select(vqd_devices).where(vqd_devices.c.device_id == HIK)).mappings().one()
    assert row["substream_refused_at"] is None and row["ptz_result"]["unresponsive"] is True  # the rest is kept
    audited = audit_rows(engine, "vqd.substream_retry")
    assert len(audited) == 1 and audited[0]["actor"] == "operator1" and audited[0]["target"] == HIK
    assert audited[0]["detail"]["refused_dialect"] == "streamprofile" and audited[0]["detail"]["refused_at"]
