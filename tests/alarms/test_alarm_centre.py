"""The centre on a real MemoryBus and SQLite: events become alarms, repeats count, flapping is
one alarm, clears, the events table tail, linkage, a database outage, a flood, garbage."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

from alarm_helpers import CHANNEL, DEVICE, device_alarm, until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

from camgrid.bus import Event
from camgrid.config import Settings
from camgrid.governance.event_log import event_row
from camgrid.ops.alarms import store
from camgrid.ops.alarms.centre import AlarmCentre
from camgrid.store.engine import open_store
from camgrid.store.tables import alarm_bookmarks, alarm_sources, alarms, events

CHANNEL2 = "34020000001310000002"


def alarm_rows(engine, **where):
    stmt = select(alarms).order_by(alarms.c.id)
    for k, v in where.items():
        stmt = stmt.where(alarms.c[k] == v)
    with engine.connect() as conn:
        return [store.alarm_dict(r) for r in conn.execute(stmt).mappings()]


class Collector:
    def __init__(self, bus, prefix="alarm."):
        self.events: list[Event] = []
        bus.subscribe(prefix, self._on)

    async def _on(self, event: Event) -> None:
        if event.kind != "alarm.device":
            self.events.append(event)


async def test_device_alarm_becomes_one_counted_alarm_with_bookmark_and_announcements(make_centre, sqlite_engine):
    centre, bus = await make_centre()
    seen = Collector(bus)
    async with centre.live.listen() as live:
        for _ in range(3):
            bus.publish(device_alarm(priority="1"))
        await until(lambda: (r := alarm_rows(sqlite_engine)) and r[0]["count"] == 3, what="three alarms counted")
        message = await live.get()
    (row,) = alarm_rows(sqlite_engine)
    assert (row["type"], row["priority"], row["channel_id"], row["device_id"]) == ("alarm.video.motion", 1, CHANNEL, DEVICE)
    assert message["event"] == "raised" and message["popup"] is True and message["alarm"]["id"] == row["id"]
    await until(lambda: seen.events, what="alarm.raised on the bus")
    assert [(e.kind, e.subject) for e in seen.events] == [("alarm.raised", str(row["id"]))]
    with sqlite_engine.connect() as conn:
        marks = list(conn.execute(select(alarm_bookmarks)).mappings())
    assert [(m["channel_id"], m["alarm_id"]) for m in marks] == [(CHANNEL, row["id"])]  # default linkage
    assert centre.collect()["alarm_changes_total"] == {"raised": 1}


async def test_flapping_device_is_one_alarm_until_stable(make_centre, sqlite_engine, clock):
    centre, bus = await make_centre(flap_threshold=3, flap_window_s=60, flap_stable_s=120)
    for _ in range(5):
        bus.publish(Event("device.offline", DEVICE, {"reason": "keepalive timeout"}))
        bus.publish(Event("device.online", DEVICE, {"reason": "registered"}))
        clock.advance(5)
    bus.publish(Event("device.offline", DEVICE, {"reason": "keepalive timeout"}))
    await until(lambda: (r := alarm_rows(sqlite_engine, type="health.flapping")) and r[0]["count"] == 4,
                what="the flapping alarm counting offlines")
    offline = alarm_rows(sqlite_engine, type="health.offline")
    # the first two offlines each raised an alarm that the next online cleared (and resolved: nobody
    # had taken it on); the third started flapping, and no offline alarm was raised after that
    assert len(offline) == 2 and {r["state"] for r in offline} == {"resolved"}
    assert centre.flap.is_flapping(DEVICE)
    clock.advance(121)  # no transition for flap_stable_s; the device is offline
    await until(lambda: alarm_rows(sqlite_engine, type="health.flapping")[0]["state"] == "resolved",
                what="the flapping alarm cleared")
    flap_row = alarm_rows(sqlite_engine, type="health.flapping")[0]
    assert flap_row["resolution"] == "cleared" and flap_row["cleared_at"] is not None
    after = await until(lambda: [r for r in alarm_rows(sqlite_engine, type="health.offline") if r["state"] == "open"],
                        what="a normal offline alarm after flapping")
    assert "after flapping" in after[0]["title"]


async def test_vqd_fault_and_clear(make_centre, sqlite_engine):
    centre, bus = await make_centre()
    bus.publish(Event("vqd.fault", CHANNEL, {"type": "blur", "score": 0.31, "severity": "major"}))
    (row,) = await until(lambda: alarm_rows(sqlite_engine), what="the vqd alarm")
    assert (row["type"], row["source"], row["priority"], row["state"]) == ("vqd.blur", "vqd", 2, "open")
    bus.publish(Event("vqd.cleared", CHANNEL, {"type": "frozen"}))  # another fault: no effect
    bus.publish(Event("vqd.cleared", CHANNEL, {"type": "blur"}))
    await until(lambda: alarm_rows(sqlite_engine)[0]["state"] == "resolved", what="auto-resolved")
    assert alarm_rows(sqlite_engine)[0]["resolution"] == "cleared"


async def test_acknowledged_alarm_stays_when_its_condition_clears(make_centre, sqlite_engine):
    from camgrid.ops.alarms import workflow

    centre, bus = await make_centre()
    bus.publish(Event("device.offline", DEVICE, {"reason": "keepalive timeout"}))
    (row,) = await until(lambda: alarm_rows(sqlite_engine), what="offline alarm")
    workflow.acknowledge(sqlite_engine, row["id"], "op1", settings=centre.s)
    bus.publish(Event("device.online", DEVICE, {"reason": "registered"}))
    await until(lambda: alarm_rows(sqlite_engine)[0]["cleared_at"] is not None, what="cleared")
    assert alarm_rows(sqlite_engine)[0]["state"] == "acknowledged"


async def test_events_written_straight_to_the_table_are_read_once(make_centre, sqlite_engine):
    centre, bus = await make_centre(table_poll_s=0.05)
    with sqlite_engine.begin() as conn:  # history before the first start is not replayed
        conn.execute(events.insert(), [event_row(Event("recording.gap", CHANNEL2, {"cause": "old"}))])
    await until(lambda: sqlite_engine.connect().execute(select(alarm_sources)).first(), what="the tail's start position")
    gap = Event("recording.gap", CHANNEL, {"device_id": DEVICE, "cause": "media node killed"})
    with sqlite_engine.begin() as conn:
        conn.execute(events.insert(), [event_row(gap)])
        conn.execute(events.insert(), [event_row(Event("recording.low_space", "node-a", {"severity": "critical"}))])
    await until(lambda: len(alarm_rows(sqlite_engine)) == 2, what="alarms from the table")
    # the same fact on the bus and (as the event recorder writes it) in the table counts once
    failed = Event("recording.write_failed", CHANNEL, {"cause": "disk full"}, datetime.now(UTC))
    bus.publish(failed)
    await until(lambda: alarm_rows(sqlite_engine, type="recording.write_failed"), what="write_failed from the bus")
    with sqlite_engine.begin() as conn:
        conn.execute(events.insert(), [event_row(failed)])
        conn.execute(events.insert(), [event_row(Event("recording.gap", CHANNEL, {"cause": "again"}))])
    await until(lambda: alarm_rows(sqlite_engine, type="recording.gap")[0]["count"] == 2, what="the next table row")
    assert alarm_rows(sqlite_engine, type="recording.write_failed")[0]["count"] == 1
    assert not alarm_rows(sqlite_engine, channel_id=CHANNEL2)


class FakePlans:
    """Stands in for RecordingPlans (needs SIP devices and a media node): records trigger calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    async def trigger_event(self, channel_id: str, alarm: dict) -> str:
        self.calls.append((channel_id, alarm))
        return "triggered"


