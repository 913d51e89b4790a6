"""The work-order API: who may do what (viewer reads, maintainer works orders, admin keeps
teams), the workflow through HTTP with readable refusals, SLA timers in answers, audit rows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from api_helpers import PASSWORD

from camgrid.governance.users import create_user, issue_token
from camgrid.ops.alarms import store as alarm_store
from camgrid.ops.alarms.model import Candidate
from camgrid.store.tables import audit_log

DEVICE = "34020000001320000001"


@pytest.fixture
def mapi(api, engine):
    tech = create_user(engine, "tech1", PASSWORD, "maintainer")
    api.tokens["maintainer"] = issue_token(engine, tech["id"], 3600)
    return api


def alarm(engine, type_="health.offline") -> int:
    key = f"{type_}|{DEVICE}"
    with engine.begin() as conn:
        alarm_store.apply(conn, [Candidate(type=type_, source="health", priority=2, key=key, title="Device offline",
                                           at=datetime.now(UTC), device_id=DEVICE)])
        return alarm_store._load_open(conn, [key])[key]["id"]


def test_the_workflow_through_http(mapi, engine):
    r = mapi.post("/api/v1/maintenance/teams", "admin", json={"name": "north", "contact": "radio 3", "members": ["tech1"]})
    assert r.status_code == 201, r.text
    alarm_id = alarm(engine)
    r = mapi.post("/api/v1/work-orders", "operator", json={"alarm_id": alarm_id, "team": "north", "note": "urgent"})
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["state"] == "assigned" and order["sla"]["respond_remaining_s"] > 0 and order["verifiable"]
    oid = order["id"]
    again = mapi.post("/api/v1/work-orders", "operator", json={"alarm_id": alarm_id})
    assert again.status_code == 409 and "already has an active work order" in again.json()["error"]["message"]
    assert mapi.post(f"/api/v1/work-orders/{oid}/start", "maintainer", json={"note": "on my way"}).json()["state"] == "in_progress"
    bad = mapi.post(f"/api/v1/work-orders/{oid}/repaired", "maintainer", json={"note": ""})
    assert bad.status_code == 422  # a repair needs a note
    done = mapi.post(f"/api/v1/work-orders/{oid}/repaired", "maintainer", json={"note": "new PoE injector"})
    assert done.json()["state"] == "verifying"
    twice = mapi.post(f"/api/v1/work-orders/{oid}/repaired", "maintainer", json={"note": "again"})
    assert twice.status_code == 409 and "closes the order by itself" in twice.json()["error"]["message"]
    mine = mapi.get("/api/v1/work-orders?assignee=me&state=all", "maintainer").json()["items"]
    assert mine == []  # assigned to the team, not to tech1 in person
    assign = mapi.post(f"/api/v1/work-orders/{oid}/assign", "operator", json={"assignee": "tech1"})
    assert assign.status_code == 409  # verifying: nothing to hand over
    one = mapi.get(f"/api/v1/work-orders/{oid}", "viewer").json()
    assert [h["action"] for h in one["history"]] == ["opened", "start", "repaired"]
    listed = mapi.get("/api/v1/work-orders?team=north", "viewer").json()["items"]
    assert [o["id"] for o in listed] == [oid]
    teams = mapi.get("/api/v1/maintenance/teams", "viewer").json()
    assert teams[0]["active_orders"] == 1 and teams[0]["members"] == ["tech1"]
    with engine.connect() as conn:
        actions = [r.action for r in conn.execute(audit_log.select().order_by(audit_log.c.id))]
    assert [a for a in actions if a.startswith(("work_order", "maintenance"))] == [
        "maintenance.team", "work_order.open", "work_order.start", "work_order.repaired"]


def test_manual_orders_and_refusals(mapi):
    r = mapi.post("/api/v1/work-orders", "operator", json={"title": "clean the lens", "channel_id": "34020000001310000001",
                                                           "priority": 4})
    assert r.status_code == 201 and r.json()["type"] == "manual" and not r.json()["verifiable"]
    assert mapi.post("/api/v1/work-orders", "operator", json={"priority": 4}).status_code == 422
    nothing = mapi.post("/api/v1/work-orders", "operator", json={"title": "x"})
    assert nothing.status_code == 400 and "which device or channel" in nothing.json()["error"]["message"]
    missing = mapi.post("/api/v1/work-orders", "operator", json={"alarm_id": 999})
    assert missing.status_code == 404
    assert mapi.get("/api/v1/work-orders/999", "viewer").status_code == 404
    assert mapi.get("/api/v1/work-orders?team=nobody", "viewer").status_code == 404
    unknown = mapi.post("/api/v1/maintenance/teams", "admin", json={"name": "south", "members": ["ghost"]})
    assert unknown.status_code == 400 and "ghost" in unknown.json()["error"]["message"]
    assert mapi.post("/api/v1/maintenance/teams", "admin", json={"name": "south"}).status_code == 201
    dup = mapi.post("/api/v1/maintenance/teams", "admin", json={"name": "south"})
    assert dup.status_code == 409


@pytest.mark.parametrize("role, method, url, status", [
    ("viewer", "post", "/api/v1/work-orders", 403),
    ("viewer", "post", "/api/v1/work-orders/1/start", 403),
    ("maintainer", "post", "/api/v1/maintenance/teams", 403),
    ("operator", "post", "/api/v1/maintenance/teams", 403),
    ("maintainer", "get", "/api/v1/alarms", 200),
    ("maintainer", "get", "/api/v1/work-orders", 200),
    ("maintainer", "post", "/api/v1/channels/34020000001310000001/ptz", 403),
])
def test_permissions(mapi, role, method, url, status):
    body = {"json": {"title": "x", "device_id": DEVICE, "name": "t"}} if method == "post" else {}
    r = getattr(mapi, method)(url, role, **body)
    assert r.status_code == status, r.text


def test_anonymous_is_refused(mapi):
    assert mapi.client.get("/api/v1/work-orders").status_code == 401


def test_closing_resolves_the_alarm(mapi, engine):
    alarm_id = alarm(engine, "alarm.device.tamper")
    oid = mapi.post("/api/v1/work-orders", "operator", json={"alarm_id": alarm_id, "assignee": "tech1"}).json()["id"]
    closed = mapi.post(f"/api/v1/work-orders/{oid}/repaired", "maintainer", json={"note": "sealed"}).json()
    assert closed["state"] == "closed" and closed["sla"]["breached"] == []
    alarm_now = mapi.get(f"/api/v1/alarms/{alarm_id}", "viewer").json()
    assert alarm_now["state"] == "resolved" and alarm_now["resolution"] == "fixed"


def test_hold_and_resume_through_http(mapi, engine):
    oid = mapi.post("/api/v1/work-orders", "operator", json={"alarm_id": alarm(engine)}).json()["id"]
    assert mapi.post(f"/api/v1/work-orders/{oid}/hold", "viewer", json={"note": "x"}).status_code == 403
    assert mapi.post(f"/api/v1/work-orders/{oid}/hold", "maintainer", json={"note": ""}).status_code == 422
    held = mapi.post(f"/api/v1/work-orders/{oid}/hold", "maintainer", json={"note": "no access until Monday"})
    assert held.status_code == 200, held.text
    body = held.json()
    assert body["hold_reason"] == "no access until Monday" and body["on_hold_since"] and body["sla"]["paused"]
    blocked = mapi.post(f"/api/v1/work-orders/{oid}/repaired", "maintainer", json={"note": "done"})
    assert blocked.status_code == 409 and "resume it first" in blocked.json()["error"]["message"]
    resumed = mapi.post(f"/api/v1/work-orders/{oid}/resume", "maintainer")
    assert resumed.status_code == 200 and resumed.json()["on_hold_since"] is None and not resumed.json()["sla"]["paused"]
    assert mapi.post(f"/api/v1/work-orders/{oid}/resume", "maintainer").status_code == 409
    with engine.connect() as conn:
        actions = [r.action for r in conn.execute(audit_log.select().order_by(audit_log.c.id))]
    assert "work_order.hold" in actions and "work_order.resume" in actions
