"""The media node's writes to the database: the segment index and the node's events.

A row says what a segment holds: its video codec and size, and its audio codec (`audio_codec`,
NULL when the file has no audio track), as the recorder opened it or as re-indexing read it
from the file (`audio_codec_of_file`).

Writes are queued and flushed about once a second in one transaction, never one per part:
200 recording channels make 200 part updates a second, which become one UPDATE ... executemany.
Updates of one segment coalesce (only its latest end and size matter). When the database is
unreachable, recording goes on: the queue keeps the latest state of each segment (so it grows
with the number of segments, not of parts) and is written once the database is back — the
index catches up. Events are kept up to a bound and counted when dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, bindparam, select, update

from camgrid.governance.event_log import event_row
from camgrid.bus import Event
from camgrid.media.fmp4 import tracks_of
from camgrid.store.tables import events, recordings

log = logging.getLogger(__name__)

MAX_EVENTS = 10_000
AUDIO_ENTRIES = {"mp4a": "aac", "alaw": "g711a", "ulaw": "g711u"}  # MP4 sample entry → recordings.audio_codec
INIT_READ = 1 << 20  # a segment's init segment (ftyp + moov) lies within its first bytes


def audio_codec_of(init: bytes) -> str | None:
    """recordings.audio_codec for a segment's init segment: aac | g711a | g711u, None without audio."""
    for track in tracks_of(init):
        if track.handler == "soun":
            return AUDIO_ENTRIES.get(track.entry, track.entry)[:8]
    return None


def audio_codec_of_file(path: Path) -> str | None:
    """The same, read from a segment file's first bytes (orphan re-indexing)."""
    with open(path, "rb") as handle:
        return audio_codec_of(handle.read(INIT_READ))
_UPDATE = (update(recordings).where(recordings.c.id == bindparam("b_id"))
           .values(end_at=bindparam("end_at"), bytes=bindparam("bytes"), state=bindparam("state")))


class RecordingIndex:
    def __init__(self, engine: Engine, *, flush_interval_s: float = 1.0) -> None:
        self.engine = engine
        self.flush_interval_s = flush_interval_s
        self._rows: dict[str, dict[str, Any]] = {}  # segment id → latest values; "_new" marks an insert
        self._events: list[dict[str, Any]] = []
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self.write_failures = 0
        self.events_dropped = 0
        self.last_error: str | None = None
        self.unreachable_since: float | None = None

    # -- what the recorders report ----------------------------------------------------------------
    def opened(self, row: dict[str, Any]) -> None:
        self._rows[row["id"]] = {**row, "_new": True}

    def progressed(self, segment_id: str, end_at: datetime, size: int, state: str = "open") -> None:
        row = self._rows.setdefault(segment_id, {"id": segment_id, "_new": False})
        row.update(end_at=end_at, bytes=size, state=state)

    def event(self, kind: str, subject: str, data: dict[str, Any]) -> None:
        if len(self._events) >= MAX_EVENTS:
            self._events.pop(0)
            self.events_dropped += 1
        self._events.append(event_row(Event(kind, subject, data)))

    @property
    def pending(self) -> int:
        return len(self._rows) + len(self._events)

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if not await self.flush():
            log.error("recording index: %d updates could not be written at stop (%s); recovery at the next start "
                      "will rebuild the open segments from their files", self.pending, self.last_error)

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            delay = self.flush_interval_s * (2 ** min(failures, 5))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            self._wake.clear()
            if self._stopping:
                return
            failures = 0 if await self.flush() else failures + 1

    async def flush(self) -> bool:
        if not self._rows and not self._events:
            return True
        rows, self._rows = self._rows, {}
        batch, self._events = self._events, []
        try:
            await asyncio.to_thread(self._write, rows, batch)
        except Exception as exc:  # the database is down or refused: keep everything, newest wins
            self.write_failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            if self.unreachable_since is None:
                self.unreachable_since = asyncio.get_running_loop().time()
                log.error("recording index: cannot write (%s); recording continues and the index will catch up", self.last_error)
            for segment_id, row in rows.items():
                newer = self._rows.get(segment_id)
                self._rows[segment_id] = {**row, **newer, "_new": row["_new"] or newer["_new"]} if newer else row
            self._events[:0] = batch
            return False
        if self.unreachable_since is not None:
            log.warning("recording index: the database is back; the index caught up")
            self.unreachable_since = None
        return True

    def _write(self, rows: dict[str, dict[str, Any]], batch: list[dict[str, Any]]) -> None:
        inserts = [{k: v for k, v in r.items() if k != "_new"} for r in rows.values() if r["_new"]]
        updates = [{"b_id": r["id"], "end_at": r["end_at"], "bytes": r["bytes"], "state": r["state"]}
                   for r in rows.values() if not r["_new"]]
        with self.engine.begin() as conn:
            if inserts:
                existing = set(conn.scalars(select(recordings.c.id).where(recordings.c.id.in_([r["id"] for r in inserts]))))
                fresh = [r for r in inserts if r["id"] not in existing]  # a retried insert may have landed
                if fresh:
                    conn.execute(recordings.insert(), fresh)
                updates += [{"b_id": r["id"], "end_at": r["end_at"], "bytes": r["bytes"], "state": r["state"]}
                            for r in inserts if r["id"] in existing]
            if updates:
                conn.execute(_UPDATE, updates)
            if batch:
                conn.execute(events.insert(), batch)

    # -- reading ----------------------------------------------------------------------------------
    def open_segments(self, node_id: str, created_before: datetime) -> list[dict[str, Any]]:
        """Segments an earlier run of this node left open (not those it is writing now)."""
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(recordings).where(and_(
                recordings.c.node_id == node_id, recordings.c.state == "open",
                recordings.c.created_at < created_before))).mappings()]
