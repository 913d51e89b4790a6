"""Work-order states, SLA timers and team routing (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from camgrid.ops.maintenance import model
from camgrid.ops.maintenance.model import IllegalStep, Route, Sla

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("state, action, verifiable, after", [
    ("open", "assign", True, "assigned"), ("assigned", "assign", True, "assigned"),
    ("in_progress", "assign", True, "in_progress"), ("assigned", "start", True, "in_progress"),
    ("in_progress", "repaired", True, "verifying"), ("in_progress", "repaired", False, "closed"),
    ("assigned", "repaired", True, "verifying"), ("verifying", "cancel", True, "cancelled"),
    ("open", "cancel", True, "cancelled")])
def test_legal_steps(state, action, verifiable, after):
    assert model.next_state(7, state, action, verifiable=verifiable) == after


@pytest.mark.parametrize("state, action, says", [
    ("open", "start", "assign it to a team first"), ("open", "repaired", "assign it to a team first"),
    ("verifying", "repaired", "closes the order by itself"), ("verifying", "start", "waiting for the fault"),
    ("closed", "cancel", "open a new one"), ("cancelled", "assign", "open a new one"),
    ("in_progress", "start", "record the repair")])
def test_illegal_steps_say_what_to_do(state, action, says):
    with pytest.raises(IllegalStep) as refused:
        model.next_state(7, state, action)
    assert says in str(refused.value) and refused.value.status == 409


def test_sla_timers_count_down_stop_and_breach():
    respond, resolve = model.deadlines(T0, Sla(1800, 4 * 3600))
    order = {"state": "assigned", "respond_due_at": respond, "resolve_due_at": resolve, "started_at": None,
             "closed_at": None, "cancelled_at": None}
    view = model.sla_view(order, T0 + timedelta(minutes=10))
    assert view["respond_remaining_s"] == 20 * 60 and view["breached"] == []
    view = model.sla_view(order, T0 + timedelta(hours=1))
    assert view["respond_remaining_s"] == -30 * 60 and view["breached"] == ["respond"]
    order.update(state="closed", started_at=T0 + timedelta(minutes=5), closed_at=T0 + timedelta(hours=5))
    view = model.sla_view(order, T0 + timedelta(days=2))
    assert view["respond_remaining_s"] is None and view["breached"] == ["resolve"]  # closed an hour late


def test_routes_pick_the_first_team_that_takes_the_fault():
    routes = [Route("video-team", types=("vqd.*",)), Route("north", civil_prefixes=("340201",)),
              Route("hq", organisations=("34020000002160000001",))]
    assert model.route_team(routes, "", "vqd.blur", "340202") == "video-team"
    assert model.route_team(routes, "", "health.offline", "34020101") == "north"
    assert model.route_team(routes, "", "health.offline", "340299", "34020000002160000001") == "hq"
    assert model.route_team(routes, "duty", "health.offline", "350000") == "duty"
    assert model.route_team([], "", "health.offline") == ""
