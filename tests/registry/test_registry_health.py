"""The online-state machine: fake clocks, a real database (SQLite and PostgreSQL), the memory bus."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from camgrid.bus import MemoryBus
from camgrid.config import HealthSettings
from camgrid.registry.devices import new_device_row
from camgrid.registry.health import REASON_RESTART, REASON_TIMEOUT, HealthTracker
from camgrid.store.tables import devices

BASE = datetime(2024, 5, 17, 6, 0, tzinfo=UTC)
IDS = [f"340200000013200{i:05d}" for i in range(10)]


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def wall(self) -> datetime:
        return BASE + timedelta(seconds=self.t)

    def advance(self, seconds: float) -> None:
        self.t += seconds


def settings(**kw) -> HealthSettings:
    # Background sweeps and last-seen flushes are driven by the tests, not by timers.
    return HealthSettings(**{"keepalive_interval_s": 60, "keepalive_count": 3, "sweep_interval_s": 3600,
                             "flush_interval_s": 3600, **kw})


def seed(engine, ids, **values) -> None:
    rows = [new_device_row(i) | values for i in ids]
    with engine.begin() as c:
        c.execute(devices.insert(), rows)


def db(engine) -> dict[str, dict]:
    with engine.connect() as c:
        return {r["id"]: dict(r) for r in c.execute(sa.select(devices.c.id, devices.c.status, devices.c.last_seen_at,
                                                              devices.c.status_changed_at)).mappings()}


def naive_utc(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo else dt


async def until(predicate, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


class Recorder:
    def __init__(self, bus: MemoryBus) -> None:
        self.events = []
        bus.subscribe("device.", self._on)

    async def _on(self, event) -> None:
        self.events.append(event)


@pytest.fixture
async def bus():
    b = MemoryBus()
    rec = Recorder(b)
    await b.start()
    b.recorder = rec
    yield b
    await b.stop()


async def make(engine, bus, clock, **kw) -> HealthTracker:
    tracker = HealthTracker(engine, bus, settings(**kw), clock=clock, wallclock=clock.wall)
    await tracker.start()
    return tracker


async def test_transitions_are_persisted_and_published(engine, bus):
    seed(engine, IDS[:3])
    clock = FakeClock()
    tracker = await make(engine, bus, clock)
    try:
        assert tracker.counts() == {"devices": 3, "online": 0, "offline": 3}
        tracker.registered(IDS[0])
        tracker.registered(IDS[1], keepalive_interval_s=10)  # its own interval: timeout 30 s
        assert tracker.is_online(IDS[0]) and tracker.counts()["online"] == 2
        await until(lambda: db(engine)[IDS[0]]["status"] == "online" and db(engine)[IDS[1]]["status"] == "online")
        assert naive_utc(db(engine)[IDS[0]]["status_changed_at"]) == naive_utc(clock.wall())
        clock.advance(31)
        assert tracker.sweep() == [IDS[1]]
        clock.advance(150)
        tracker.seen(IDS[0])  # keeps talking: stays online
        assert tracker.sweep() == []
        clock.advance(179)
        assert tracker.sweep() == [] and tracker.is_online(IDS[0])
        clock.advance(2)
        assert tracker.sweep() == [IDS[0]]
        tracker.unregistered(IDS[2], "never registered")  # already offline: no event
        await until(lambda: db(engine)[IDS[0]]["status"] == "offline" and db(engine)[IDS[1]]["status"] == "offline")
        await bus.drain()
        got = [(e.kind, e.subject, e.data["reason"]) for e in bus.recorder.events]
        assert got == [("device.online", IDS[0], "registered"), ("device.online", IDS[1], "registered"),
                       ("device.offline", IDS[1], REASON_TIMEOUT), ("device.offline", IDS[0], REASON_TIMEOUT)]
        assert bus.recorder.events[-1].data["silent_s"] == 181.0
        assert tracker.counts() == {"devices": 3, "online": 0, "offline": 3}
    finally:
        await tracker.stop()


async def test_seen_writes_nothing_and_last_seen_is_batched(engine, bus):
    seed(engine, IDS)
    clock = FakeClock()
    tracker = await make(engine, bus, clock)
    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda conn, cur, stmt, *a: statements.append(stmt))
    try:
        for i in IDS:
            tracker.registered(i)
        await until(lambda: all(r["status"] == "online" for r in db(engine).values()))
        assert tracker.pending_writes == 0  # the transitions stored the last-seen times too
        clock.advance(HealthSettings().last_seen_resolution_s)
        statements.clear()
        for n in range(20000):
            clock.advance(0.001)
            tracker.seen(IDS[n % len(IDS)])
        await asyncio.sleep(0.1)  # give the writer every chance to misbehave
        assert statements == []
        seen_at = clock.wall()
        assert await tracker.flush()
        updates = [s for s in statements if s.lstrip().upper().startswith("UPDATE")]
        assert len(updates) == 1 and "last_seen_at" in updates[0]  # one executemany for all devices
        stored = db(engine)
        assert naive_utc(stored[IDS[-1]]["last_seen_at"]) == naive_utc(seen_at)
        assert naive_utc(stored[IDS[0]]["last_seen_at"]) < naive_utc(seen_at)
        statements.clear()
        assert await tracker.flush() and statements == []  # nothing new, nothing written
    finally:
        await tracker.stop()


async def test_stored_last_seen_is_rewritten_once_per_resolution_not_per_keepalive(engine, bus):
    seed(engine, IDS[:1])
    clock = FakeClock()
    tracker = await make(engine, bus, clock, last_seen_resolution_s=300)
    writes: list[str] = []
    sa.event.listen(engine, "before_cursor_execute",
                    lambda conn, cur, stmt, *a: writes.append(stmt) if stmt.startswith("UPDATE") and "last_seen_at" in stmt else None)
    try:
        tracker.registered(IDS[0])
        assert await tracker.flush()
        assert len(writes) == 1  # the online transition, with the exact last-seen time
        registered_at = clock.wall()
        for _ in range(4):  # four keepalives, 60 s apart: within the resolution, nothing written
            clock.advance(60)
            tracker.seen(IDS[0])
            assert await tracker.flush()
        assert len(writes) == 1
        assert naive_utc(db(engine)[IDS[0]]["last_seen_at"]) == naive_utc(registered_at)
        clock.advance(60)  # the fifth is 300 s after the stored time: written
        tracker.seen(IDS[0])
        assert await tracker.flush()
        assert len(writes) == 2
        assert naive_utc(db(engine)[IDS[0]]["last_seen_at"]) == naive_utc(clock.wall())
        clock.advance(200)  # silence, then a timeout: the offline write stores the exact last-seen time
        tracker.seen(IDS[0])
        last_talk = clock.wall()
        clock.advance(181)
        assert tracker.sweep() == [IDS[0]]
        assert await tracker.flush()
        stored = db(engine)[IDS[0]]
        assert stored["status"] == "offline" and naive_utc(stored["last_seen_at"]) == naive_utc(last_talk)
    finally:
        await tracker.stop()


async def test_a_silent_device_comes_back_when_it_talks(engine, bus):
    seed(engine, IDS[:1])
    clock = FakeClock()
    tracker = await make(engine, bus, clock)
    try:
        tracker.registered(IDS[0])
        clock.advance(200)
        assert tracker.sweep() == [IDS[0]]
        tracker.seen(IDS[0])
        assert tracker.is_online(IDS[0])
        tracker.unregistered(IDS[0], "unregistered by the device")
        assert not tracker.is_online(IDS[0])
        clock.advance(1000)
        assert tracker.sweep() == []
        await tracker.flush()
        assert db(engine)[IDS[0]]["status"] == "offline"
        await bus.drain()
        reasons = [(e.kind, e.data["reason"]) for e in bus.recorder.events]
        assert reasons[-2:] == [("device.online", "message received"), ("device.offline", "unregistered by the device")]
        tracker.forget(IDS[0])
        assert tracker.counts() == {"devices": 0, "online": 0, "offline": 0}
    finally:
        await tracker.stop()


@pytest.mark.parametrize("grace", [0, 500])
async def test_restart_grace(engine, bus, grace):
    seed(engine, IDS[:3], status="online")
    seed(engine, IDS[3:4], status="offline")
    clock = FakeClock()
    tracker = await make(engine, bus, clock, restart_grace_s=grace)
    limit = grace or 180
    try:
        assert tracker.counts() == {"devices": 4, "online": 3, "offline": 1}
        # IDS[0] keeps sending keepalives through and after the restart; IDS[1] and IDS[2] stay silent.
        for _ in range(int(limit // 50) + 2):
            clock.advance(50)
            tracker.seen(IDS[0])
            went = tracker.sweep()
            if clock.t - 1000 < limit:
                assert went == [], clock.t
        assert tracker.is_online(IDS[0])
        assert not tracker.is_online(IDS[1]) and not tracker.is_online(IDS[2])
        await tracker.flush()
        stored = db(engine)
        assert stored[IDS[0]]["status"] == "online" and stored[IDS[1]]["status"] == "offline"
        await bus.drain()
        offline = {e.subject: e.data["reason"] for e in bus.recorder.events if e.kind == "device.offline"}
        assert offline == {IDS[1]: REASON_RESTART, IDS[2]: REASON_RESTART}
        assert not [e for e in bus.recorder.events if e.kind == "device.online"]  # no flapping at start
    finally:
        await tracker.stop()


async def test_database_outage_keeps_everything_and_retries(engine, bus, monkeypatch):
    seed(engine, IDS[:4])
    clock = FakeClock()
    tracker = await make(engine, bus, clock)
    real = tracker.write_batch
    failures = {"left": 3, "calls": 0}

    def flaky(transitions, seen):
        failures["calls"] += 1
        if failures["left"] > 0:
            failures["left"] -= 1
            raise sa.exc.OperationalError("UPDATE devices", {}, Exception("database is down"))
        return real(transitions, seen)

    monkeypatch.setattr(tracker, "write_batch", flaky)
    try:
        tracker.registered(IDS[0])
        tracker.registered(IDS[1])
        await until(lambda: failures["calls"] >= 1)
        tracker.unregistered(IDS[1], "gone")  # a newer fact for the same device replaces the queued one
        tracker.registered(IDS[2])
        assert await tracker.flush() is False  # the writer is in its backoff; a direct flush fails too
        assert tracker.write_failures >= 1 and "database is down" in tracker.last_write_error
        # The writer retries with backoff; nothing was dropped and the tracker kept working.
        await until(lambda: db(engine)[IDS[2]]["status"] == "online", timeout=10)
        stored = db(engine)
        assert stored[IDS[0]]["status"] == "online" and stored[IDS[1]]["status"] == "offline"
        assert tracker.is_online(IDS[0]) and tracker.counts()["online"] == 2
        assert await tracker.flush()
        assert db(engine)[IDS[0]]["last_seen_at"] is not None
    finally:
        await tracker.stop()


async def test_stop_flushes_pending_writes(engine, bus):
    seed(engine, IDS[:2])
    clock = FakeClock()
    tracker = await make(engine, bus, clock)
    tracker.registered(IDS[0])
    clock.advance(5)
    tracker.seen(IDS[0])
    await tracker.stop()
    stored = db(engine)[IDS[0]]
    assert stored["status"] == "online" and naive_utc(stored["last_seen_at"]) == naive_utc(clock.wall())


async def test_100k_devices(sqlite_engine):
    """Scale figures (printed, not asserted): 100k devices registering, keepalives, sweeps, write-back."""
    engine, n = sqlite_engine, 100_000
    ids = [f"3402{i:016d}" for i in range(n)]
    rows = [new_device_row(i) for i in ids]
    with engine.begin() as c:
        c.execute(devices.insert(), rows)
    bus = MemoryBus()
    clock = FakeClock()
    tracker = HealthTracker(engine, bus, settings(), clock=clock, wallclock=clock.wall)
    await tracker.start()
    try:
        t0 = time.perf_counter()
        for i in ids:
            tracker.registered(i)
        t1 = time.perf_counter()
        assert await tracker.flush(last_seen=False)
        t2 = time.perf_counter()
        clock.advance(10)
        for i in ids:
            tracker.seen(i)
        t3 = time.perf_counter()
        assert tracker.sweep() == []
        t4 = time.perf_counter()
        clock.advance(175)  # entries are due at +180 s; everyone spoke at +10 s, half again at +185 s
        for i in ids[: n // 2]:
            tracker.seen(i)
        clock.advance(4)  # +189 s: every entry is due, no device is silent yet
        t5 = time.perf_counter()
        went = tracker.sweep()
        t6 = time.perf_counter()
        assert went == []
        clock.advance(11)
        t7 = time.perf_counter()
        went = tracker.sweep()
        t8 = time.perf_counter()
        assert len(went) == n // 2 and tracker.counts()["online"] == n // 2
        assert await tracker.flush()
        t9 = time.perf_counter()
        print(f"\n100k devices: registered() {t1 - t0:.3f}s; write 100k transitions {t2 - t1:.3f}s; "
              f"seen() x100k {t3 - t2:.3f}s ({(t3 - t2) / n * 1e6:.2f} us each); sweep with nothing due {(t4 - t3) * 1e3:.3f} ms; "
              f"sweep re-scheduling 100k due entries {t6 - t5:.3f}s; sweep marking 50k offline {t8 - t7:.3f}s; "
              f"write 50k transitions + 100k last-seen {t9 - t8:.3f}s")
        assert sum(1 for r in db(engine).values() if r["status"] == "online") == n // 2
    finally:
        await tracker.stop()


# -- the array/bucket state machine against a plain model (no database: hot path and sweep only) ---
from hypothesis import example, given, settings as hsettings, strategies as st  # noqa: E402

from camgrid.registry.health import BUCKET_S  # noqa: E402

_HOPS = st.lists(st.one_of(
    st.tuples(st.just("registered"), st.integers(0, 4), st.sampled_from([None, 5, 60])),
    st.tuples(st.just("seen"), st.integers(0, 4)),
    st.tuples(st.just("unregistered"), st.integers(0, 4)),
    st.tuples(st.just("forget"), st.integers(0, 4)),
    st.tuples(st.just("interval"), st.integers(0, 4), st.sampled_from([None, 1, 5, 60]), st.sampled_from([None, 1, 2, 3])),
    st.tuples(st.just("wait"), st.one_of(st.floats(0, 200), st.sampled_from([0.05, 0.2, 0.26, 0.5, 15, 29.8, 30.0, 30.3]))),
    st.tuples(st.just("sweep")),
), max_size=60)


class _NullBus:
    def publish(self, event) -> None:
        pass


@hsettings(max_examples=300, deadline=None)
@given(_HOPS)
@example([("registered", 0, None), ("wait", 30.3), ("sweep",)])  # overdue by just over one bucket
@example([("registered", 0, None), ("wait", 29.8), ("sweep",), ("seen", 0), ("wait", 30.0), ("sweep",)])
@example([("registered", 0, None), ("interval", 0, 1, None), ("wait", 3.3), ("sweep",)])  # a shorter interval takes effect
def test_sweep_matches_a_model(ops):
    clock = FakeClock()
    tracker = HealthTracker(None, _NullBus(), settings(keepalive_interval_s=10, keepalive_count=3), clock=clock,
                            wallclock=clock.wall)
    last: dict[str, float] = {}  # online device → when it last spoke
    interval: dict[str, int] = {}
    count: dict[str, int] = {}

    def deadline(d: str) -> float:
        return last[d] + interval.get(d, 10) * count.get(d, 3)

    for op in ops:
        kind = op[0]
        dev = IDS[op[1]] if kind in ("registered", "seen", "unregistered", "forget", "interval") else None
        if kind == "registered":
            tracker.registered(dev, keepalive_interval_s=op[2])
            if op[2]:
                interval[dev] = op[2]
            last[dev] = clock.t
        elif kind == "seen":
            tracker.seen(dev)
            last[dev] = clock.t
        elif kind == "unregistered":
            tracker.unregistered(dev, "bye")
            last.pop(dev, None)
        elif kind == "forget":
            tracker.forget(dev)
            last.pop(dev, None)
            interval.pop(dev, None)
            count.pop(dev, None)
        elif kind == "interval":
            tracker.set_keepalive(dev, interval_s=op[2], count=op[3])
            for table, value in ((interval, op[2]), (count, op[3])):
                if value:
                    table[dev] = value
                else:
                    table.pop(dev, None)
        elif kind == "wait":
            clock.advance(op[1])
        else:
            went = set(tracker.sweep())
            assert went <= set(last)  # only online devices go offline
            for d in list(last):
                if deadline(d) + BUCKET_S <= clock.t:  # overdue by a whole bucket: must have gone
                    assert d in went
                if d in went:
                    assert deadline(d) <= clock.t  # never before its time
                    del last[d]
        for d in IDS:
            assert tracker.is_online(d) == (d in last)
        assert tracker.counts()["online"] == len(last)
