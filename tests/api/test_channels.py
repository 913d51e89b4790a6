"""Channels through the API: filters, effective status, keyset paging, one channel, PTZ."""

from __future__ import annotations

import pytest
from api_helpers import FakeHealth, chan_id, channel_row, dev_id, device_row, seed
from sqlalchemy import select

from camgrid.gb28181.ptz import PtzAction, PtzCommand, decode, encode
from camgrid.store.tables import audit_log


@pytest.fixture
def catalog(engine):
    """3 devices (0 and 1 online, 2 offline), 12 channels each with varied attributes."""
    devs = [device_row(d, status="offline" if d == 2 else "online") for d in range(3)]
    rows = []
    for d in range(3):
        for n in range(12):
            rows.append(channel_row(dev_id(d), chan_id(d, n, "132" if n % 4 == 0 else "131"),
                                    status="offline" if n == 5 else "online",
                                    civil_code="340201" if n < 6 else "350100",
                                    business_group_id="34020000002150000001" if n % 2 else None,
                                    point_class=1 if n % 3 else 2))
    seed(engine, devs, rows)
    return rows


def _all(api, **params):
    out, cursor = [], None
    while True:
        q = {**params, **({"cursor": cursor} if cursor else {})}
        resp = api.get("/api/v1/channels", "viewer", params=q)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        out += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return out


def test_paging_has_no_gaps_or_duplicates(api, catalog):
    items = _all(api, limit=5)
    assert [i["id"] for i in items] == sorted(r["id"] for r in catalog)
    one = items[0]
    for key in ("id", "device_id", "name", "status", "civil_code", "parent_id", "business_group_id",
                "point_class", "type_code", "longitude", "ptz_type"):
        assert key in one
    assert "pk" not in one


def test_filters(api, catalog):
    def ids(**params):
        return {i["id"] for i in _all(api, limit=1000, **params)}

    online = ids(status="online")
    assert online == {r["id"] for r in catalog if r["status"] == "online" and r["device_id"] != dev_id(2)}
    assert ids(status="offline") == {r["id"] for r in catalog} - online
    assert ids(type="132") == {r["id"] for r in catalog if r["type_code"] == "132"}
    assert ids(region="3402") == {r["id"] for r in catalog if r["civil_code"].startswith("3402")}
    assert ids(group="34020000002150000001") == {r["id"] for r in catalog if r["business_group_id"]}
    assert ids(parent=dev_id(1)) == ids(device_id=dev_id(1)) == {r["id"] for r in catalog if r["device_id"] == dev_id(1)}
    assert ids(**{"class": 2}) == {r["id"] for r in catalog if r["point_class"] == 2}
    assert ids(q=chan_id(0, 3)) == {chan_id(0, 3)}
    combined = ids(status="online", type="131", region="3502")
    assert combined == {r["id"] for r in catalog if r["status"] == "online" and r["device_id"] != dev_id(2)
                        and r["type_code"] == "131" and r["civil_code"].startswith("3502")}
    assert api.get("/api/v1/channels", params={"type": "13x"}).status_code == 422


def test_health_view_decides_device_online(make_api, users, catalog):
    api = make_api(health=FakeHealth({dev_id(0), dev_id(2)}))  # device 1 went offline, 2 came back
    api.tokens = users
    online = {i["id"] for i in _all(api, status="online", limit=4)}
    assert online == {r["id"] for r in catalog if r["status"] == "online" and r["device_id"] == dev_id(0)}


def test_get_one_is_audited(api, engine, catalog):
    cid = chan_id(1, 2)
    resp = api.get(f"/api/v1/channels/{cid}", "viewer")
    assert resp.status_code == 200 and resp.json()["device_id"] == dev_id(1) and resp.json()["status"] == "online"
    assert api.get("/api/v1/channels/34020000001310009999").status_code == 404
    with engine.connect() as conn:
        row = conn.execute(select(audit_log).where(audit_log.c.action == "channel.view")).mappings().one()
    assert row["actor"] == "viewer1" and row["target"] == cid and row["detail"] == {"device_id": dev_id(1)}


def test_ptz_by_action_and_by_hex(api, engine, catalog):
    cid = chan_id(0, 1)
    resp = api.post(f"/api/v1/channels/{cid}/ptz", "operator", json={"action": "left", "speed": 200})
    assert resp.status_code == 200, resp.text
    call = api.ctx.commands.calls[-1]
    assert call[:3] == ("ptz", dev_id(0), cid)
    cmd = decode(call[3])
    assert cmd.action is PtzAction.MOVE and cmd.pan == -1 and cmd.pan_speed == 200
    preset = api.post(f"/api/v1/channels/{cid}/ptz", "operator", json={"action": "preset_call", "preset": 7})
    assert preset.status_code == 200 and decode(api.ctx.commands.calls[-1][3]).preset == 7
    raw = encode(PtzCommand.stop())
    assert api.post(f"/api/v1/channels/{cid}/ptz", "operator", json={"ptz_hex": raw.lower()}).status_code == 200
    assert api.ctx.commands.calls[-1][3] == raw
    with engine.connect() as conn:
        rows = conn.execute(select(audit_log).where(audit_log.c.action == "command.ptz")).mappings().all()
    assert len(rows) == 3 and rows[0]["detail"]["action"] == "left" and rows[0]["detail"]["device_id"] == dev_id(0)


@pytest.mark.parametrize("body", [
    {"action": "sideways"}, {"action": "left", "speed": 300}, {"action": "preset_call"},
    {"action": "preset_set", "preset": 0}, {}, {"action": "left", "ptz_hex": "A50F010100000000"},
    {"ptz_hex": "A50F0101000000FF"}, {"ptz_hex": "zz"},
])
def test_ptz_validation(api, catalog, body):
    resp = api.post(f"/api/v1/channels/{chan_id(0, 1)}/ptz", "operator", json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["message"]
    assert api.ctx.commands.calls == []


def test_ptz_needs_permission_and_a_known_channel(api, catalog):
    assert api.post(f"/api/v1/channels/{chan_id(0, 1)}/ptz", "viewer", json={"action": "stop"}).status_code == 403
    missing = api.post("/api/v1/channels/34020000001310009999/ptz", "operator", json={"action": "stop"})
    assert missing.status_code == 404
