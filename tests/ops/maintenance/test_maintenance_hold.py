"""Work orders on hold (waiting for access or a part): the SLA clocks stop while held, the
deadlines move by the time held when resumed, no breach is flagged during a hold, steps that
need the work to go on are refused until it is resumed, and every hold and resume is in the
history and the audit log. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from maintenance_helpers import raise_alarm
from sqlalchemy import select

from camgrid.config import Settings
from camgrid.ops.maintenance import model, orders, store
from camgrid.ops.maintenance.model import IllegalStep, OrderError
from camgrid.store.tables import audit_log

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def get(engine, order_id):
    with engine.connect() as conn:
        return store.get(conn, order_id), store.history_of(conn, order_id)


def breaches(engine, now):
    with engine.begin() as conn:
        return store.mark_breaches(conn, now)


@pytest.fixture
def order(engine):
    settings = Settings()  # priority 1: respond 30 min, resolve 4 h
    alarm = raise_alarm(engine, "health.offline", T0, priority=1)
    return orders.open_for_alarm(engine, settings, alarm, "op1", now=T0)


def test_a_hold_pauses_both_clocks_and_resuming_moves_the_deadlines(engine, order):
    oid = order["id"]
    store.step(engine, oid, "hold", "tech1", "no access to the pole until the road is closed", now=at(10))
    held, _ = get(engine, oid)
    assert held["hold_reason"].startswith("no access") and held["on_hold_since"] == at(10)
    view = model.sla_view(held, at(60))  # 50 min held: still 20 min left to respond, as at the hold
    assert view["paused"] and view["respond_remaining_s"] == 20 * 60 and view["breached"] == []
    assert view["held_s"] == 50 * 60
    assert breaches(engine, at(60)) == []  # past the original respond deadline (08:30), not flagged: on hold
    store.step(engine, oid, "resume", "tech1", "road closed, going up", now=at(70))
    resumed, history = get(engine, oid)
    assert resumed["on_hold_since"] is None and resumed["held_s"] == 60 * 60
    assert resumed["respond_due_at"] == at(90) and resumed["resolve_due_at"] == at(240 + 60)
    assert [h["action"] for h in history][-2:] == ["hold", "resume"] and history[-1]["data"] == {"held_s": 3600}
    assert breaches(engine, at(85)) == []
    assert breaches(engine, at(91)) == [(oid, "respond")]
    view = model.sla_view(resumed, at(91))
    assert not view["paused"] and view["breached"] == ["respond"] and view["respond_remaining_s"] == -60


def test_a_hold_after_the_start_moves_only_the_resolve_deadline(engine, order):
    oid = order["id"]
    with pytest.raises(IllegalStep, match="assign it to a team first"):
        store.step(engine, oid, "start", "tech1", now=at(5))  # open: not started yet
    store.step(engine, oid, "hold", "tech1", "waiting for a replacement camera", now=at(5))
    with pytest.raises(IllegalStep, match="on hold .*waiting for a replacement camera.*resume it first"):
        store.step(engine, oid, "repaired", "tech1", "done", now=at(6))
    with pytest.raises(IllegalStep, match="on hold already"):
        store.step(engine, oid, "hold", "tech1", "again", now=at(6))
    store.step(engine, oid, "note", "tech1", "ordered from the depot", now=at(7))  # notes go on
    store.step(engine, oid, "resume", "tech1", now=at(65))
    with pytest.raises(IllegalStep, match="not on hold"):
        store.step(engine, oid, "resume", "tech1", now=at(66))
    before, _ = get(engine, oid)
    assert before["respond_due_at"] == at(90)


def test_started_orders_keep_their_met_respond_deadline_and_cancel_ends_a_hold(engine):
    settings = Settings(maintenance={"default_team": "duty"})
    store.save_team(engine, "admin1", "duty")
    alarm = raise_alarm(engine, "health.offline", T0, priority=1)
    oid = orders.open_for_alarm(engine, settings, alarm, "op1", now=T0)["id"]
    store.step(engine, oid, "start", "tech1", now=at(5))
    store.step(engine, oid, "hold", "tech1", "waiting for a part", now=at(10))
    store.step(engine, oid, "resume", "tech1", now=at(40))
    row, _ = get(engine, oid)
    assert row["respond_due_at"] == at(30) and row["resolve_due_at"] == at(240 + 30)
    with pytest.raises(OrderError, match="say what the work order waits for"):
        store.step(engine, oid, "hold", "tech1", " ", now=at(49))
    store.step(engine, oid, "hold", "tech1", "waiting for access", now=at(50))
    store.step(engine, oid, "cancel", "op1", "camera removed", now=at(60))
    row, _ = get(engine, oid)
    assert row["state"] == "cancelled" and row["on_hold_since"] is None and row["held_s"] == 40 * 60
    with pytest.raises(IllegalStep, match="cancelled; there is nothing to hold"):
        store.step(engine, oid, "hold", "tech1", "x", now=at(61))
    with engine.connect() as conn:
        actions = [r[0] for r in conn.execute(select(audit_log.c.action).where(audit_log.c.target == str(oid))
                                              .order_by(audit_log.c.id))]
    assert actions.count("work_order.hold") == 2 and actions.count("work_order.resume") == 1