async def test_linkage_triggers_event_recording_on_the_rule_channels(make_centre, sqlite_engine):
    plans = FakePlans()
    centre, bus = await make_centre(recording_plans=plans, linkage=[
        {"types": ["vqd.*"], "actions": ["record", "bookmark"], "record_channels": [CHANNEL2], "max_priority": 3},
        {"types": ["alarm.*"], "actions": ["record"]}])
    bus.publish(Event("vqd.fault", CHANNEL, {"type": "occlusion", "severity": "minor"}))
    bus.publish(Event("vqd.fault", CHANNEL, {"type": "occlusion", "severity": "minor"}))  # a repeat: no second trigger
    bus.publish(Event("vqd.fault", CHANNEL, {"type": "noise", "severity": "info"}))  # priority 4: no rule
    bus.publish(device_alarm())  # its own channel is left to the recording plans
    await until(lambda: len(alarm_rows(sqlite_engine)) == 3, what="three alarms")
    await until(lambda: plans.calls, what="the trigger")
    assert [(c, a["type"]) for c, a in plans.calls] == [(CHANNEL2, "vqd.occlusion")]
    assert centre.collect()["alarm_linkage_recordings_total"] == {"triggered": 1}


async def test_database_outage_loses_nothing(make_centre, sqlite_engine):
    centre, bus = await make_centre()
    with sqlite_engine.begin() as conn:
        conn.execute(text("ALTER TABLE alarms RENAME TO alarms_away"))
    for i in range(20):
        bus.publish(device_alarm(channel=f"3402000000131{i:07d}"))
    await until(lambda: centre.write_failures > 0, what="a failed write")
    with sqlite_engine.begin() as conn:
        conn.execute(text("ALTER TABLE alarms_away RENAME TO alarms"))
    await until(lambda: len(alarm_rows(sqlite_engine)) == 20, timeout=60, what="every alarm after the outage")
    assert centre.events_dropped == 0


