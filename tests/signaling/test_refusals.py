"""`sip.refused` events (camgrid/signaling/refusals.py): an unknown device ID knocking shows in
the event log with its address, once per ID and reason per interval, and a spray of made-up IDs
cannot flood the log."""

from __future__ import annotations

import asyncio
import json

from conftest import sim_for, wait_for
from sqlalchemy import select

from camgrid.bus import Event
from camgrid.signaling.refusals import RefusalLog
from camgrid.sim.devices import generate
from camgrid.store.tables import events


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Bus:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, event: Event) -> None:
        self.events.append(event)


def test_once_per_id_and_reason_per_interval():
    bus, clock = Bus(), Clock()
    log = RefusalLog(bus, interval_s=600, clock=clock)
    assert log.note("34020000001320000009", "unknown", "10.0.0.5:5060")
    assert not log.note("34020000001320000009", "unknown", "10.0.0.5:5060")  # its retry a few seconds later
    assert log.note("34020000001320000009", "no_secret", "10.0.0.5:5060")  # another reason is news
    assert not log.note("34020000001320000009", "bad_credentials", "10.0.0.5:5060")  # has its own events
    clock.now += 600
    assert log.note("34020000001320000009", "unknown", "10.0.0.6:5060")
    assert [(e.kind, e.subject, e.data) for e in bus.events] == [
        ("sip.refused", "34020000001320000009", {"remote_addr": "10.0.0.5:5060", "reason": "unknown"}),
        ("sip.refused", "34020000001320000009", {"remote_addr": "10.0.0.5:5060", "reason": "no_secret"}),
        ("sip.refused", "34020000001320000009", {"remote_addr": "10.0.0.6:5060", "reason": "unknown"}),
    ]
    assert log.suppressed == 1


def test_a_spray_of_made_up_ids_is_capped_per_second_and_in_memory():
    bus, clock = Bus(), Clock()
    log = RefusalLog(bus, per_second=10, remember=50, clock=clock)
    for second in range(3):
        for n in range(1000):
            log.note(f"3402000000132{second:03d}{n:04d}", "unknown", "203.0.113.9:5060")
        clock.now += 1
    assert len(bus.events) == 30 and log.suppressed == 2970
    assert len(log._last) == 30  # under `remember`
    for n in range(100):
        clock.now += 1
        log.note(f"34020000001329{n:06d}", "unknown", "203.0.113.9:5060")
    assert len(log._last) == 50  # the oldest forgotten first


async def test_an_unknown_device_leaves_its_id_and_address_in_the_event_log(platform):
    strangers = generate(1, 1, seed="stranger", first_serial=700)
    sim = sim_for(platform, strangers)
    await sim.start(run_devices=False)
    try:
        dev = sim.devices[strangers[0].id]
        for _ in range(3):  # a device retrying
            assert await dev.register() is False
        assert platform.signaling.registrar.failures["unknown"] == 3

        def stored():
            with platform.engine.connect() as conn:
                return conn.execute(select(events.c.subject, events.c.data).where(events.c.kind == "sip.refused")).all()

        rows = await wait_for(stored)
        await asyncio.sleep(0.3)  # a second or third event would have been written by now
        rows = stored()
        assert len(rows) == 1 and rows[0][0] == strangers[0].id
        data = rows[0][1] if isinstance(rows[0][1], dict) else json.loads(rows[0][1])
        assert data["reason"] == "unknown" and data["remote_addr"].startswith("127.0.0.1:")
    finally:
        await sim.stop()
