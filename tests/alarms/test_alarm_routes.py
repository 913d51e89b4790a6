"""/api/v1/alarms: permissions, filters and paging, the workflow with its 409s, audit rows, the
live stream (a real server), bookmarks, metrics."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from alarm_helpers import CHANNEL, DEVICE, alarm_settings, device_alarm, until
from sqlalchemy import select

from camgrid.api.app import API_PREFIX, ApiContext, api_routes, create_api
from camgrid.api.security import route_permissions
from camgrid.asgi import AsgiServer
from camgrid.governance import roles
from camgrid.ops.alarms import store
from camgrid.ops.alarms.model import Candidate
from camgrid.store.tables import alarm_bookmarks, audit_log

BASE = f"{API_PREFIX}/alarms"
T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def seed_alarms(engine, n: int = 7) -> list[int]:
    items = [Candidate(type="vqd.blur" if i % 2 else "health.offline", source="vqd" if i % 2 else "health",
                       priority=1 + i % 4, key=f"k{i}", title=f"alarm {i}", at=T0 + timedelta(minutes=i),
                       channel_id=CHANNEL if i % 2 else None, device_id=DEVICE) for i in range(n)]
    with engine.begin() as conn:
        return [c.alarm["id"] for c in store.apply(conn, items)]


def test_every_alarm_route_states_its_permission():
    app = create_api(ApiContext(engine=None, settings=alarm_settings()))  # type: ignore[arg-type]
    found = {(m, p): route_permissions(r.dependant) for m, p, r in api_routes(app) if "alarms" in p or "bookmarks" in p}
    assert found[("GET", f"{BASE}")] == {roles.ALARMS_READ}
    assert found[("POST", f"{BASE}/{{alarm_id}}/acknowledge")] == {roles.ALARMS_HANDLE}
    assert found[("POST", f"{BASE}/notifications/retry")] == {roles.ALARMS_CONFIGURE}
    assert found[("POST", f"{BASE}/notifications/test")] == {roles.ALARMS_CONFIGURE}
    assert all(perms for perms in found.values()) and len(found) == 12


def test_who_may_do_what(make_api, engine):
    api = make_api()
    (alarm_id, *_) = seed_alarms(engine, 1)
    assert api.client.get(BASE).status_code == 401
    assert api.get(BASE, "viewer").status_code == 200
    assert api.get(f"{BASE}/{alarm_id}", "viewer").status_code == 200
    denied = api.post(f"{BASE}/{alarm_id}/acknowledge", "viewer", json={})
    assert denied.status_code == 403 and "alarms:handle" in denied.json()["error"]["message"]
    assert api.post(f"{BASE}/{alarm_id}/notes", "viewer", json={"note": "x"}).status_code == 403
    assert api.get(f"{BASE}/notifications", "operator").status_code == 403
    assert api.get(f"{BASE}/notifications", "admin").status_code == 200
    assert api.post(f"{BASE}/{alarm_id}/acknowledge", "operator", json={}).status_code == 200


def test_list_filters_and_pages(make_api, engine):
    api = make_api()
    ids = seed_alarms(engine, 7)
    seen, cursor = [], None
    for _ in range(5):
        page = api.get(BASE, "viewer", params={"limit": 3, **({"cursor": cursor} if cursor else {})}).json()
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(ids, reverse=True)
    assert {a["type"] for a in api.get(BASE, params={"type": "vqd.*"}).json()["items"]} == {"vqd.blur"}
    assert [a["priority"] for a in api.get(BASE, params={"priority": 1}).json()["items"]] == [1, 1]
    assert {a["priority"] for a in api.get(BASE, params={"max_priority": 2}).json()["items"]} == {1, 2}
    assert len(api.get(BASE, params={"channel_id": CHANNEL}).json()["items"]) == 3
    assert len(api.get(BASE, params={"source": "health"}).json()["items"]) == 4
    since = (T0 + timedelta(minutes=5)).isoformat()
    assert len(api.get(BASE, params={"since": since}).json()["items"]) == 2
    assert api.get(BASE, params={"since": "2026-12-01T10:00:00"}).status_code == 400
    assert api.get(BASE, params={"cursor": "bogus"}).status_code == 422
    assert api.get(BASE, params={"state": "nonsense"}).status_code == 422
    assert api.get(f"{BASE}/summary", "viewer").json()["active"] == 7


def test_workflow_through_the_api_with_history_and_audit(make_api, engine):
    api = make_api()
    (alarm_id,) = seed_alarms(engine, 1)
    url = f"{BASE}/{alarm_id}"
    early = api.post(f"{url}/dispatch", "operator", json={"to": "team 3"})
    assert early.status_code == 409 and "acknowledge it before" in early.json()["error"]["message"]
    ack = api.post(f"{url}/acknowledge", "operator", json={"note": "on it"})
    assert ack.status_code == 200 and ack.json()["state"] == "acknowledged" and ack.json()["acknowledged_by"] == "operator1"
    again = api.post(f"{url}/acknowledge", "admin")
    assert again.status_code == 409 and "already acknowledged (by operator1)" in again.json()["error"]["message"]
    assert api.post(f"{url}/dispatch", "operator", json={"to": "field team 3", "note": "ladder"}).json()["dispatched_to"] == "field team 3"
    assert api.post(f"{url}/notes", "admin", json={"note": "team on site"}).status_code == 201
    assert api.post(f"{url}/resolve", "operator", json={"resolution": "because"}).status_code == 422
    done = api.post(f"{url}/resolve", "operator", json={"resolution": "fixed", "note": "cable"})
    assert done.status_code == 200 and done.json()["state"] == "resolved" and done.json()["resolved_by"] == "operator1"
    assert api.post(f"{url}/resolve", "operator", json={"resolution": "fixed"}).status_code == 409
    assert api.post(f"{url}/notes", "operator", json={"note": "checked a week later"}).status_code == 201
    assert api.post(f"{url}/notes", "operator", json={"note": ""}).status_code == 422
    body = api.get(url, "viewer").json()
    assert [(h["action"], h["actor"]) for h in body["history"]] == [
        ("raised", "system"), ("acknowledged", "operator1"), ("dispatched", "operator1"), ("note", "admin1"),
        ("resolved", "operator1"), ("note", "operator1")]
    assert body["history"][1]["note"] == "on it"
    with engine.connect() as conn:
        audits = list(conn.execute(select(audit_log.c.actor, audit_log.c.action, audit_log.c.target, audit_log.c.source_addr)
                                   .where(audit_log.c.action.startswith("alarm.")).order_by(audit_log.c.id)))
    assert [(a, b, c) for a, b, c, _ in audits] == [
        ("operator1", "alarm.acknowledge", str(alarm_id)), ("operator1", "alarm.dispatch", str(alarm_id)),
        ("admin1", "alarm.note", str(alarm_id)), ("operator1", "alarm.resolve", str(alarm_id)),
        ("operator1", "alarm.note", str(alarm_id))]
    assert all(addr for *_, addr in audits)
    assert api.get(f"{BASE}/999999").status_code == 404
    assert api.post(f"{BASE}/999999/acknowledge", "operator").status_code == 404


def test_bookmarks_route(make_api, engine):
    api = make_api()
    (alarm_id,) = seed_alarms(engine, 1)
    with engine.begin() as conn:
        conn.execute(alarm_bookmarks.insert(), [{"channel_id": CHANNEL, "at": T0, "alarm_id": alarm_id, "label": "motion",
                                                 "created_at": T0}])
    url = f"{API_PREFIX}/channels/{CHANNEL}/bookmarks"
    got = api.get(url, "viewer", params={"from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00Z"}).json()
    assert [(b["alarm_id"], b["label"], b["at"]) for b in got["items"]] == [(alarm_id, "motion", "2026-12-01T02:00:00+00:00")]
    assert api.get(url, params={"from": "2026-12-01T00:00:00", "to": "2026-12-02T00:00:00Z"}).status_code == 400
    assert api.get(url, params={"from": "2026-01-01T00:00:00Z", "to": "2026-12-02T00:00:00Z"}).status_code == 400


@pytest.fixture
def sqlite_only(db_url):
    if not db_url.startswith("sqlite"):
        pytest.skip("the live stream test runs a real server once, on SQLite")


async def test_live_stream_pushes_new_alarms_to_the_console(sqlite_only, engine, users, make_centre):
    centre, bus = await make_centre(engine)
    server = AsgiServer(create_api(ApiContext(engine=engine, settings=centre.settings, bus=bus, alarms=centre,
                                              metrics=centre)), "127.0.0.1", 0)
    await server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            assert (await client.get(f"{BASE}/stream")).status_code == 401
            headers = {"Authorization": f"Bearer {users['viewer']}"}
            async with client.stream("GET", f"{BASE}/stream", headers=headers) as response:
                assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
                lines = response.aiter_lines()
                assert await anext(lines) == "event: hello"
                await until(lambda: centre.live.listeners == 1, what="the listener")
                bus.publish(device_alarm())
                got: list[str] = []
                while not any(line.startswith("data:") and '"raised"' in line for line in got):
                    got.append(await anext(lines))
                message = json.loads(next(line for line in got if '"raised"' in line)[5:])
            assert message["popup"] is True and message["alarm"]["channel_id"] == CHANNEL
            ack = await client.post(f"{BASE}/{message['alarm']['id']}/acknowledge",
                                    headers={"Authorization": f"Bearer {users['operator']}"})
            assert ack.status_code == 200
            await until(lambda: centre.changes["acknowledged"] == 1, what="the API step announced")
            metrics = await client.get("/metrics", headers={"Authorization": f"Bearer {users['admin']}"})
            assert "camgrid_alarm_events_total 1.0" in metrics.text
            assert 'camgrid_alarm_changes_total{kind="raised"} 1.0' in metrics.text
    finally:
        await server.stop()


def test_stream_without_a_centre_is_503(make_api):
    api = make_api()
    assert api.get(f"{BASE}/stream", "viewer").status_code == 503
