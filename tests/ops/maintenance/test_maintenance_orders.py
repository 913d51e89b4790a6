"""Work orders against real databases (SQLite and PostgreSQL): opened by the worker for alarms
that stay, routed to teams, closed only once the fault has cleared (and the alarm resolved),
sent back when the repair did not help, SLA breaches flagged, one active order per alarm."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from maintenance_helpers import CHANNEL, DEVICE, alarm_row, clear_alarm, raise_alarm

from camgrid.config import Settings
from camgrid.governance.users import create_user
from camgrid.ops.maintenance import orders, store
from camgrid.ops.maintenance.model import IllegalStep, OrderError
from camgrid.ops.maintenance.worker import MaintenanceWorker
from camgrid.store.tables import audit_log

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def setup(engine):
    settings = Settings(maintenance={"auto_open_after_s": 600, "default_team": "duty",
                                     "routes": [{"team": "video", "types": ["vqd.*"]}]})
    create_user(engine, "tech1", "a long enough password 1", "maintainer")
    for name in ("duty", "video"):
        store.save_team(engine, "admin1", name, contact="radio 3", members=["tech1"])
    clock = Clock()
    return settings, MaintenanceWorker(engine, None, settings, clock=clock), clock


def orders_of(engine, alarm_id):
    return [o for o in store.page(engine, store.query(state="all"), None, 100) if o["alarm_id"] == alarm_id]


def test_an_alarm_that_stays_opens_a_work_order_for_the_routed_team(engine, setup):
    settings, worker, clock = setup
    short = raise_alarm(engine, "health.offline", T0, device_id=DEVICE)
    blur = raise_alarm(engine, "vqd.blur", T0, channel_id=CHANNEL, priority=3)
    motion = raise_alarm(engine, "alarm.video.motion", T0, channel_id=CHANNEL)  # not an auto-open type
    clock.now = T0 + timedelta(minutes=5)
    assert worker.run_round()["opened"] == 0  # not yet: a short outage needs no technician
    clear_alarm(engine, "health.offline", T0 + timedelta(minutes=6))  # the device came back
    clock.now = T0 + timedelta(minutes=11)
    assert worker.run_round()["opened"] == 1
    assert orders_of(engine, short) == [] and orders_of(engine, motion) == []
    (order,) = orders_of(engine, blur)
    teams = {t["id"]: t["name"] for t in store.list_teams(engine)}
    assert order["state"] == "assigned" and teams[order["team_id"]] == "video" and order["verifiable"]
    assert order["resolve_due_at"] == T0 + timedelta(minutes=11, hours=72)  # priority 3
    assert worker.run_round()["opened"] == 0  # one active order per alarm
    assert [e.kind for e in worker.pending] == ["maintenance.opened"]
    with engine.connect() as conn:
        history = conn.execute(audit_log.select().where(audit_log.c.action == "work_order.open")).all()
    assert len(history) == 1
    notes = [h for h in _alarm_history(engine, blur) if h["action"] == "note"]
    assert "work order" in notes[0]["note"]


def _alarm_history(engine, alarm_id):
    from camgrid.ops.alarms import store as alarm_store
    with engine.connect() as conn:
        return alarm_store.history_of(conn, alarm_id)


def test_a_repair_closes_the_order_only_when_the_fault_clears(engine, setup):
    settings, worker, clock = setup
    alarm = raise_alarm(engine, "health.offline", T0)
    order = orders.open_for_alarm(engine, settings, alarm, "op1", now=T0, assignee="tech1")
    store.step(engine, order["id"], "start", "tech1", "on site")
    _, after = store.step(engine, order["id"], "repaired", "tech1", "replaced the PoE switch")
    assert after["state"] == "verifying"
    clock.now = T0 + timedelta(minutes=30)
    assert worker.run_round()["closed"] == 0  # the device is still offline
    clear_alarm(engine, "health.offline", T0 + timedelta(minutes=31))
    assert worker.run_round()["closed"] == 1
    with engine.connect() as conn:
        closed = store.get(conn, order["id"])
        actions = [h["action"] for h in store.history_of(conn, order["id"])]
    assert closed["state"] == "closed" and closed["closed_by"] == "system"
    assert actions == ["opened", "start", "repaired", "closed"]
    assert alarm_row(engine, alarm)["state"] == "resolved"


def test_a_repair_that_did_not_help_goes_back_in_progress(engine, setup):
    settings, worker, clock = setup
    alarm = raise_alarm(engine, "vqd.occlusion", T0, channel_id=CHANNEL)
    order = orders.open_for_alarm(engine, settings, alarm, "op1", now=T0)
    store.step(engine, order["id"], "repaired", "tech1", "cut the branch")
    clock.now = datetime.now(UTC) + timedelta(hours=2)  # past verify_timeout_s after the repair
    assert worker.run_round()["reopened"] == 1
    with engine.connect() as conn:
        assert store.get(conn, order["id"])["state"] == "in_progress"


def test_faults_the_platform_cannot_see_clear_close_on_the_repair(engine, setup):
    settings, worker, _ = setup
    alarm = raise_alarm(engine, "alarm.device.tamper", T0, channel_id=CHANNEL)
    order = orders.open_for_alarm(engine, settings, alarm, "op1", now=T0, team="duty")
    assert not order["verifiable"]
    _, after = store.step(engine, order["id"], "repaired", "tech1", "housing closed and sealed")
    assert after["state"] == "closed"
    orders.after_close(engine, settings, after, "tech1")
    assert alarm_row(engine, alarm)["resolution"] == "fixed"


def test_steps_refused_with_reasons(engine, setup):
    settings, _, _ = setup
    alarm = raise_alarm(engine, "health.offline", T0)
    settings.maintenance.default_team = ""
    order = orders.open_for_alarm(engine, settings, alarm, "op1", now=T0)
    assert order["state"] == "open" and order["team_id"] is None
    with pytest.raises(IllegalStep, match="assign it to a team first"):
        store.step(engine, order["id"], "start", "tech1")
    with pytest.raises(IllegalStep, match="already has an active work order"):
        orders.open_for_alarm(engine, settings, alarm, "op1", now=T0)
    with pytest.raises(OrderError, match="no maintenance team named 'nobody'"):
        store.step(engine, order["id"], "assign", "op1", team="nobody")
    with pytest.raises(OrderError, match="not an active user"):
        store.step(engine, order["id"], "assign", "op1", assignee="ghost")
    with pytest.raises(OrderError, match="say why"):
        store.step(engine, order["id"], "cancel", "op1", "")
    store.step(engine, order["id"], "cancel", "op1", "duplicate of the NVR's order")
    again = orders.open_for_alarm(engine, settings, alarm, "op1", now=T0)  # the alarm is free again
    assert again["id"] != order["id"]


def test_sla_breaches_are_flagged_once_and_announced(engine, setup):
    settings, worker, clock = setup
    alarm = raise_alarm(engine, "health.offline", T0, priority=1)
    order = orders.open_for_alarm(engine, settings, alarm, "op1", now=T0)
    clock.now = T0 + timedelta(minutes=31)
    worker.run_round()
    worker.run_round()
    with engine.connect() as conn:
        row = store.get(conn, order["id"])
    assert row["respond_breached"] and not row["resolve_breached"]
    assert [(e.kind, e.data) for e in worker.pending if e.kind == "maintenance.sla_breached"] == [
        ("maintenance.sla_breached", {"deadline": "respond"})]
    breached = store.page(engine, store.query(state="active", breached=True), None, 10)
    assert [o["id"] for o in breached] == [order["id"]]
