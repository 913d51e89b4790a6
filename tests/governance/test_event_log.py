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


async def test_recorder_survives_a_failing_database(sqlite_engine):
    bus = MemoryBus()
    recorder = EventRecorder(sqlite_engine, bus, interval_s=0.05)
    await recorder.start()
    await bus.start()
    sqlite_engine.dispose()
    with sqlite_engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE events")
    bus.publish(Event("device.online", "x"))
    await bus.drain()
    await asyncio.sleep(0.2)
    await bus.stop()
    await recorder.stop()
    assert recorder.failed == 1 and recorder.written == 0
