"""Batched write-back of registration facts, so a REGISTER storm is not a write per device."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from sqlalchemy import Engine, bindparam, null, select, update

from camgrid.store.bulk import BulkStatement
from camgrid.store.engine import utcnow
from camgrid.store.tables import devices

log = logging.getLogger(__name__)

_REGISTERED = BulkStatement(update(devices).where(devices.c.id == bindparam("b_id")).values(
    transport=bindparam("transport"), remote_addr=bindparam("remote_addr"), contact=bindparam("contact"),
    gb_version=bindparam("gb_version"), register_expires_at=bindparam("register_expires_at"),
    registered_at=bindparam("registered_at"), updated_at=bindparam("updated_at")))
_UNREGISTERED = BulkStatement(update(devices).where(devices.c.id == bindparam("b_id")).values(
    register_expires_at=null(), updated_at=bindparam("updated_at")))


class RegistrationWriter:
    """Queues registration updates and writes them in one executemany per batch."""

    def __init__(self, engine: Engine, *, interval_s: float = 0.5, max_batch: int = 5000) -> None:
        self._engine = engine
        self._interval_s = interval_s
        self._max_batch = max_batch
        self._pending: dict[str, dict] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # a full batch: write now
        self._queued = asyncio.Event()  # something to write: the writer wakes only then
        self._stopping = False
        self.failures = 0

    def registered(self, device_id: str, *, transport: str, remote_addr: str, contact: str, gb_version: str,
                   expires_at: datetime, now: datetime | None = None) -> None:
        """`now`: when it registered (the caller's clock reading, else read here)."""
        now = now or utcnow()
        self._pending[device_id] = {
            "b_id": device_id, "transport": transport, "remote_addr": remote_addr, "contact": contact[:300],
            "gb_version": gb_version, "register_expires_at": expires_at, "registered_at": now, "updated_at": now,
        }
        self._queued.set()
        if len(self._pending) >= self._max_batch:
            self._wake.set()

    def unregistered(self, device_id: str) -> None:
        now = utcnow()
        row = self._pending.get(device_id)
        if row is None:
            self._pending[device_id] = {"b_id": device_id, "register_expires_at": None, "updated_at": now, "_unreg": True}
        else:
            row["register_expires_at"] = None
        self._queued.set()

    def forget(self, device_id: str) -> None:
        """Drop what is queued for a device that was deleted."""
        self._pending.pop(device_id, None)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self._stopping = True  # Python 3.11's wait_for can swallow a cancel that races a wake-up
        self._wake.set()
        self._queued.set()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def _run(self) -> None:
        while not self._stopping:
            if not self._pending:  # idle: no timer until there is something to write
                self._queued.clear()
                await self._queued.wait()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval_s)
            if self._stopping:
                return  # stop() writes what is left
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        try:
            await asyncio.to_thread(self._write, list(batch.values()))
        except Exception as exc:
            self.failures += 1
            log.warning("could not write %d registrations (%s); will retry", len(batch), exc)
            for k, v in batch.items():  # keep what was not written; newer facts win
                self._pending.setdefault(k, v)

    def _write(self, rows: list[dict]) -> None:
        full = [r for r in rows if not r.get("_unreg")]
        unreg = [{"b_id": r["b_id"], "updated_at": r["updated_at"]} for r in rows if r.get("_unreg")]
        with self._engine.begin() as conn:
            _REGISTERED.execute(conn, full)
            _UNREGISTERED.execute(conn, unreg)


def load_registrations(engine: Engine) -> list[dict]:
    cols = [devices.c.id, devices.c.register_expires_at, devices.c.remote_addr, devices.c.transport,
            devices.c.contact, devices.c.gb_version]
    with engine.connect() as conn:
        rows = conn.execute(select(*cols).where(devices.c.register_expires_at.is_not(None))).mappings().all()
    return [dict(r) for r in rows]
