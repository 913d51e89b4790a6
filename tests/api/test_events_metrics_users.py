"""Events listing, /metrics, health summary and user administration through the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from api_helpers import PASSWORD, chan_id, channel_row, dev_id, device_row, seed
from sqlalchemy import select

from camgrid.store.tables import audit_log, events


def _events(engine, n):
    base = datetime(2024, 5, 1, tzinfo=UTC)
    rows = [{"at": base + timedelta(minutes=i), "kind": "device.online" if i % 2 else "device.offline",
             "subject": dev_id(i % 3), "data": {"i": i}} for i in range(n)]
    with engine.begin() as conn:
        conn.execute(events.insert(), rows)
    return base


def test_events_newest_first_with_filters_and_paging(api, engine):
    base = _events(engine, 30)
    seen, cursor = [], None
    while True:
        page = api.get("/api/v1/events", "viewer", params={"limit": 8, **({"cursor": cursor} if cursor else {})}).json()
        seen += [e["data"]["i"] for e in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == list(range(29, -1, -1))
    online = api.get("/api/v1/events", params={"kind": "device.online", "limit": 100}).json()["items"]
    assert {e["kind"] for e in online} == {"device.online"} and len(online) == 15
    assert len(api.get("/api/v1/events", params={"kind": "device.*", "limit": 100}).json()["items"]) == 30
    subj = api.get("/api/v1/events", params={"subject": dev_id(1), "limit": 100}).json()["items"]
    assert {e["subject"] for e in subj} == {dev_id(1)} and len(subj) == 10
    since = (base + timedelta(minutes=25)).astimezone(timezone(timedelta(hours=8))).isoformat()
    recent = api.get("/api/v1/events", params={"since": since}).json()["items"]
    assert [e["data"]["i"] for e in recent] == [29, 28, 27, 26, 25]
    assert datetime.fromisoformat(recent[0]["at"]).tzinfo is not None


def test_health_summary_and_metrics(api, engine):
    seed(engine, [device_row(0, status="online"), device_row(1, status="offline")],
         [channel_row(dev_id(0), chan_id(0, 1), point_class=1),
          channel_row(dev_id(0), chan_id(0, 2), point_class=2, status="offline"),
          channel_row(dev_id(1), chan_id(1, 1), point_class=1)])

    class Source:
        def collect(self):
            return {"registered": 1, "messages": {"Keepalive": 12, "Catalog": 2}, "bans_total": 3,
                    "registration_failures": {"bad_digest": 4}, "collected_at": 1.0}

    api.ctx.metrics = Source()
    summary = api.get("/api/v1/health/summary", "viewer").json()
    assert summary["devices"] == {"total": 2, "online": 1, "offline": 1, "pending": 0}
    assert summary["channels"]["total"] == 3 and summary["channels"]["online"] == 1
    assert summary["by_point_class"]["1"] == {"total": 2, "online": 1, "online_rate": 0.5}
    assert summary["by_point_class"]["2"]["online"] == 0

    resp = api.get("/metrics", "admin")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert "camgrid_devices_online 1.0" in text and "camgrid_channels_online 1.0" in text
    assert 'camgrid_sip_messages_total{kind="Keepalive"} 12.0' in text
    assert "camgrid_sip_bans_total 3.0" in text and "camgrid_sip_registered_devices 1.0" in text
    assert 'camgrid_sip_registration_failures_total{reason="bad_digest"} 4.0' in text
    assert "collected_at" not in text
    assert "python_gc" not in text  # the app's own registry, not the process-global one
    assert api.client.get("/metrics").status_code == 401


def test_user_admin(api, engine):
    listed = api.get("/api/v1/users").json()
    assert {u["username"] for u in listed} == {"admin1", "operator1", "viewer1"}
    assert all("password_hash" not in u for u in listed)
    created = api.post("/api/v1/users", json={"username": "Grace", "password": PASSWORD, "role": "viewer"})
    assert created.status_code == 201 and created.json()["username"] == "grace"
    assert created.json()["must_change_password"] is True
    assert api.post("/api/v1/users", json={"username": "grace", "password": PASSWORD, "role": "viewer"}).status_code == 409
    weak = api.post("/api/v1/users", json={"username": "henry", "password": "aaaaaaaaaaaaaaa", "role": "viewer"})
    assert weak.status_code == 422 and weak.json()["error"]["code"] == "weak_password"
    bad_role = api.post("/api/v1/users", json={"username": "ivan", "password": PASSWORD, "role": "root"})
    assert bad_role.status_code == 422
    promoted = api.client.patch("/api/v1/users/grace", headers=api.h("admin"), json={"role": "operator"})
    assert promoted.json()["role"] == "operator"
    self_demote = api.client.patch("/api/v1/users/admin1", headers=api.h("admin"), json={"role": "viewer"})
    assert self_demote.status_code == 409
    assert api.client.patch("/api/v1/users/nobody", headers=api.h("admin"), json={"disabled": True}).status_code == 404
    with engine.connect() as conn:
        actions = conn.execute(select(audit_log.c.action).where(audit_log.c.actor == "admin1")).scalars().all()
    assert actions.count("user.create") == 1 and actions.count("user.update") == 1
