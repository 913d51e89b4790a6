"""EventRecorder: bus events land in the events table in batches."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import func, select

from camgrid.bus import Event, MemoryBus
from camgrid.governance.event_log import EventRecorder
from camgrid.store.tables import events


def _count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(events)).scalar_one()


async def test_recorder_writes_batches_and_flushes_on_stop(engine):
    bus = MemoryBus()
    recorder = EventRecorder(engine, bus, interval_s=0.1, batch_size=50)
    await recorder.start()
    await bus.start()
    bus.publish(Event("device.online", "34020000001320000001", {"addr": "10.0.0.1", "when": datetime(2024, 1, 1)}))
    for i in range(120):
        bus.publish(Event("sip.message", "34020000001320000002", {"i": i}))
    await bus.drain()
    for _ in range(50):
        if _count(engine) == 121:
            break
        await asyncio.sleep(0.05)
    assert _count(engine) == 121
    bus.publish(Event("device.offline", "34020000001320000001", {"reason": "timeout"}))
    await bus.stop()
    await recorder.stop()  # writes what is still buffered
    assert _count(engine) == 122 and recorder.written == 122
    with engine.connect() as conn:
        first = conn.execute(select(events).order_by(events.c.id)).mappings().first()
    assert first["kind"] == "device.online" and first["data"] == {"addr": "10.0.0.1", "when": "2024-01-01 00:00:00"}


async def test_recorder_keeps_events_while_the_database_is_down(sqlite_engine):
    bus = MemoryBus()
    recorder = EventRecorder(sqlite_engine, bus, interval_s=0.05)
    await recorder.start()
    await bus.start()
    with sqlite_engine.begin() as conn:  # the table disappears: every write fails
        conn.exec_driver_sql("ALTER TABLE events RENAME TO events_away")
    for i in range(3):
        bus.publish(Event("device.online", f"dev{i}"))
    await bus.drain()
    for _ in range(100):
        if recorder.write_failures >= 2:
            break
        await asyncio.sleep(0.05)
    assert recorder.write_failures >= 2 and recorder.written == 0 and recorder.buffered == 3
    with sqlite_engine.begin() as conn:  # the database is back
        conn.exec_driver_sql("ALTER TABLE events_away RENAME TO events")
    bus.publish(Event("device.offline", "dev0"))
    await bus.drain()
    for _ in range(100):
        if recorder.written == 4:
            break
        await asyncio.sleep(0.05)
    await bus.stop()
    await recorder.stop()
    assert recorder.written == 4 and recorder.dropped == 0
    with sqlite_engine.connect() as conn:
        kinds = [r[0] for r in conn.execute(select(events.c.kind).order_by(events.c.id))]
    assert kinds == ["device.online"] * 3 + ["device.offline"]


async def test_recorder_bounds_its_buffer_and_counts_what_it_drops(sqlite_engine):
    bus = MemoryBus()
    recorder = EventRecorder(sqlite_engine, bus, interval_s=0.05, max_buffer=5)
    await recorder.start()
    await bus.start()
    with sqlite_engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE events")
    for i in range(8):
        bus.publish(Event("sip.message", "x", {"i": i}))
    await bus.drain()
    assert recorder.buffered == 5 and recorder.dropped == 3
    await bus.stop()
    await recorder.stop()  # still no table: what is left is counted as dropped, not silently lost
    assert recorder.written == 0 and recorder.dropped == 8 and recorder.buffered == 0
