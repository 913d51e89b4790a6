"""Flap state across a restart (issue 5): the detector is seeded at start from the open
flapping alarms and the device transitions in the events table, so a flapping alarm open at the
restart clears after flap_stable_s of quiet, offlines before the restart still count, and the
downtime is never taken for quiet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alarm_helpers import DEVICE, FakeClock, alarm_settings, until
from sqlalchemy import select, update

from camgrid.bus import Event, MemoryBus
from camgrid.governance.event_log import EventRecorder, event_row
from camgrid.ops.alarms import flap, store
from camgrid.ops.alarms.centre import AlarmCentre
from camgrid.ops.alarms.rules import Rules
from camgrid.registry.devices import add_device
from camgrid.store.tables import alarms, devices, events

DEVICE2 = "34020000001180000002"


def flapping_rows(engine):
    with engine.connect() as conn:
        return [store.alarm_dict(r) for r in conn.execute(
            select(alarms).where(alarms.c.type == "health.flapping").order_by(alarms.c.id)).mappings()]


def offline_rows(engine):
    with engine.connect() as conn:
        return [store.alarm_dict(r) for r in conn.execute(
            select(alarms).where(alarms.c.type == "health.offline").order_by(alarms.c.id)).mappings()]


# -- the detector ---------------------------------------------------------------------------------

def test_restored_flapping_device_clears_after_the_rest_of_its_quiet():
    clock = FakeClock()
    det = flap.FlapDetector(threshold=3, window_s=60, stable_s=120, clock=clock)
    det.restore("d", flapping=True, online=False, offline_ages=[5, 20, 30], quiet_s=100)
    assert det.is_flapping("d") and det.offline_count("d") == 3
    assert det.transition("d", online=True) == flap.FLAPPING  # still suppressed
    clock.advance(119)
    assert det.tick() == []  # the transition just now restarted the quiet
    clock.advance(1)
    assert det.tick() == [("d", True)]

    det.restore("e", flapping=True, online=False, quiet_s=100)
    clock.advance(19)
    assert det.tick() == []
    clock.advance(1)
    assert det.tick() == [("e", False)]


def test_restored_offlines_count_toward_the_threshold_within_the_window_only():
    clock = FakeClock()
    det = flap.FlapDetector(threshold=3, window_s=60, stable_s=120, clock=clock)
    det.restore("d", flapping=False, online=True, offline_ages=[10, 50, 70, 500])  # two inside the window
    assert det.offline_count("d") == 2 and not det.is_flapping("d")
    assert det.transition("d", online=False) == flap.STARTED
    det.restore("q", flapping=False, online=True, offline_ages=[61, 90])
    assert det.offline_count("q") == 0 and len(det) == 1  # nothing to keep
    clock.advance(11)
    det.restore("r", flapping=False, online=True, offline_ages=[59])
    clock.advance(2)
    det.tick()
    assert det.offline_count("r") == 0  # aged out of the window like any other offline


# -- the centre, with the real bus, event recorder and SQLite ---------------------------------------

async def test_flapping_alarm_open_at_a_restart_clears_when_the_device_stays_quiet(sqlite_engine):
    settings = alarm_settings(flap_threshold=3, flap_window_s=60, flap_stable_s=120)
    clock = FakeClock()
    bus = MemoryBus()
    recorder = EventRecorder(sqlite_engine, bus, interval_s=0.05)
    centre = AlarmCentre(settings, sqlite_engine, bus, clock=clock)
    await recorder.start()
    await centre.start()
    await bus.start()
    for _ in range(4):
        bus.publish(Event("device.offline", DEVICE, {"reason": "keepalive timeout"}))
        bus.publish(Event("device.online", DEVICE, {"reason": "registered"}))
    def state(c: AlarmCentre) -> tuple:
        return (flapping_rows(sqlite_engine), offline_rows(sqlite_engine), c.events_seen, c.write_failures,
                c.last_error, recorder.written, recorder.write_failures)

    await until(lambda: (r := flapping_rows(sqlite_engine)) and r[0]["count"] == 2, what="flapping alarm",
                state=lambda: state(centre))
    await centre.stop()
    await bus.stop()
    await recorder.stop()  # everything on the bus is now in the events table

    clock2 = FakeClock(50_000.0)  # a new process: another monotonic origin
    bus2 = MemoryBus()
    centre2 = AlarmCentre(settings, sqlite_engine, bus2, clock=clock2)
    await centre2.start()
    await bus2.start()
    try:
        assert centre2.flap.is_flapping(DEVICE) and centre2.flap_restored == 1
        assert centre2.collect()["alarm_devices_flap_restored"] == 1
        # still flapping after the restart: another offline adds to the flapping alarm, no offline alarm
        bus2.publish(Event("device.offline", DEVICE, {"reason": "keepalive timeout"}))
        bus2.publish(Event("device.online", DEVICE, {"reason": "registered"}))
        await until(lambda: flapping_rows(sqlite_engine)[0]["count"] == 3, what="the offline counted as flapping",
                    state=lambda: state(centre2))
        assert len(offline_rows(sqlite_engine)) == 2  # the two before flapping started, both resolved
        # then quiet: after flap_stable_s the alarm clears (and, nobody took it on, is resolved)
        clock2.advance(121)
        await until(lambda: flapping_rows(sqlite_engine)[0]["state"] == "resolved", what="the flapping alarm cleared",
                    state=lambda: (state(centre2), centre2.flap.is_flapping(DEVICE), clock2.now))
        row = flapping_rows(sqlite_engine)[0]
        assert row["resolution"] == "cleared" and row["cleared_at"] is not None
        assert not centre2.flap.is_flapping(DEVICE)
        assert [r["state"] for r in offline_rows(sqlite_engine)] == ["resolved", "resolved"]  # it ended online
    finally:
        await centre2.stop()
        await bus2.stop()


def _raise_flapping(engine, device_id: str, at: datetime) -> None:
    candidate = Rules(alarm_settings().alarms).flapping(device_id, at, 3, 60)
    with engine.begin() as conn:
        store.apply(conn, [candidate])


def _events(engine, *rows: tuple[str, str, datetime]) -> None:
    with engine.begin() as conn:
        conn.execute(events.insert(), [event_row(Event(kind, subject, {}, at)) for kind, subject, at in rows])


def test_quiet_seen_before_the_stop_counts_and_the_downtime_does_not(sqlite_engine):
    now = datetime.now(UTC)
    ago = lambda s: now - timedelta(seconds=s)  # noqa: E731
    settings = alarm_settings(flap_threshold=3, flap_window_s=300, flap_stable_s=600)
    _raise_flapping(sqlite_engine, DEVICE, ago(560))
    # the device's transitions: flapping until 500 s ago (online last); the platform recorded an
    # unrelated event 200 s ago and then was down: 300 s of quiet were seen, 200 s were not
    _events(sqlite_engine, ("device.offline", DEVICE, ago(560)), ("device.online", DEVICE, ago(500)),
            ("sip.ban", "10.0.0.9", ago(200)))
    clock = FakeClock()
    centre = AlarmCentre(settings, sqlite_engine, MemoryBus(), clock=clock)
    assert centre.restore_flap(now) == 1
    assert centre.flap.is_flapping(DEVICE) and centre.flap.offline_count(DEVICE) == 0  # 560 s: out of the window
    clock.advance(299)
    assert centre.flap.tick() == []
    clock.advance(1)
    assert centre.flap.tick() == [(DEVICE, True)]


def test_stored_status_and_last_seen_are_used_and_cleared_flaps_reset_the_count(sqlite_engine):
    now = datetime.now(UTC)
    ago = lambda s: now - timedelta(seconds=s)  # noqa: E731
    settings = alarm_settings(flap_threshold=3, flap_window_s=300, flap_stable_s=600)
    _raise_flapping(sqlite_engine, DEVICE, ago(250))
    _events(sqlite_engine, ("device.offline", DEVICE, ago(250)), ("device.online", DEVICE, ago(240)),
            ("device.offline", DEVICE, ago(200)),
            # DEVICE2: flapped, its flapping cleared 100 s ago; one offline since then
            ("device.offline", DEVICE2, ago(280)), ("device.offline", DEVICE2, ago(270)),
            ("device.offline", DEVICE2, ago(260)), ("device.offline", DEVICE2, ago(50)))
    _raise_flapping(sqlite_engine, DEVICE2, ago(260))
    with sqlite_engine.begin() as conn:
        conn.execute(update(alarms).where(alarms.c.device_id == DEVICE2).values(
            cleared_at=ago(100), state="resolved", resolution="cleared", open_key=None))
    # DEVICE is stored offline and was last heard 20 s ago (the platform was up until then)
    add_device(sqlite_engine, DEVICE, "a-long-device-secret-1", "3402000000")
    with sqlite_engine.begin() as conn:
        conn.execute(update(devices).where(devices.c.id == DEVICE).values(status="offline", last_seen_at=ago(20)))
    clock = FakeClock()
    centre = AlarmCentre(settings, sqlite_engine, MemoryBus(), clock=clock)
    assert centre.restore_flap(now) == 2
    assert centre.flap.is_flapping(DEVICE) and centre.flap.offline_count(DEVICE) == 2
    assert not centre.flap.is_flapping(DEVICE2) and centre.flap.offline_count(DEVICE2) == 1
    clock.advance(600 - 180 - 1)  # 180 s of quiet seen (200 s ago .. 20 s ago)
    assert centre.flap.tick() == []
    clock.advance(1)
    assert centre.flap.tick() == [(DEVICE, False)]  # offline: the centre raises "offline after flapping"


async def test_a_database_that_refuses_at_start_only_loses_the_seeding(sqlite_engine, tmp_path):
    from camgrid.store.engine import make_engine

    broken = make_engine(f"sqlite:///{tmp_path / 'missing' / 'nowhere.db'}")
    centre = AlarmCentre(alarm_settings(), broken, MemoryBus(), clock=FakeClock())
    await centre.start()
    try:
        assert centre.flap_restored == 0 and len(centre.flap) == 0
    finally:
        await centre.stop()
