"""MaintenanceWorker: every `maintenance.poll_s` it opens work orders for alarms of the chosen
types that stayed (unresolved, not cleared) for `auto_open_after_s`, closes repaired orders
whose fault has cleared (or sends them back in progress when it has not after
`verify_timeout_s`), and flags orders past their SLA deadlines (event `maintenance.sla_breached`).

It reads the alarm tables rather than the bus: the alarm centre writes them in batches, and the
database is the one place where an alarm's state and its clearing are settled. Nothing here is
on a hot path; a database outage only delays a round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from camgrid.bus import Event, EventBus
from camgrid.config import Settings
from camgrid.ops.maintenance import model, orders, store
from camgrid.ops.maintenance.model import OrderError
from camgrid.store.engine import utcnow

log = logging.getLogger(__name__)


class MaintenanceWorker:
    def __init__(self, engine: Engine, bus: EventBus | None, settings: Settings, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._engine = engine
        self._bus = bus
        self.settings = settings
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self.opened = self.closed = self.reopened = self.breaches = self.round_failures = 0
        self.pending: list[Event] = []

    async def start(self) -> None:
        if self.settings.maintenance.enabled:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="maintenance")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.run_round)
                self._flush()
            except Exception as exc:  # the next round tries again
                self.round_failures += 1
                log.warning("maintenance round failed: %s", exc)
            await asyncio.sleep(self.settings.maintenance.poll_s)

    def run_round(self) -> dict[str, int]:
        """One round (blocking); returns what it did."""
        now = self._clock()
        done = {"opened": self._auto_open(now), "closed": 0, "reopened": 0}
        done["closed"], done["reopened"] = self._verify(now)
        with self._engine.begin() as conn:
            breaches = store.mark_breaches(conn, now)
        for order_id, which in breaches:
            self._publish("maintenance.sla_breached", str(order_id), {"deadline": which})
        self.breaches += len(breaches)
        return done

    def _auto_open(self, now: datetime) -> int:
        m = self.settings.maintenance
        if not m.auto_open_types:
            return 0
        with self._engine.connect() as conn:
            due = [a for a in store.alarms_without_orders(conn, now - timedelta(seconds=m.auto_open_after_s))
                   if model.matches(a["type"], m.auto_open_types)]
        opened = 0
        for alarm in due:
            try:
                order = orders.open_for_alarm(self._engine, self.settings, alarm["id"], model.SYSTEM_ACTOR, now=now,
                                              note=f"opened automatically: {alarm['type']} for "
                                                   f"{m.auto_open_after_s / 60:.0f} min")
            except OrderError as exc:  # opened meanwhile by someone, or its team is missing
                log.info("no work order for alarm %s: %s", alarm["id"], exc)
                continue
            opened += 1
            self._publish("maintenance.opened", str(order["id"]), {"alarm_id": alarm["id"], "type": alarm["type"],
                                                                   "channel_id": alarm.get("channel_id")})
        self.opened += opened
        return opened

    def _verify(self, now: datetime) -> tuple[int, int]:
        closed = reopened = 0
        with self._engine.connect() as conn:
            waiting = [(o, store.fault_present(conn, o["dedup_key"])) for o in store.verifying(conn)]
        for order, present in waiting:
            if not present:
                done = store.close_verified(self._engine, order["id"], now)
                if done is not None:
                    orders.after_close(self._engine, self.settings, done, model.SYSTEM_ACTOR)
                    closed += 1
                    self._publish("maintenance.closed", str(order["id"]), {"alarm_id": order["alarm_id"]})
            elif order["repaired_at"] and (now - order["repaired_at"]).total_seconds() > self.settings.maintenance.verify_timeout_s:
                if store.reopen_unverified(self._engine, order["id"], now, (now - order["repaired_at"]).total_seconds()):
                    reopened += 1
        self.closed += closed
        self.reopened += reopened
        return closed, reopened

    def _publish(self, kind: str, subject: str, data: dict[str, Any]) -> None:
        self.pending.append(Event(kind, subject, data))  # published from the event loop: the bus is not thread-safe

    def _flush(self) -> None:
        events, self.pending = self.pending, []
        if self._bus is not None:
            for event in events:
                self._bus.publish(event)

    def collect(self) -> dict[str, int]:
        return {"work_orders_opened_total": self.opened, "work_orders_closed_total": self.closed,
                "work_orders_reopened_total": self.reopened, "work_orders_sla_breaches_total": self.breaches,
                "maintenance_round_failures_total": self.round_failures}
