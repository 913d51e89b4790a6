"""The store on SQLite and PostgreSQL: de-duplication, clears, auto-resolve, recurrence,
escalation, supersession, the workflow in the database (history and audit in one transaction),
outbox rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alarm_helpers import CHANNEL, DEVICE, SECRET
from sqlalchemy import func, select

from camgrid.config import AlarmSettings
from camgrid.ops.alarms import outbox, store, workflow
from camgrid.ops.alarms.model import Candidate, Clear, IllegalTransition, Supersede, WorkflowError
from camgrid.store.tables import alarm_history, alarm_outbox, alarms, audit_log

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def cand(type_="health.offline", subject=DEVICE, at=T0, priority=2, **kw) -> Candidate:
    return Candidate(type=type_, source=type_.split(".")[0], priority=priority, key=f"{type_}|{subject}",
                     title=f"{type_} {subject}", at=at, device_id=DEVICE, **kw)


def apply(engine, items, **kw):
    with engine.begin() as conn:
        return store.apply(conn, items, **kw)


def rows(engine):
    with engine.connect() as conn:
        return [store.alarm_dict(r) for r in conn.execute(select(alarms).order_by(alarms.c.id)).mappings()]


def history(engine, alarm_id):
    with engine.connect() as conn:
        return [h["action"] for h in store.history_of(conn, alarm_id)]


def test_repeats_of_an_open_alarm_count_instead_of_adding_rows(engine):
    changes = apply(engine, [cand(at=T0 + timedelta(seconds=i)) for i in range(5)])
    assert [c.event for c in changes] == ["raised"]
    apply(engine, [cand(at=T0 + timedelta(seconds=10))])
    (row,) = rows(engine)
    assert row["count"] == 6 and row["first_at"] == T0 and row["last_at"] == T0 + timedelta(seconds=10)
    assert row["state"] == "open" and row["open_key"] == row["dedup_key"]
    apply(engine, [cand(subject="34020000001180000002")])
    assert len(rows(engine)) == 2


def test_a_flood_is_one_row(engine):
    apply(engine, [cand("alarm.video.motion", CHANNEL, at=T0 + timedelta(milliseconds=i)) for i in range(10_000)])
    (row,) = rows(engine)
    assert row["count"] == 10_000
    assert history(engine, row["id"]) == ["raised"]


def test_clear_keeps_the_alarm_unless_auto_resolved(engine):
    apply(engine, [cand("alarm.video.motion", CHANNEL), cand()])
    changes = apply(engine, [Clear(f"alarm.video.motion|{CHANNEL}", T0, "gone"), Clear(f"health.offline|{DEVICE}", T0, "back")],
                    auto_resolve=["health.*"])
    assert [c.event for c in changes] == ["cleared", "cleared", "resolved"]
    motion, offline = rows(engine)
    assert motion["state"] == "open" and motion["cleared_at"] == T0 and motion["open_key"]
    assert offline["state"] == "resolved" and offline["resolution"] == "cleared" and offline["resolved_by"] == "system"
    assert offline["open_key"] is None
    assert apply(engine, [Clear(f"alarm.video.motion|{CHANNEL}", T0, "again")]) == []  # cleared once


def test_condition_back_before_resolution_recurs_after_resolution_is_a_new_alarm(engine):
    apply(engine, [cand(), Clear(f"health.offline|{DEVICE}", T0, "back")])
    changes = apply(engine, [cand(at=T0 + timedelta(minutes=1))])
    assert [c.event for c in changes] == ["recurred"]
    (row,) = rows(engine)
    assert row["cleared_at"] is None and row["count"] == 2
    assert history(engine, row["id"]) == ["raised", "cleared", "recurred"]
    apply(engine, [Clear(f"health.offline|{DEVICE}", T0, "back")], auto_resolve=["health.*"])
    changes = apply(engine, [cand(at=T0 + timedelta(minutes=2))])
    assert [c.event for c in changes] == ["raised"]
    first, second = rows(engine)
    assert second["id"] != first["id"] and first["state"] == "resolved" and second["count"] == 1


def test_a_more_urgent_repeat_escalates(engine):
    apply(engine, [cand("recording.low_space", "node", priority=2)])
    changes = apply(engine, [cand("recording.low_space", "node", priority=1), cand("recording.low_space", "node", priority=2)])
    assert [(c.event, c.data) for c in changes] == [("escalated", {"from": 2, "to": 1})]
    assert rows(engine)[0]["priority"] == 1


def test_supersede_resolves_only_untouched_alarms(engine):
    apply(engine, [cand()])
    flapping = cand("health.flapping")
    changes = apply(engine, [flapping, Supersede((f"health.offline|{DEVICE}",), flapping.key, T0)])
    assert [c.event for c in changes] == ["raised", "resolved"]
    offline, flap_row = rows(engine)
    assert offline["resolution"] == "superseded" and f"alarm {flap_row['id']}" in changes[1].note


def test_workflow_steps_write_history_and_audit(engine):
    apply(engine, [cand()])
    (row,) = rows(engine)
    s = AlarmSettings()
    ack = workflow.acknowledge(engine, row["id"], "op1", "looking", settings=s, source_addr="10.0.0.9")
    assert ack.alarm["state"] == "acknowledged" and ack.alarm["acknowledged_by"] == "op1"
    with pytest.raises(IllegalTransition):
        workflow.acknowledge(engine, row["id"], "op2", settings=s)
    workflow.dispatch(engine, row["id"], "op1", "field team 3", "ladder needed", settings=s)
    workflow.add_note(engine, row["id"], "op2", "team on site", settings=s)
    done = workflow.resolve(engine, row["id"], "op1", "fixed", "cable replaced", settings=s)
    assert done.alarm["state"] == "resolved" and done.alarm["open_key"] is None
    workflow.add_note(engine, row["id"], "op2", "follow-up: check in a week", settings=s)
    with pytest.raises(IllegalTransition, match="was resolved by op1"):
        workflow.dispatch(engine, row["id"], "op1", "x", settings=s)
    with pytest.raises(WorkflowError):
        workflow.resolve(engine, row["id"], "op1", "because", settings=s)
    with engine.connect() as conn:
        steps = [(h["action"], h["actor"], h["note"]) for h in store.history_of(conn, row["id"])]
        audits = [(a, t) for a, t in conn.execute(select(audit_log.c.action, audit_log.c.target).order_by(audit_log.c.id))]
    assert steps[1:] == [("acknowledged", "op1", "looking"), ("dispatched", "op1", "ladder needed"),
                         ("note", "op2", "team on site"), ("resolved", "op1", "cable replaced"),
                         ("note", "op2", "follow-up: check in a week")]
    assert audits == [(a, str(row["id"])) for a in ("alarm.acknowledge", "alarm.dispatch", "alarm.note", "alarm.resolve",
                                                     "alarm.note")]
    final = rows(engine)[0]
    assert (final["dispatched_to"], final["resolution"], final["resolved_by"]) == ("field team 3", "fixed", "op1")


def test_unknown_alarm_is_not_found(engine):
    with pytest.raises(WorkflowError) as info:
        workflow.acknowledge(engine, 999, "op", settings=AlarmSettings())
    assert info.value.status == 404


def test_outbox_rows_per_receiver_and_only_for_wanted_changes(engine):
    s = AlarmSettings(webhooks=[{"url": "http://127.0.0.1:9/a", "secret": SECRET}, {"url": "http://127.0.0.1:9/b", "secret": SECRET}],
                      mqtt={"host": "127.0.0.1"}, notify_max_priority=2)
    changes = apply(engine, [cand(priority=2), cand("vqd.blur", CHANNEL, priority=3)])
    now = datetime.now(UTC)
    with engine.begin() as conn:
        n = outbox.enqueue(conn, outbox.rows_for(changes, s, "34020000002000000001", now))
    assert n == 3  # the priority-3 alarm is not notified
    with engine.connect() as conn:
        out = list(conn.execute(select(alarm_outbox).order_by(alarm_outbox.c.id)).mappings())
    assert [(r["kind"], r["target"]) for r in out] == [("webhook", "http://127.0.0.1:9/a"), ("webhook", "http://127.0.0.1:9/b"),
                                                         ("mqtt", "camgrid/alarms/2/health.offline")]
    assert len({r["payload"]["event_id"] for r in out}) == 1
    assert out[0]["payload"]["alarm"]["type"] == "health.offline" and out[0]["payload"]["event"] == "raised"
    claimed = outbox.claim(engine, now, 10, lease_s=60)
    assert len(claimed) == 3 and outbox.claim(engine, now, 10, lease_s=60) == []  # leased
    assert outbox.claim(engine, now + timedelta(seconds=61), 10, lease_s=60) != []
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(alarm_history)).scalar_one() == 2


def test_bookmarks_and_summary(engine):
    changes = apply(engine, [cand("alarm.video.motion", CHANNEL, priority=1), cand()])
    from camgrid.store.tables import alarm_bookmarks
    with engine.begin() as conn:
        conn.execute(alarm_bookmarks.insert(), [{"channel_id": CHANNEL, "at": T0, "alarm_id": changes[0].alarm["id"],
                                                 "label": "motion", "created_at": T0}])
    marks = store.bookmarks(engine, CHANNEL, T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    assert [(m["alarm_id"], m["at"]) for m in marks] == [(changes[0].alarm["id"], T0)]
    assert store.bookmarks(engine, CHANNEL, T0 + timedelta(seconds=1), T0 + timedelta(hours=1)) == []
    assert store.summary(engine) == {"active": 2, "by_state": {"open": 2, "acknowledged": 0, "dispatched": 0},
                                     "by_priority": {"1": 1, "2": 1, "3": 0, "4": 0}}