async def test_a_flood_does_not_block_the_publisher(make_centre, sqlite_engine):
    centre, bus = await make_centre()
    for _ in range(10_000):
        bus.publish(device_alarm())
    # publish() returned 10,000 times with the centre only taking note (its intake runs inside
    # publish and buffers); nothing was classified or written to the database on the way
    assert centre.events_seen == 10_000
    assert alarm_rows(sqlite_engine) == []
    await until(lambda: (r := alarm_rows(sqlite_engine)) and r[0]["count"] == 10_000, timeout=120, what="one alarm, 10k")
    assert len(alarm_rows(sqlite_engine)) == 1
    assert centre.events_dropped == 0 and all(sub.dropped == 0 for sub in bus._subs)
    assert centre.collect()["alarm_repeats_total"] == 9_999


# -- garbage ------------------------------------------------------------------------------------------

_ENGINE: dict[str, object] = {}


def _garbage_engine():
    if "engine" not in _ENGINE:
        _ENGINE["engine"] = open_store(f"sqlite:///{Path(tempfile.mkdtemp()) / 'garbage.db'}")
    return _ENGINE["engine"]


_value = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40) | st.binary(max_size=8),
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                      max_leaves=10)
_event = st.builds(
    Event,
    kind=st.sampled_from(["alarm.device", "device.offline", "device.online", "vqd.fault", "vqd.cleared", "channel.off",
                          "channel.on", "media.stream_ended", "recording.gap", "recording.low_space", "x"]),
    subject=st.one_of(st.text(max_size=90), st.integers(), st.none()),
    data=st.one_of(st.dictionaries(st.sampled_from(["device_id", "AlarmPriority", "AlarmMethod", "Info.AlarmType", "type",
                                                    "severity", "score", "reason", "cause", "message"]) | st.text(max_size=5),
                                   _value, max_size=6), _value),
    at=st.one_of(st.datetimes(), st.datetimes(timezones=st.just(UTC))),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_event, min_size=1, max_size=12))
def test_garbage_event_data_never_raises_out_of_the_centre(batch):
    engine = _garbage_engine()
    centre = AlarmCentre(Settings(), engine, bus=None, clock=lambda: 0.0)  # type: ignore[arg-type]
    items = [item for event in batch for item in centre.classify(event)]
    assert centre.event_errors == 0
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            store.apply(conn, items, auto_resolve=["health.*"])
        finally:
            trans.rollback()
