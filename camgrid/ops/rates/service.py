"""RatesService: keeps today's ledger current from the event bus, closes each day at local
midnight into the database, and answers "today so far" for the API.

- start(): subscribes first (nothing published meanwhile is missed: facts are idempotent, so
  an event seen both in the replay and on the bus counts once), rebuilds from the database in a
  worker thread (closing the days missed while the platform was down), then applies what the
  bus queued meanwhile.
- Facts are applied on the event loop (array updates, microseconds; a device fans out to its
  channels). Catalog changes read that device's channels from the registry in a thread.
- The day closes when an event of the next day arrives or the midnight timer fires, whichever
  is first; the closed day is written in a thread and retried with backoff while the database
  refuses (kept in memory meanwhile, and still served).
- Every `refresh_s` the whole registry is reconciled (groupings changed through the API or an
  import, channels added without an event).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from camgrid.bus import Event, EventBus
from camgrid.config import RatesSettings
from camgrid.ops.rates import facts, store
from camgrid.ops.rates.days import day_bounds, day_of, rebuild
from camgrid.ops.rates.figures import GroupIndex, group_sums
from camgrid.ops.rates.ledger import DayLedger
from camgrid.registry._sql import chunks

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0
SNAPSHOT_TTL_S = 10.0
RECONCILE_CHUNK = 2_000  # registry rows reconciled between yields to the event loop (~20 ms)
PREFIXES = ("device.", "channel.", "vqd.", "media.first_frame", "catalog.")


class RatesService:
    def __init__(self, engine: Engine, bus: EventBus, settings: RatesSettings, *,
                 clock: Callable[[], float] = time.time, tick_s: float = 30.0) -> None:
        self._engine = engine
        self._bus = bus
        self.settings = settings
        self.tz = ZoneInfo(settings.timezone)
        self._clock = clock
        self._tick_s = tick_s  # the midnight timer looks at the clock at least this often
        self.ledger: DayLedger | None = None
        self.day: date | None = None
        self._queued: list[Event] | None = []
        self._unwritten: dict[date, DayLedger] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._writer_wake = asyncio.Event()
        self._snapshot: tuple[float, date, list[dict[str, Any]]] | None = None
        self._index: tuple[tuple[int, int], GroupIndex] | None = None
        self.write_failures = 0
        self.days_closed = 0
        self.last_error: str | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self) -> None:
        for prefix in PREFIXES:
            self._bus.subscribe(prefix, self._on_event)
        now = self._clock()
        self.ledger = await asyncio.to_thread(
            rebuild, self._engine, self.tz, now, backfill_days=self.settings.backfill_days,
            hd_min_height=self.settings.hd_min_height)
        self.day = day_of(self.ledger.start, self.tz)
        queued, self._queued = self._queued or [], None
        for event in queued:
            await self._on_event(event)
        self._tasks = [asyncio.create_task(self._midnight_loop(), name="rates-midnight"),
                       asyncio.create_task(self._writer_loop(), name="rates-writer"),
                       asyncio.create_task(self._refresh_loop(), name="rates-refresh")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._unwritten:  # one last try; what still fails is rebuilt from the events next start
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._write_pending)

    # -- facts -------------------------------------------------------------------------------------
    async def _on_event(self, event: Event) -> None:
        if self._queued is not None:
            self._queued.append(event)
            return
        at = event.at.timestamp()
        self._roll_to(at)
        data = event.data if isinstance(event.data, dict) else {}
        if facts.needs_registry(event.kind, data):
            device_id = facts.registry_device(event.kind, event.subject, data)
            if device_id:
                rows = await asyncio.to_thread(store.load_registry, self._engine, device_id)
                self._roll_to(at)
                facts.reconcile(self.ledger, rows, at, device_id=device_id)
        else:
            facts.apply(self.ledger, event.kind, event.subject, data, at)
        self._snapshot = None

    def _roll_to(self, at: float) -> None:
        """Close the running day (and any empty ones after it) when `at` lies past its end."""
        while self.ledger is not None and at >= self.ledger.end:
            closed, day = self.ledger, self.day
            self.ledger = closed.next_day(day_bounds(day_of(closed.end, self.tz), self.tz)[1])
            self.day = day_of(self.ledger.start, self.tz)
            self._unwritten[day] = closed
            self.days_closed += 1
            self._snapshot = None
            self._writer_wake.set()

    async def _midnight_loop(self) -> None:
        while True:
            await asyncio.sleep(max(0.05, min(self.ledger.end - self._clock() + 0.5, self._tick_s)))
            self._roll_to(self._clock())

    async def _writer_loop(self) -> None:
        backoff = 1.0
        while True:
            await self._writer_wake.wait()
            self._writer_wake.clear()
            while self._unwritten:
                try:
                    await asyncio.to_thread(self._write_pending)
                    backoff = 1.0
                    self.last_error = None
                except Exception as exc:  # the database refused: keep the day, retry later
                    self.write_failures += 1
                    self.last_error = str(exc)[:300]
                    log.warning("could not store the rates of a closed day (retrying in %.0f s): %s", backoff, exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _write_pending(self) -> None:
        for day in sorted(self._unwritten):
            store.write_day(self._engine, day, self._unwritten[day], self.settings.hd_min_height)
            self._unwritten.pop(day, None)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.refresh_s)
            try:
                rows = await asyncio.to_thread(store.load_registry, self._engine)
            except Exception as exc:
                log.warning("rates: could not read the registry: %s", exc)
                continue
            now = self._clock()
            self._roll_to(now)
            seen: set[str] = set()
            for part in chunks(rows, RECONCILE_CHUNK):  # yield between chunks: signaling shares this loop
                seen |= facts.reconcile_rows(self.ledger, part, now)
                await asyncio.sleep(0)
            facts.remove_missing(self.ledger, seen, now)
            self._snapshot = None

    # -- reading -----------------------------------------------------------------------------------
    async def today_groups(self) -> tuple[date, list[dict[str, Any]]]:
        """Today's sums so far per (dimension, key, point class), cached for a few seconds."""
        now = self._clock()
        if self._snapshot is None or now - self._snapshot[0] > SNAPSHOT_TTL_S:
            day, ledger = self._frozen(now)
            version = (id(self.ledger), self.ledger.version)
            if self._index is None or self._index[0] != version:
                self._index = (version, await asyncio.to_thread(GroupIndex.build, ledger.infos))
            index = self._index[1]

            def sums() -> list[dict[str, Any]]:
                return group_sums(index, ledger.totals(now), ledger.height, self.settings.hd_min_height)
            self._snapshot = (now, day, await asyncio.to_thread(sums))
        return self._snapshot[1], self._snapshot[2]

    def unwritten_groups(self) -> dict[date, list[dict[str, Any]]]:
        """Closed days still waiting for the database, so the API shows them meanwhile."""
        return {day: group_sums(ledger.infos, ledger.totals(), ledger.height, self.settings.hd_min_height)
                for day, ledger in self._unwritten.items()}

    async def today_channels(self) -> tuple[date, list[dict[str, Any]]]:
        now = self._clock()
        day, ledger = self._frozen(now)

        def rows() -> list[dict[str, Any]]:
            totals = ledger.totals(now)
            return [{"channel_id": info.channel_id, "device_id": info.device_id, "point_class": info.point_class,
                     "observed_s": float(totals.observed[slot]), "online_s": float(totals.online[slot]),
                     "intact_s": float(totals.intact[slot]), "width": int(ledger.width[slot]),
                     "height": int(ledger.height[slot])}
                    for slot, info in enumerate(ledger.infos) if totals.observed[slot] > 0]
        return day, await asyncio.to_thread(rows)

    def _frozen(self, now: float) -> tuple[date, DayLedger]:
        """Today's ledger copied on the event loop (a memcpy), to be summed in a thread."""
        self._roll_to(now)
        return self.day, self.ledger.frozen()

    def collect(self) -> dict[str, Any]:
        return {"rates_days_closed_total": self.days_closed, "rates_days_unwritten": len(self._unwritten),
                "rates_write_failures_total": self.write_failures,
                "rates_channels_tracked": len(self.ledger) if self.ledger is not None else 0}
