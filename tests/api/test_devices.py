"""Devices through the API: CRUD, approval, filters, paging, commands and their audit rows."""

from __future__ import annotations

import pytest
from api_helpers import FakeCommands, FakeHealth, dev_id, device_row, seed
from sqlalchemy import select

from camgrid.api.errors import CommandError
from camgrid.registry.devices import add_pending_device, get_device_auth
from camgrid.store.tables import audit_log

DEV = "34020000001320000001"


def _audit(engine, action):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(audit_log).where(audit_log.c.action == action)).mappings()]


def test_device_crud(api, engine):
    created = api.post("/api/v1/devices", json={"id": DEV, "password": "Dev-Secret-991", "name": "Gate"})
    assert created.status_code == 201, created.text
    item = created.json()
    assert item["id"] == DEV and item["name"] == "Gate" and item["status"] == "offline"
    assert item["approval"] == "approved" and item["channel_count"] == 0
    assert "ha1_md5" not in item and "ha1_sha256" not in item
    assert get_device_auth(engine, DEV).realm == api.ctx.settings.sip.realm
    dup = api.post("/api/v1/devices", json={"id": DEV, "password": "Dev-Secret-991"})
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "conflict"
    weak = api.post("/api/v1/devices", json={"id": "34020000001320000002", "password": "12345678"})
    assert weak.status_code == 422
    bad_id = api.post("/api/v1/devices", json={"id": "1234", "password": "Dev-Secret-991"})
    assert bad_id.status_code == 422 and "id" in bad_id.json()["error"]["message"]
    got = api.get(f"/api/v1/devices/{DEV}", "viewer")
    assert got.status_code == 200 and got.json()["name"] == "Gate"
    views = _audit(engine, "device.view")
    assert views[0]["actor"] == "viewer1" and views[0]["target"] == DEV and views[0]["source_addr"]
    assert api.client.delete(f"/api/v1/devices/{DEV}", headers=api.h("viewer")).status_code == 403
    assert api.client.delete(f"/api/v1/devices/{DEV}", headers=api.h("admin")).status_code == 204
    assert api.get(f"/api/v1/devices/{DEV}").status_code == 404
    assert api.client.delete(f"/api/v1/devices/{DEV}", headers=api.h("admin")).status_code == 404
    assert {r["action"] for r in _audit(engine, "device.create") + _audit(engine, "device.delete")} == {
        "device.create", "device.delete"}


def test_approve_pending_device(api, engine):
    add_pending_device(engine, DEV, "10.0.0.9:5060")
    pending = api.get("/api/v1/devices", params={"approval": "pending"}).json()["items"]
    assert [d["id"] for d in pending] == [DEV] and pending[0]["remote_addr"] == "10.0.0.9:5060"
    assert api.post(f"/api/v1/devices/{DEV}/approve", "operator").status_code == 403
    approved = api.post(f"/api/v1/devices/{DEV}/approve")
    assert approved.status_code == 200 and approved.json()["approval"] == "approved"
    assert api.post("/api/v1/devices/34020000001320000099/approve").status_code == 404
    assert _audit(engine, "device.approve")[0]["target"] == DEV


def test_list_filters_and_paging(api, engine):
    rows = [device_row(i, status="online" if i % 3 == 0 else "offline") for i in range(25)]
    seed(engine, rows, [])
    seen, cursor = [], None
    while True:
        page = api.get("/api/v1/devices", "viewer", params={"limit": 7, **({"cursor": cursor} if cursor else {})}).json()
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(dev_id(i) for i in range(25))
    online = api.get("/api/v1/devices", params={"status": "online", "limit": 100}).json()["items"]
    assert {d["id"] for d in online} == {dev_id(i) for i in range(0, 25, 3)}
    found = api.get("/api/v1/devices", params={"q": "device 1"}).json()["items"]
    assert {d["name"] for d in found} == {"device 1", *{f"device {i}" for i in range(10, 20)}}
    first = api.get("/api/v1/devices", params={"limit": 1}).json()["items"][0]
    for key in ("id", "name", "status", "approval", "manufacturer", "model", "remote_addr", "last_seen_at",
                "channel_count"):
        assert key in first


def test_status_comes_from_the_health_view(make_api, users, engine):
    seed(engine, [device_row(i, status="offline") for i in range(10)], [])
    api = make_api(health=FakeHealth({dev_id(2), dev_id(7)}))
    api.tokens = users
    page = api.get("/api/v1/devices", params={"status": "online", "limit": 1}).json()
    assert [d["id"] for d in page["items"]] == [dev_id(2)] and page["next_cursor"]
    nxt = api.get("/api/v1/devices", params={"status": "online", "limit": 1, "cursor": page["next_cursor"]}).json()
    assert [d["id"] for d in nxt["items"]] == [dev_id(7)]
    assert api.get(f"/api/v1/devices/{dev_id(2)}").json()["status"] == "online"


def test_commands_are_sent_and_audited(api, engine):
    commands: FakeCommands = api.ctx.commands
    ok = api.post(f"/api/v1/devices/{DEV}/catalog", "operator")
    assert ok.status_code == 200 and ok.json() == {"ok": True, "result": {"device_id": DEV, "items": 3}}
    assert api.post(f"/api/v1/devices/{DEV}/reboot", "operator").status_code == 200
    assert api.post(f"/api/v1/devices/{DEV}/reboot", "viewer").status_code == 403
    assert commands.calls == [("catalog", DEV), ("reboot", DEV)]
    rows = _audit(engine, "command.reboot")
    assert len(rows) == 1 and rows[0]["actor"] == "operator1" and rows[0]["detail"]["ok"] is True


@pytest.mark.parametrize(("status", "code"), [(409, "device_unavailable"), (404, "device_unknown"),
                                              (504, "device_timeout")])
def test_command_errors_map_to_json(api, engine, status, code):
    api.ctx.commands.fail[DEV] = CommandError(status, f"device {DEV} says no ({status})")
    resp = api.post(f"/api/v1/devices/{DEV}/reboot", "operator")
    assert resp.status_code == status
    assert resp.json() == {"error": {"code": code, "message": f"device {DEV} says no ({status})"}}
    row = _audit(engine, "command.reboot")[0]
    assert row["detail"]["ok"] is False and row["detail"]["status"] == status


def test_commands_unavailable_without_signaling(make_api, users):
    api = make_api(commands=None)
    api.tokens = users
    resp = api.post(f"/api/v1/devices/{DEV}/catalog")
    assert resp.status_code == 503 and "signaling" in resp.json()["error"]["message"]
