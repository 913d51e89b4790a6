"""AlarmCentre: the component that turns facts into alarms, de-duplicates them, suppresses
flapping, and announces what changed (bus, console stream, notifications, linkage).

The bus handler only appends to a buffer: it never touches the database, so a flood cannot
slow the publisher (signaling). A task takes the buffer in batches, classifies each event
(rules.py, flap.py; bad data is counted and skipped, never raised), and applies the batch in one
transaction off the event loop (store.apply), together with the bookmarks and outbox rows the
changes call for. When the database refuses, the batch is kept and retried with backoff; only
beyond `max_buffer` waiting events are the oldest dropped (counted). Events that media nodes
write straight to the events table (alarms.table_kinds) are read from there by position.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from camgrid.bus.memory import Event, EventBus
from camgrid.ops.alarms import flap as flapping
from camgrid.ops.alarms import linkage, outbox, store
from camgrid.ops.alarms.live import LiveHub
from camgrid.ops.alarms.model import UNRESOLVED, Candidate, Clear, Supersede
from camgrid.ops.alarms.notifier import Notifier
from camgrid.ops.alarms.rules import Rules
from camgrid.store.tables import alarms, devices, events

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
TICK_S = 1.0
COALESCE_S = 0.2  # how long a woken worker waits for more events before writing
TABLE_SOURCE = "events"
SEEN_ON_BUS = 10_000  # fingerprints of table kinds seen on the bus, so the table tail skips them
RESTORE_EVENTS = 200_000  # at most this many recent device transitions read to seed the flap detector
FLAPPING = "health.flapping"


class AlarmCentre:
    def __init__(self, settings: Any, engine: Engine, bus: EventBus, *, recording_plans: Any = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings  # camgrid.config.Settings
        self.s = settings.alarms
        self.platform_id = settings.sip.id
        self.engine = engine
        self.bus = bus
        self.recording_plans = recording_plans
        self.rules = Rules(self.s)
        self.flap = flapping.FlapDetector(self.s.flap_threshold, self.s.flap_window_s, self.s.flap_stable_s, clock)
        self.notifier = Notifier(engine, self.s)
        self.live = LiveHub()
        self._kinds = frozenset(self.rules.kinds)
        self._table_kinds = frozenset(self.s.table_kinds)
        self._buffer: deque[Event] = deque()
        self._pending: list[Candidate | Clear | Supersede] = []  # classified, waiting for the database
        self._seen: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()  # one batch at a time (the worker, stop(), tests)
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = False
        self._restored = False
        self._stopping = False
        self.flap_restored = 0  # devices whose flap state was seeded from the database at start
        # counters (/metrics)
        self.events_seen = 0
        self.events_dropped = 0
        self.event_errors = 0
        self.write_failures = 0
        self.changes: Counter[str] = Counter()
        self.repeats = 0
        self.linkage_results: Counter[str] = Counter()
        self.last_error: str | None = None

    # -- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._tasks:
            return
        if not self._subscribed:
            self.bus.subscribe_inline("", self._on_event)
            self._subscribed = True
        if not self._restored:  # once per process: after a stop/start in-process the detector still knows
            self._restored = True
            subscribed_at = datetime.now(UTC)  # later transitions come over the bus
            try:
                self.flap_restored = await asyncio.to_thread(self.restore_flap, subscribed_at)
            except Exception as exc:  # noqa: BLE001 - alarms still work, only the seeding is lost
                log.warning("alarm centre: could not read the flap state back (%s); flapping is counted from now", exc)
        self._stopping = False
        self._wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run(), name="alarm-centre")]
        if self._table_kinds:
            self._tasks.append(loop.create_task(self._tail_table(), name="alarm-centre-table"))
        await self.notifier.start()

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        with contextlib.suppress(Exception):
            await self.process()  # what is still buffered
        await self.notifier.stop()

    # -- intake (inside the bus's publish(): cheap, never blocks, never raises) -------------------------
    def _on_event(self, event: Event) -> None:
        kind = event.kind
        if kind not in self._kinds:
            return
        self.events_seen += 1
        if kind in self._table_kinds:
            self._remember(event)
        self._buffer.append(event)
        if len(self._buffer) > self.s.max_buffer:
            self._buffer.popleft()
            self.events_dropped += 1
            if self.events_dropped == 1 or self.events_dropped % 10_000 == 0:
                log.error("alarm centre: %d events waiting; dropping the oldest (%d so far)", self.s.max_buffer,
                          self.events_dropped)
        self._wake.set()

    def _remember(self, event: Event) -> None:
        self._seen[(event.kind, str(event.subject)[:64], _stamp(event.at))] = None
        while len(self._seen) > SEEN_ON_BUS:
            self._seen.popitem(last=False)

    # -- classification (pure parts in rules.py and flap.py) ------------------------------------------
    def classify(self, event: Event) -> list[Candidate | Clear | Supersede]:
        try:
            items: list[Any] = self.rules.evaluate(event.kind, event.subject, event.data, event.at)
            if event.kind in ("device.offline", "device.online") and items:
                items = self._flap(event, items)
            return items
        except Exception:  # noqa: BLE001 - bad data from one event must not stop the others
            self.event_errors += 1
            if self.event_errors == 1 or self.event_errors % 1000 == 0:
                log.exception("alarm centre: could not classify %s %r (%d so far)", event.kind, event.subject,
                              self.event_errors)
            return []

    def _flap(self, event: Event, items: list[Any]) -> list[Any]:
        device_id = str(event.subject)[:64]
        online = event.kind == "device.online"
        verdict = self.flap.transition(device_id, online)
        if verdict == flapping.NORMAL:
            return items
        if online:
            return []  # flapping: the offline alarm was superseded; its clear would mean nothing
        at = items[0].at
        candidate = self.rules.flapping(device_id, at, self.flap.offline_count(device_id), self.s.flap_window_s)
        if verdict == flapping.STARTED:
            return [candidate, Supersede((f"health.offline|{device_id}",), candidate.key, at)]
        return [candidate]

    def _stable_items(self) -> list[Any]:
        items: list[Any] = []
        now = datetime.now(UTC)
        for device_id, online in self.flap.tick():
            items.append(Clear(f"health.flapping|{device_id}", now, "no transition for "
                               f"{self.s.flap_stable_s:.0f} s: stable again"))
            if not online:
                items.extend(self.rules.evaluate("device.offline", device_id, {"reason": "offline after flapping"}, now))
        return items

    def restore_flap(self, until: datetime) -> int:
        """Seed the flap detector from the database (blocking; at start, before the worker runs):
        devices with an open, uncleared `health.flapping` alarm are flapping; the device
        transitions in the events table (every bus event is kept there) within
        max(window, stable) before `until` give each device its recent offlines (those after its
        last flapping clear) and its last transition. The quiet a flapping device had is what the
        platform saw of it before it stopped (up to the newest event or last-seen time it stored),
        never the downtime. Devices seeded."""
        s = self.s
        lookback = max(s.flap_window_s, s.flap_stable_s)
        since = until - timedelta(seconds=lookback)
        with self.engine.connect() as conn:
            flapping_rows = conn.execute(select(alarms.c.dedup_key, alarms.c.last_at).where(
                alarms.c.type == FLAPPING, alarms.c.state.in_(UNRESOLVED), alarms.c.cleared_at.is_(None))).all()
            cleared = conn.execute(select(alarms.c.dedup_key, func.max(alarms.c.cleared_at)).where(
                alarms.c.type == FLAPPING, alarms.c.cleared_at >= since).group_by(alarms.c.dedup_key)).all()
            rows = conn.execute(select(events.c.at, events.c.kind, events.c.subject).where(
                events.c.kind.in_(("device.offline", "device.online")), events.c.at >= since, events.c.at < until)
                .order_by(events.c.at.desc()).limit(RESTORE_EVENTS)).all()
            newest_event = conn.execute(select(func.max(events.c.at)).where(events.c.at < until)).scalar()
            flapping_ids = sorted({k.split("|", 1)[1] for k, _ in flapping_rows})
            stored: dict[str, tuple[str, datetime | None]] = {}
            for i in range(0, len(flapping_ids), 500):
                for dev_id, status, seen in conn.execute(select(devices.c.id, devices.c.status, devices.c.last_seen_at)
                                                         .where(devices.c.id.in_(flapping_ids[i:i + 500]))):
                    stored[dev_id] = (status, store.aware(seen))
        if len(rows) == RESTORE_EVENTS:
            log.warning("alarm centre: more than %d device transitions in the last %.0f s; flap state seeded from "
                        "the newest only", RESTORE_EVENTS, lookback)
        flap_last = {k.split("|", 1)[1]: store.aware(at) for k, at in flapping_rows}
        reset = {k.split("|", 1)[1]: store.aware(at) for k, at in cleared}
        offlines: dict[str, list[datetime]] = {}
        last: dict[str, tuple[datetime, bool]] = {}
        for at, kind, subject in rows:  # newest first
            at = store.aware(at)
            if subject not in last:
                last[subject] = (at, kind == "device.online")
            if kind == "device.offline" and (subject not in reset or at > reset[subject]):
                offlines.setdefault(subject, []).append(at)
        up_until = max([t for t in (store.aware(newest_event), *(seen for _, seen in stored.values())) if t] or [until])
        seeded = 0
        for device_id in set(flap_last) | set(offlines):
            flapping = device_id in flap_last
            changed, online = last.get(device_id, (None, True))
            if device_id in stored:
                online = stored[device_id][0] == "online"
            quiet = 0.0
            if flapping:
                changed = max(t for t in (changed, flap_last[device_id]) if t is not None)
                quiet = max(0.0, (up_until - changed).total_seconds())
            self.flap.restore(device_id, flapping=flapping, online=online, quiet_s=quiet,
                              offline_ages=[(until - at).total_seconds() for at in offlines.get(device_id, ())])
            seeded += 1
        if flap_last:
            log.info("alarm centre: %d flapping devices and %d with recent offlines read back", len(flap_last),
                     seeded - len(flap_last))
        return seeded

    # -- the worker --------------------------------------------------------------------------------
    async def _run(self) -> None:
        failures = 0
        last_tick = 0.0
        loop = asyncio.get_running_loop()
        while not self._stopping:
            delay = TICK_S if not failures else min(MAX_BACKOFF_S, 0.5 * 2 ** failures)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()
            if self._buffer and len(self._buffer) < self.s.batch_size and not self._stopping:
                # Let a burst (a registration storm's online events) share one database round: paced
                # one by one, each event cost a thread hop and a transaction (~0.5 ms of CPU).
                await asyncio.sleep(COALESCE_S)
            if loop.time() - last_tick >= TICK_S:
                last_tick = loop.time()
                self._pending.extend(self._stable_items())
            failures = 0 if await self.process() else failures + 1

    async def process(self) -> bool:
        """Classify and store everything buffered; False (kept for a retry) when the database refused."""
        async with self._lock:
            return await self._process()

    async def _process(self) -> bool:
        while self._buffer or self._pending:
            while self._buffer and len(self._pending) < self.s.batch_size:
                self._pending.extend(self.classify(self._buffer.popleft()))
            if not self._pending:
                continue
            batch = self._pending[:self.s.batch_size]
            try:
                changes, plans = await asyncio.to_thread(self._write, batch)
            except Exception as exc:
                self.write_failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                if self.write_failures == 1 or self.write_failures % 100 == 0:
                    log.warning("alarm centre: could not store %d alarm changes (%s); kept and retried",
                                len(self._pending), self.last_error)
                if len(self._pending) > self.s.max_buffer:
                    over = len(self._pending) - self.s.max_buffer
                    del self._pending[:over]
                    self.events_dropped += over
                return False
            del self._pending[:len(batch)]
            self.repeats += sum(1 for i in batch if isinstance(i, Candidate)) - sum(
                1 for c in changes if c.event == "raised")
            await self._announce(changes, plans)
        return True

    def _write(self, batch: list[Any]) -> tuple[list[store.Change], list[linkage.Plan]]:
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            changes = store.apply(conn, batch, auto_resolve=self.s.auto_resolve_on_clear)
            plans = [linkage.plan(c, self.s.linkage) for c in changes]
            marks = [row for c, p in zip(changes, plans, strict=True) for row in linkage.bookmark_rows(c, p, now)]
            if marks:
                from camgrid.store.tables import alarm_bookmarks

                conn.execute(alarm_bookmarks.insert(), marks)
            rows = outbox.rows_for(changes, self.s, self.platform_id, now)
            outbox.enqueue(conn, rows)
        for row in rows:
            self.notifier.enqueued[row["kind"]] += 1
        return changes, plans

    async def _announce(self, changes: list[store.Change], plans: list[linkage.Plan]) -> None:
        for change, p in zip(changes, plans, strict=True):
            self.announce(change, popup=p.popup)
            if p.record:
                for channel_id, result in (await linkage.run(change, p, self.recording_plans)).items():
                    self.linkage_results[result] += 1
                    log.info("alarm %s: event recording on %s %s", change.alarm.get("id"), channel_id, result)
        if changes:
            self.notifier.wake()

    def announce(self, change: store.Change, *, popup: bool = False) -> None:
        """Tell the bus and the consoles about a change (also for workflow steps taken through the API)."""
        self.changes[change.event] += 1
        alarm = outbox.jsonable(store.public(change.alarm))
        if change.event != "note":
            self.bus.publish(Event(f"alarm.{change.event}", str(alarm.get("id", "")), {
                "type": alarm["type"], "priority": alarm["priority"], "state": alarm["state"],
                "channel_id": alarm.get("channel_id"), "device_id": alarm.get("device_id"), "actor": change.actor}))
        self.live.publish({"event": change.event, "at": outbox.jsonable(change.at), "actor": change.actor,
                           "note": change.note, "popup": popup, "alarm": alarm})
        self.notifier.wake()

    # -- events written straight to the table by media nodes ----------------------------------------
    async def _tail_table(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                read = await asyncio.to_thread(self._read_table)
                failures = 0
                for event in read:
                    if (event.kind, event.subject, _stamp(event.at)) in self._seen:
                        continue  # came over the bus too
                    self._on_event(event)
                if read:
                    continue
            except Exception as exc:  # noqa: BLE001 - retried
                failures += 1
                if failures == 1 or failures % 100 == 0:
                    log.warning("alarm centre: cannot read the events table (%s)", exc)
            await asyncio.sleep(self.s.table_poll_s if not failures else min(MAX_BACKOFF_S, self.s.table_poll_s * 2 ** failures))

    def _read_table(self, limit: int = 1000) -> list[Event]:
        with self.engine.begin() as conn:
            position = store.source_position(conn, TABLE_SOURCE)
            if position is None:  # first start: alarms begin now, history is not replayed
                position = conn.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one()
                store.set_source_position(conn, TABLE_SOURCE, position, datetime.now(UTC))
                return []
            rows = list(conn.execute(select(events).where(events.c.id > position, events.c.kind.in_(sorted(self._table_kinds)))
                                     .order_by(events.c.id).limit(limit)).mappings())
            if rows:
                store.set_source_position(conn, TABLE_SOURCE, rows[-1]["id"], datetime.now(UTC))
        return [Event(r["kind"], r["subject"], r["data"] if isinstance(r["data"], dict) else {},
                      r["at"].replace(tzinfo=UTC) if r["at"].tzinfo is None else r["at"]) for r in rows]

    # -- metrics ------------------------------------------------------------------------------------
    @property
    def buffered(self) -> int:
        return len(self._buffer) + len(self._pending)

    def collect(self) -> dict[str, Any]:
        return {
            "alarm_events_total": self.events_seen, "alarm_events_dropped_total": self.events_dropped,
            "alarm_event_errors_total": self.event_errors, "alarm_store_failures_total": self.write_failures,
            "alarm_events_buffered": self.buffered, "alarm_changes_total": dict(self.changes),
            "alarm_repeats_total": self.repeats, "alarm_linkage_recordings_total": dict(self.linkage_results),
            "alarm_devices_flap_tracked": len(self.flap),
            "alarm_devices_flap_restored": self.flap_restored, "alarm_live_listeners": self.live.listeners,
            "alarm_live_dropped_total": self.live.dropped, **self.notifier.collect(),
        }


def _stamp(at: Any) -> str:
    if isinstance(at, datetime):
        return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    return str(at)
