"""The running service: facts from a real in-process bus, today so far, the day closed at
midnight and stored, a database that refuses the write (retried, nothing lost), and a
registry change picked up from a catalog event."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from rates_helpers import C1, C2, C3, D1, D2, add_events, local, seed_registry
from sqlalchemy import select, text

from camgrid.bus import Event, MemoryBus
from camgrid.config import RatesSettings
from camgrid.ops.rates.service import RatesService
from camgrid.store.tables import channels, rates_channel_daily

H = 3600.0


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


async def until(predicate, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def stored_days(engine) -> dict[tuple[date, str], tuple[float, float, float]]:
    with engine.connect() as conn:
        return {(r.day, r.channel_id): (r.observed_s, r.online_s, r.intact_s)
                for r in conn.execute(select(rates_channel_daily))}


@pytest.fixture
async def running(engine):
    seed_registry(engine, d1_status="online", d2_status="online")
    add_events(engine, [(local(5, 9), "device.online", D1, {}), (local(5, 9), "device.online", D2, {})])
    bus = MemoryBus()
    await bus.start()
    clock = Clock(local(5, 12).timestamp())
    service = RatesService(engine, bus, RatesSettings(timezone="Asia/Shanghai"), clock=clock, tick_s=0.1)
    await service.start()
    try:
        yield service, bus, clock
    finally:
        await service.stop()
        await bus.stop()


def figures_of(rows, point_class: int) -> dict:
    return next(r for r in rows if r["dimension"] == "all" and r["point_class"] == point_class)


async def test_facts_from_the_bus_show_in_today_so_far(running):
    service, bus, clock = running
    bus.publish(Event("device.offline", D2, {"reason": "keepalive timeout"}, local(5, 13)))
    bus.publish(Event("vqd.fault", C2, {"type": "black_screen"}, local(5, 13)))
    await until(lambda: service.ledger.state_of(service.ledger.slot_of[C2]).faults == {"vqd:black_screen"})
    clock.t = local(5, 15).timestamp()
    day, rows = await service.today_groups()
    assert day == date(2026, 12, 5)
    one = figures_of(rows, 1)  # C1 (D1, up from 09:00) and C3 (D2, up 09:00-13:00), 15 h observed each
    assert one["observed_s"] == 30 * H and one["online_s"] == 6 * H + 4 * H
    two = figures_of(rows, 2)  # C2: online 6 h, intact only until 13:00
    assert (two["online_s"], two["intact_s"]) == (6 * H, 4 * H)


async def test_midnight_closes_the_day_and_stores_it(running, engine):
    service, bus, clock = running
    clock.t = local(6, 0, 1).timestamp()
    await until(lambda: service.days_closed == 1, timeout=5)  # the midnight timer, not an event
    await until(lambda: (date(2026, 12, 5), C1) in stored_days(engine))
    assert stored_days(engine)[(date(2026, 12, 5), C1)] == (24 * H, 15 * H, 15 * H)
    day, rows = await service.today_groups()
    assert day == date(2026, 12, 6) and figures_of(rows, 1)["online_s"] == 2 * 60.0  # 00:00-00:01, two channels


async def test_a_refused_write_is_retried_and_the_day_is_served_meanwhile(running, engine):
    service, bus, clock = running
    with engine.begin() as conn:  # the database refuses: the table is not there for a while
        conn.execute(text("ALTER TABLE rates_group_daily RENAME TO rates_group_daily_away"))
    try:
        bus.publish(Event("device.offline", D1, {}, local(6, 1)))  # an event of the next day closes the 5th
        await until(lambda: service.write_failures >= 1)
        assert date(2026, 12, 5) in service.unwritten_groups()
        assert (date(2026, 12, 5), C1) not in stored_days(engine)
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE rates_group_daily_away RENAME TO rates_group_daily"))
    await until(lambda: (date(2026, 12, 5), C1) in stored_days(engine), timeout=30)
    assert not service.unwritten_groups()
    assert stored_days(engine)[(date(2026, 12, 5), C3)] == (24 * H, 15 * H, 15 * H)


async def test_a_catalog_change_brings_new_channels_in_from_then(running, engine):
    service, bus, clock = running
    new = C3[:-1] + "9"
    with engine.begin() as conn:
        row = dict(conn.execute(select(channels).where(channels.c.id == C3)).mappings().one())
        row.pop("pk")
        conn.execute(channels.insert(), [{**row, "id": new}])
    bus.publish(Event("catalog.updated", D2, {"added": 1, "removed": 0, "updated": 0}, local(5, 14)))
    await until(lambda: new in service.ledger.slot_of)
    clock.t = local(5, 16).timestamp()
    totals = service.ledger.totals(clock.t)
    assert totals.observed[service.ledger.slot_of[new]] == 2 * H


async def test_a_restart_rebuilds_today_from_the_stored_events(engine):
    seed_registry(engine, d1_status="online", d2_status="online")
    add_events(engine, [(local(5, 9), "device.online", D1, {}), (local(5, 10), "device.offline", D1, {}),
                        (local(5, 11), "device.online", D1, {})])
    bus = MemoryBus()
    await bus.start()
    service = RatesService(engine, bus, RatesSettings(timezone="Asia/Shanghai"), clock=Clock(local(5, 12).timestamp()))
    await service.start()
    try:
        totals = service.ledger.totals(local(5, 12).timestamp())
        assert totals.online[service.ledger.slot_of[C1]] == 2 * H  # 09-10 and 11-12
    finally:
        await service.stop()
        await bus.stop()
