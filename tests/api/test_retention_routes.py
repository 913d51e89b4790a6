"""Retention through the API: profiles, channel assignment, legal holds (audited), status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from api_helpers import chan_id, channel_row, dev_id, device_row, seed
from sqlalchemy import select

from camgrid.api.app import API_PREFIX, api_routes
from camgrid.api.security import route_permissions
from camgrid.config import RetentionSettings
from camgrid.media.retention_worker import RetentionWorker
from camgrid.store.tables import audit_log, recordings

CHANNEL = chan_id(1, 1)
BASE = f"{API_PREFIX}/retention"


@pytest.fixture
def rapi(api):
    seed(api.ctx.engine, [device_row(1)], [channel_row(dev_id(1), CHANNEL)])
    return api


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def put(api, url, role="admin", **kw):
    return api.client.put(url, headers=api.h(role), **kw)


def patch(api, url, role="admin", **kw):
    return api.client.patch(url, headers=api.h(role), **kw)


def audits(engine, action):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(audit_log).where(audit_log.c.action == action)).mappings()]


def add_recording(engine, channel, start, minutes=1, size=1000):
    with engine.begin() as conn:
        conn.execute(recordings.insert(), {
            "id": f"{channel[-4:]}{start:%Y%m%d%H%M%S}", "channel_id": channel, "device_id": dev_id(1), "start_at": start,
            "end_at": start + timedelta(minutes=minutes), "bytes": size, "path": f"{channel}/{start:%Y%m%d}/{start:%H%M%S}-00000000.mp4",
            "codec": "h264", "width": 160, "height": 120, "state": "closed", "node_id": "n1", "created_at": start})


def test_every_retention_route_states_a_permission(rapi):
    routes = [(m, p, r) for m, p, r in api_routes(rapi.client.app) if "/retention" in p]
    assert len(routes) == 10
    for method, path, route in routes:
        assert route_permissions(route.dependant), f"{method} {path}"
        assert rapi.client.request(method, path.replace("{channel_id}", CHANNEL).replace("{profile_id}", "1")
                                   .replace("{hold_id}", "1"), json={}).status_code == 401


def test_profiles_list_create_update(rapi):
    items = rapi.get(f"{BASE}/profiles", "viewer").json()["items"]
    [default] = items
    assert default["name"] == "default" and default["max_age_days"] == 90 and default["min_age_days"] == 7

    body = {"name": "evidence-rooms", "max_age_days": 180, "min_age_days": 30, "description": "entrances"}
    assert rapi.post(f"{BASE}/profiles", "viewer", json=body).status_code == 403
    created = rapi.post(f"{BASE}/profiles", json=body)
    assert created.status_code == 201, created.text
    profile = created.json()
    assert profile["max_age_days"] == 180 and profile["updated_by"] == "admin1"
    again = rapi.post(f"{BASE}/profiles", json=body)
    assert again.status_code == 409 and "exists already" in again.json()["error"]["message"]
    bad = rapi.post(f"{BASE}/profiles", json={**body, "name": "x", "max_age_days": 5, "min_age_days": 10})
    assert bad.status_code == 400 and "cannot be above max_age_days" in bad.json()["error"]["message"]

    changed = patch(rapi, f"{BASE}/profiles/{profile['id']}", json={"max_age_days": None})
    assert changed.status_code == 200 and changed.json()["max_age_days"] is None and changed.json()["min_age_days"] == 30
    [entry] = audits(rapi.ctx.engine, "retention.profile.update")
    assert entry["detail"] == {"id": profile["id"], "before": {"max_age_days": 180}, "after": {"max_age_days": None}}
    rename = patch(rapi, f"{BASE}/profiles/{default['id']}", json={"name": "other"})
    assert rename.status_code == 400 and "cannot be renamed" in rename.json()["error"]["message"]
    assert patch(rapi, f"{BASE}/profiles/{default['id']}", json={"max_age_days": 120}).json()["max_age_days"] == 120
    assert patch(rapi, f"{BASE}/profiles/9999", json={"min_age_days": 1}).status_code == 404
    assert patch(rapi, f"{BASE}/profiles/{default['id']}", json={}).status_code == 400


def test_assigning_a_channel_to_a_profile(rapi):
    rapi.post(f"{BASE}/profiles", json={"name": "short", "max_age_days": 30, "min_age_days": 1})
    url = f"{API_PREFIX}/channels/{CHANNEL}/retention"
    assert rapi.get(url, "viewer").json()["profile"]["name"] == "default"
    assert put(rapi, url, "viewer", json={"profile": "short"}).status_code == 403
    assigned = put(rapi, url, json={"profile": "short"})
    assert assigned.status_code == 200 and assigned.json()["profile"]["name"] == "short"
    start = datetime(2026, 1, 5, 8, tzinfo=UTC)
    add_recording(rapi.ctx.engine, CHANNEL, start)
    view = rapi.get(url, "viewer").json()
    assert view["profile"]["name"] == "short" and at(view["oldest_footage"]["start_at"]) == start
    assert view["active_holds"] == 0
    listed = {p["name"]: p["channels"] for p in rapi.get(f"{BASE}/profiles").json()["items"]}
    assert listed == {"default": 0, "short": 1}
    assert put(rapi, url, json={"profile": "default"}).json()["profile"]["name"] == "default"
    assert rapi.get(url).json()["profile"]["name"] == "default"
    assert [a["detail"] for a in audits(rapi.ctx.engine, "retention.assign")] == [
        {"from": "default", "to": "short"}, {"from": "short", "to": "default"}]
    missing = put(rapi, f"{API_PREFIX}/channels/34020000009990000001/retention", json={"profile": "short"})
    assert missing.status_code == 404 and "neither in the registry" in missing.json()["error"]["message"]
    assert put(rapi, url, json={"profile": "nope"}).status_code == 404


def test_legal_holds_are_created_listed_released_and_audited(rapi):
    start = datetime(2026, 3, 1, 10, tzinfo=UTC)
    for m in range(3):
        add_recording(rapi.ctx.engine, CHANNEL, start + timedelta(minutes=m))
    body = {"channel_id": CHANNEL, "from": "2026-03-01T18:00:30+08:00", "to": "2026-03-01T10:02:00Z",
            "case_ref": "2026-XJ-0042", "reason": "theft at the north gate"}
    assert rapi.post(f"{BASE}/holds", "viewer", json=body).status_code == 403
    created = rapi.post(f"{BASE}/holds", json=body)
    assert created.status_code == 201, created.text
    hold = created.json()
    assert hold["segments"] == 2 and hold["bytes"] == 2000 and hold["active"] is True
    assert at(hold["from"]) == datetime(2026, 3, 1, 10, 0, 30, tzinfo=UTC) and hold["created_by"] == "admin1" and hold["until"] is None
    [entry] = audits(rapi.ctx.engine, "retention.hold.create")
    assert entry["target"] == CHANNEL and entry["detail"]["case_ref"] == "2026-XJ-0042" and entry["actor"] == "admin1"

    naive = rapi.post(f"{BASE}/holds", json={**body, "from": "2026-03-01T10:00:00"})
    assert naive.status_code == 400 and "needs a zone" in naive.json()["error"]["message"]
    backwards = rapi.post(f"{BASE}/holds", json={**body, "to": "2026-03-01T09:00:00Z"})
    assert backwards.status_code == 400 and "end after it starts" in backwards.json()["error"]["message"]
    lapsed = rapi.post(f"{BASE}/holds", json={**body, "until": "2020-01-01T00:00:00Z"})
    assert lapsed.status_code == 400 and "until is in the past" in lapsed.json()["error"]["message"]
    later = rapi.post(f"{BASE}/holds", json={**body, "until": (datetime.now(UTC) + timedelta(days=30)).isoformat()})
    assert later.status_code == 201

    assert rapi.get(f"{BASE}/holds", "viewer").status_code == 403
    page = rapi.get(f"{BASE}/holds", params={"limit": 1}).json()
    assert [h["id"] for h in page["items"]] == [hold["id"]] and page["next_cursor"]
    rest = rapi.get(f"{BASE}/holds", params={"cursor": page["next_cursor"]}).json()
    assert [h["id"] for h in rest["items"]] == [later.json()["id"]] and rest["next_cursor"] is None
    assert rapi.get(f"{API_PREFIX}/channels/{CHANNEL}/retention").json()["active_holds"] == 2

    released = rapi.post(f"{BASE}/holds/{hold['id']}/release", json={"reason": "case closed"})
    assert released.status_code == 200
    assert released.json()["active"] is False and released.json()["released_by"] == "admin1"
    assert released.json()["release_reason"] == "case closed"
    twice = rapi.post(f"{BASE}/holds/{hold['id']}/release", json={"reason": "again"})
    assert twice.status_code == 409 and "already released by admin1" in twice.json()["error"]["message"]
    assert [h["id"] for h in rapi.get(f"{BASE}/holds", params={"active": "true"}).json()["items"]] == [later.json()["id"]]
    assert [h["id"] for h in rapi.get(f"{BASE}/holds", params={"active": "false"}).json()["items"]] == [hold["id"]]
    assert rapi.get(f"{BASE}/holds/{hold['id']}").json()["case_ref"] == "2026-XJ-0042"
    assert rapi.get(f"{BASE}/holds/999").status_code == 404
    [entry] = audits(rapi.ctx.engine, "retention.hold.release")
    assert entry["detail"] == {"hold_id": hold["id"], "case_ref": "2026-XJ-0042", "reason": "case closed"}


def test_status_shows_the_rules_and_each_node_s_last_sweep(rapi, tmp_path):
    empty = rapi.get(f"{BASE}/status", "viewer").json()
    assert empty["nodes"] == [] and empty["oldest_footage"] is None and empty["default_profile"]["max_age_days"] == 90
    assert empty["low_water"] == {"min_free_percent": 5.0, "min_free_bytes": 1 << 30}
    old = datetime.now(UTC) - timedelta(days=200)
    add_recording(rapi.ctx.engine, CHANNEL, old)
    recent = datetime.now(UTC) - timedelta(days=3)
    add_recording(rapi.ctx.engine, CHANNEL, recent)
    root = tmp_path / "rec"
    root.mkdir()
    RetentionWorker(rapi.ctx.engine, root, "n1", RetentionSettings()).sweep_once()
    status = rapi.get(f"{BASE}/status", "viewer").json()
    [node] = status["nodes"]
    assert node["node_id"] == "n1" and node["stale"] is False and node["disk"]["size_bytes"] > 0
    assert node["last_sweep"]["deleted"]["max_age"]["segments"] == 1
    assert at(status["oldest_footage"]["start_at"]) == recent
