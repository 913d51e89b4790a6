"""RetentionWorker: each recording media node deletes its own footage that the retention rules
(camgrid.media.retention) no longer keep, and keeps its disk from filling up.

A sweep, every `sweep_interval_s`:
1. max age: per profile, the node's segments older than the profile's maximum age, read
   oldest first through ix_recordings_end_at in batches of `batch_size` (never the whole
   index at once), are deleted unless held or still open.
2. low space: when free space (or the quota) is below the low water, the oldest segments that
   may go are deleted until the high water is reached; an alarm (recording.low_space) says
   that footage went before its maximum age, or that nothing more may go.
3. orphans (camgrid.media.retention_orphans): segment files with no index row, unchanged for
   `orphan_grace_s`. Footage of a channel the registry knows is indexed again (state
   "recovered"); footage of a channel it does not know (a re-import, a swapped NVR) is moved to
   the quarantine (<recordings>/_quarantine/, same layout), not deleted: an operator lists it and
   indexes it again once the channel is back, or deletes it (`camgrid retention orphans`); it
   counts toward the quota, and step 2 may delete it, oldest first with the rest, but not
   before its minimum age. A file that is not footage is deleted unless held.

Deleting is safe while the recorder writes: only closed or recovered segments go, and the
database has the last word — the row is deleted by a DELETE that re-checks the state and the
legal holds at that instant, and only the files of the rows it deleted are removed. The row
goes first, then the file, so the index never claims footage that is not on disk; a crash in
between leaves an orphan file, which step 3 removes. Every deletion is logged: one
"recording.deleted" event per channel and reason per sweep (count, bytes, time range), and
one log line per sweep. The last sweep's figures go to the retention_sweeps table for the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Select, and_, delete, exists, func, or_, select

from camgrid.bus import Event
from camgrid.config import RetentionSettings
from camgrid.governance.event_log import event_row
from camgrid.governance.retention import active_clause, default_profile
from camgrid.media import retention_files as files
from camgrid.media.retention import (CRITICAL, DELETABLE_STATES, LOW_SPACE, OPEN, QUARANTINED, TOO_YOUNG, WARNING, AlarmGate,
                                     Deletion, Disk, Hold, Holds, Profile, Segment, SpaceNeed, Thresholds, decide,
                                     low_space_alarm, space_needed)
from camgrid.media.retention_orphans import OrphanScan
from camgrid.registry._sql import aware
from camgrid.store.tables import (channel_retention, events, legal_holds, recordings, retention_profiles,
                                  retention_sweeps)

log = logging.getLogger(__name__)

QUARANTINE_LOW_SPACE = "quarantine_low_space"  # a quarantined file deleted for space (recording.deleted reason)
_QUARANTINE_ID = "quarantine:"  # id prefix of a quarantined file offered to `decide` with the index rows
EVENT_FLUSH_BATCHES = 20  # a long first cleanup writes its events every this many batches
_COLUMNS = (recordings.c.id, recordings.c.channel_id, recordings.c.start_at, recordings.c.end_at, recordings.c.bytes,
            recordings.c.state, recordings.c.path)


@dataclass
class Tally:
    segments: int = 0
    bytes: int = 0
    first: datetime | None = None  # earliest footage deleted
    last: datetime | None = None  # latest footage deleted
    missing_files: int = 0  # index rows whose file was already gone
    failed_files: int = 0  # files that could not be removed (left as orphans; retried later)

    def add(self, start: datetime, end: datetime, size: int, outcome: str = files.REMOVED) -> None:
        self.segments += 1
        self.bytes += size
        self.first = start if self.first is None else min(self.first, start)
        self.last = end if self.last is None else max(self.last, end)
        self.missing_files += outcome == files.MISSING
        self.failed_files += outcome == files.FAILED

    def as_dict(self) -> dict[str, Any]:
        return {"segments": self.segments, "bytes": self.bytes,
                "from": self.first.isoformat() if self.first else None, "to": self.last.isoformat() if self.last else None,
                "missing_files": self.missing_files, "failed_files": self.failed_files}


@dataclass
class SweepReport:
    node_id: str
    at: datetime
    dry_run: bool = False
    deleted: dict[tuple[str, str], Tally] = field(default_factory=lambda: defaultdict(Tally))  # (channel, reason)
    kept_past_max_age: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))  # why → [n, bytes]
    disk_before: Disk | None = None
    disk_after: Disk | None = None
    need: SpaceNeed = field(default_factory=lambda: SpaceNeed(0))
    short_bytes: int = 0
    alarm: dict[str, Any] | None = None
    orphans_scanned: bool = False
    reindexed: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))  # orphans indexed again, per channel
    quarantined: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))  # orphans of unknown channels moved
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False
    duration_s: float = 0.0

    def totals(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for (_, reason), tally in self.deleted.items():
            t = out.setdefault(reason, {"segments": 0, "bytes": 0, "channels": 0})
            t["segments"] += tally.segments
            t["bytes"] += tally.bytes
            t["channels"] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        def disk(d: Disk | None) -> dict[str, Any] | None:
            return None if d is None else {"size_bytes": d.size_bytes, "free_bytes": d.free_bytes,
                                           "recordings_bytes": d.recordings_bytes}
        return {
            "node_id": self.node_id, "at": self.at.isoformat(), "dry_run": self.dry_run, "deleted": self.totals(),
            "kept_past_max_age": {why: {"segments": n, "bytes": b} for why, (n, b) in self.kept_past_max_age.items()},
            "disk_before": disk(self.disk_before), "disk_after": disk(self.disk_after),
            "needed_bytes": self.need.bytes, "limit": self.need.limit, "short_bytes": self.short_bytes,
            "alarm": self.alarm, "orphans_scanned": self.orphans_scanned,
            "reindexed": _sum(self.reindexed), "quarantined": _sum(self.quarantined),
            "errors": self.errors[:20],
            "interrupted": self.interrupted, "duration_s": round(self.duration_s, 3),
        }

    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        parts = [f"{t['segments']} segments ({t['bytes']} bytes, {t['channels']} channels) for {reason}"
                 for reason, t in sorted(self.totals().items())]
        text = f"retention sweep of node {self.node_id}: {verb} " + ("; ".join(parts) if parts else "nothing")
        if self.reindexed:
            n = sum(t.segments for t in self.reindexed.values())
            text += f"; {'would index' if self.dry_run else 'indexed'} {n} orphan segment files again"
        if self.quarantined:
            n = sum(t.segments for t in self.quarantined.values())
            text += (f"; {'would move' if self.dry_run else 'moved'} {n} orphan segment files of "
                     f"{len(self.quarantined)} channels not in the registry to the quarantine")
        if self.need.bytes:
            text += f"; space was low ({self.need.limit}): {self.need.bytes} bytes needed, {self.short_bytes} short"
        return text


def _sum(tallies: dict[str, Tally]) -> dict[str, int]:
    return {"segments": sum(t.segments for t in tallies.values()), "bytes": sum(t.bytes for t in tallies.values()),
            "channels": len(tallies)}


class RetentionWorker:
    def __init__(self, engine: Engine, recordings_dir: Path, node_id: str, settings: RetentionSettings, *,
                 clock=time.time) -> None:  # noqa: ANN001
        self.engine = engine
        self.root = recordings_dir
        self.node_id = node_id
        self.settings = settings
        self.thresholds = Thresholds.of(settings)
        self.clock = clock
        self.last_report: SweepReport | None = None
        self.sweeps = self.failures = 0
        self.last_error: str | None = None
        self._gate = AlarmGate(settings.alarm_interval_s)
        self._last_orphan_scan: float | None = None
        self._pending: dict[tuple[str, str], Tally] = defaultdict(Tally)  # deletions not yet written as events
        self._dry_planned: set[str] = set()  # a dry run's planned deletions (the rows stay, so skip them later)
        self._stopping = threading.Event()  # read by the sweep's thread between batches
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._orphan_scan = OrphanScan(engine, recordings_dir, node_id, settings, self._stopping, self._tally)

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        if not self.settings.enabled:
            log.warning("retention is disabled (retention.enabled = false): node %s deletes no footage; the disk "
                        "will fill up", self.node_id)
            return
        self._stopping.clear()
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"retention-{self.node_id}")

    async def stop(self) -> None:
        """Stop after the batch in progress (a sweep is never cut inside a transaction)."""
        self._stopping.set()
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._stopping.is_set():
            try:
                self.last_report = await asyncio.to_thread(self.sweep_once)
                self.last_error = None
            except Exception as exc:  # the database is away, the disk is unreadable: try again next time
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                log.error("retention sweep of node %s failed (%s); retried in %.0f s", self.node_id, self.last_error,
                          self.settings.sweep_interval_s)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.sweep_interval_s)

    # -- one sweep (blocking: runs in a worker thread) ----------------------------------------------
    def sweep_once(self, *, dry_run: bool = False) -> SweepReport:
        started = time.monotonic()
        now_ts = self.clock()
        now = datetime.fromtimestamp(now_ts, timezone.utc)
        report = SweepReport(self.node_id, now, dry_run)
        self._dry_planned.clear()  # (self._pending is kept: events a failed sweep could not write go now)
        profiles, default = self._load_profiles()
        holds = self._load_holds(now)
        for profile in profiles.values():
            if profile.max_age_days is not None:
                self._expire(profile, default, holds, now, report)
        self._flush_events()
        report.disk_before = self._disk()
        report.need = space_needed(report.disk_before, self.thresholds)
        if report.need.bytes > 0 and not self._stopping.is_set():
            early, blocked = self._free_space(profiles, default, holds, now, report)
            self._flush_events()
            youngest = min(p.min_age_days for p in profiles.values())
            self._raise_alarm(report, early, blocked, now - timedelta(days=youngest), now_ts)
        if self._orphans_due(now_ts):
            self._orphan_scan.run(holds, now_ts, report, first=self._last_orphan_scan is None)
            if report.orphans_scanned and not dry_run:
                self._last_orphan_scan = now_ts
            self._flush_events()
        report.interrupted = self._stopping.is_set()
        if not dry_run:
            report.disk_after = self._disk()
        report.duration_s = time.monotonic() - started
        if not dry_run:
            self._save_status(report)
            self.sweeps += 1
        level = logging.INFO if report.deleted or report.need.bytes else logging.DEBUG
        log.log(level, "%s", report.summary())
        return report

    def _load_profiles(self) -> tuple[dict[int, Profile], Profile]:
        with self.engine.begin() as conn:
            default_id = default_profile(conn)["id"]
            rows = conn.execute(select(retention_profiles)).mappings().all()
        profiles = {r["id"]: Profile(r["name"], r["max_age_days"], r["min_age_days"], r["id"]) for r in rows}
        return profiles, profiles[default_id]

    def _load_holds(self, now: datetime) -> Holds:
        return load_holds(self.engine, now)

    def _disk(self) -> Disk:
        size, free = files.disk_usage(self.root)
        total = None
        if self.thresholds.quota_bytes is not None:  # a sum over the node's index: only when a quota asks for it
            with self.engine.connect() as conn:
                total = int(conn.execute(select(func.coalesce(func.sum(recordings.c.bytes), 0))
                                         .where(recordings.c.node_id == self.node_id)).scalar_one())
            total += files.quarantined_bytes(self.root)  # quarantined footage counts too
        return Disk(size, free, total)

    # -- reading candidates -----------------------------------------------------------------------
    def _batches(self, stmt: Select) -> Iterator[list[Segment]]:
        """Rows of `stmt` oldest first (by end, then id), a batch at a time, keyset-paged."""
        c = recordings.c
        key = None
        while not self._stopping.is_set():
            page = stmt
            if key is not None:  # written so that every engine uses the end_at index for the range
                page = page.where(c.end_at >= key[0], or_(c.end_at > key[0], and_(c.end_at == key[0], c.id > key[1])))
            with self.engine.connect() as conn:
                rows = conn.execute(page.order_by(c.end_at, c.id).limit(self.settings.batch_size)).all()
            if not rows:
                return
            yield [Segment(r.id, r.channel_id, aware(r.start_at), aware(r.end_at), r.bytes, r.state, r.path) for r in rows]
            if len(rows) < self.settings.batch_size:
                return
            key = (rows[-1].end_at, rows[-1].id)

    def _mine(self) -> Select:
        return select(*_COLUMNS).where(self._of_this_node())

    def _of_this_node(self) -> Any:
        """Deletable rows of this node, written `node_id || '' = ?` so that no engine uses the
        (node_id, state) index for it: without statistics SQLite would, reading all of the
        node's rows, where the end_at index (reading oldest first) or the primary key
        (deleting by id) is what the query needs."""
        c = recordings.c
        return and_(c.node_id.concat("") == self.node_id, c.state.in_(DELETABLE_STATES))

    def _expire(self, profile: Profile, default: Profile, holds: Holds, now: datetime, report: SweepReport) -> None:
        assert profile.max_age_days is not None
        c, cr = recordings.c, channel_retention.c
        if profile.id == default.id:  # every channel not assigned elsewhere
            members = c.channel_id.not_in(select(cr.channel_id).where(cr.profile_id != default.id))
        else:
            members = c.channel_id.in_(select(cr.channel_id).where(cr.profile_id == profile.id))
        stmt = self._mine().where(c.end_at < now - timedelta(days=profile.max_age_days), members)
        for n, batch in enumerate(self._batches(stmt), 1):
            plan = decide(batch, profile_of=lambda _: profile, holds=holds, now=now)
            for why, segs in plan.blocked.items():
                kept = report.kept_past_max_age[why]
                kept[0] += len(segs)
                kept[1] += sum(s.bytes for s in segs)
            self._delete(plan.deletions, now, report)
            if n % EVENT_FLUSH_BATCHES == 0:
                self._flush_events()

    def _free_space(self, profiles: dict[int, Profile], default: Profile, holds: Holds, now: datetime,
                    report: SweepReport) -> tuple[tuple[int, int], dict[str, tuple[int, int]]]:
        """Delete oldest first until the need is met. Returns (segments, bytes) deleted before
        their maximum age, and (segments, bytes) per protection that kept footage although space was needed.
        Quarantined files join the index rows in order of age: each batch takes those no younger
        than its youngest row, and a last, empty batch those younger than every row."""
        youngest = min(p.min_age_days for p in profiles.values())
        old_enough = now - timedelta(days=youngest)
        stmt = self._mine().where(recordings.c.end_at <= old_enough)
        need_left = report.need.bytes
        if report.dry_run:  # nothing was really freed by the max-age step
            need_left -= sum(t.bytes for t in report.deleted.values())
        kept = deque(Segment(_QUARANTINE_ID + q.relative, q.channel_id, q.start_at, q.end_at, q.bytes, QUARANTINED, q.relative)
                     for q in files.quarantined(self.root) if q.end_at <= old_enough)
        blocked: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        early = [0, 0]
        for n, rows in enumerate(_then_empty(self._batches(stmt)), 1):
            if need_left <= 0 or self._stopping.is_set():
                break
            batch = [s for s in rows if s.id not in self._dry_planned]
            while kept and (not rows or kept[0].end_at <= rows[-1].end_at):
                batch.append(kept.popleft())
            if not batch:
                continue
            batch.sort(key=lambda s: s.end_at)
            assigned = self._assigned({s.channel_id for s in batch}, profiles)
            plan = decide(batch, profile_of=lambda ch: assigned.get(ch, default), holds=holds, now=now, need_bytes=need_left)
            not_deleted = self._delete(plan.deletions, now, report)
            done = [d for d in plan.deletions if d.reason == LOW_SPACE and d.segment.id not in not_deleted]
            early[0] += len(done)
            early[1] += sum(d.segment.bytes for d in done)
            need_left = plan.need_left + sum(s.bytes for s in not_deleted.values())
            for why, segs in plan.blocked.items():
                blocked[why][0] += len(segs)
                blocked[why][1] += sum(s.bytes for s in segs)
            if n % EVENT_FLUSH_BATCHES == 0:
                self._flush_events()
        report.short_bytes = max(0, need_left)
        return (early[0], early[1]), {why: (v[0], v[1]) for why, v in blocked.items()}

    def _assigned(self, channel_ids: set[str], profiles: dict[int, Profile]) -> dict[str, Profile]:
        """Profiles of channels assigned one (a quarantined channel keeps its assignment, if any)."""
        cr = channel_retention.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(cr.channel_id, cr.profile_id).where(cr.channel_id.in_(channel_ids))).all()
        return {r.channel_id: profiles[r.profile_id] for r in rows if r.profile_id in profiles}

    # -- deleting ---------------------------------------------------------------------------------
    def _delete(self, deletions: list[Deletion], now: datetime, report: SweepReport) -> dict[str, Segment]:
        """Delete the rows (the DELETE re-checks state and holds), then the files of the rows it
        deleted. Returns the segments planned but not deleted (a hold arrived since they were read)."""
        if not deletions:
            return {}
        if report.dry_run:
            for d in deletions:
                self._tally(report, d.segment.channel_id, _reason(d), d.segment.start_at, d.segment.end_at, d.segment.bytes)
            self._dry_planned.update(d.segment.id for d in deletions)
            return {}
        not_deleted = self._delete_quarantined([d.segment for d in deletions if d.segment.state == QUARANTINED], now, report)
        deletions = [d for d in deletions if d.segment.state != QUARANTINED]
        if not deletions:
            return not_deleted
        planned = {d.segment.id: d for d in deletions}
        c, h = recordings.c, legal_holds.c
        held = exists().where(h.channel_id == c.channel_id, active_clause(now), h.start_at <= c.end_at, h.end_at > c.start_at)
        stmt = delete(recordings).where(c.id.in_(list(planned)), self._of_this_node(), ~held).returning(c.id)
        with self.engine.begin() as conn:
            gone = set(conn.scalars(stmt))
        directories: set[Path] = set()
        for seg_id in gone:
            seg, reason = planned[seg_id].segment, planned[seg_id].reason
            path = files.segment_path(self.root, seg.path)
            if path is None:
                outcome, error = files.FAILED, "its path leads outside the recordings directory"
            else:
                outcome, error = files.remove_file(path)
                directories.add(path.parent)
            if error:
                report.errors.append(f"{seg.path}: {error}")
                log.error("retention: the index row of %s is deleted but the file could not be removed (%s); it will "
                          "be removed as an orphan later", seg.path, error)
            self._tally(report, seg.channel_id, reason, seg.start_at, seg.end_at, seg.bytes, outcome)
        files.settle_dirs(directories, now.date())
        return {**not_deleted, **{i: d.segment for i, d in planned.items() if i not in gone}}

    def _delete_quarantined(self, segments: list[Segment], now: datetime, report: SweepReport) -> dict[str, Segment]:
        """Delete quarantined files for space (holds read again first). Returns those not deleted."""
        if not segments:
            return {}
        holds = self._load_holds(now)
        left: dict[str, Segment] = {}
        directories: set[Path] = set()
        for seg in segments:
            path = files.quarantine_path(self.root, seg.path)
            if holds.covering(seg.channel_id, seg.start_at, seg.end_at) or path is None:
                left[seg.id] = seg
                continue
            outcome, error = files.remove_file(path)
            if error:
                report.errors.append(f"{files.QUARANTINE}/{seg.path}: {error}")
                left[seg.id] = seg
                continue
            directories.add(path.parent)
            self._tally(report, seg.channel_id, QUARANTINE_LOW_SPACE, seg.start_at, seg.end_at, seg.bytes, outcome)
            log.warning("retention: deleted quarantined footage %s/%s (%d bytes; channel %s is not in the registry) "
                        "because space is low", files.QUARANTINE, seg.path, seg.bytes, seg.channel_id)
        files.settle_dirs(directories, now.date())
        return left

    def _tally(self, report: SweepReport, channel_id: str, reason: str, start: datetime, end: datetime, size: int,
               outcome: str = files.REMOVED) -> None:
        report.deleted[(channel_id, reason)].add(start, end, size, outcome)
        if not report.dry_run:
            self._pending[(channel_id, reason)].add(start, end, size, outcome)

    def _flush_events(self) -> None:
        if not self._pending:
            return
        rows = [event_row(Event("recording.deleted", channel, {"node_id": self.node_id, "reason": reason, **t.as_dict()}))
                for (channel, reason), t in sorted(self._pending.items())]
        with self.engine.begin() as conn:
            conn.execute(events.insert(), rows)
        self._pending.clear()

    def _raise_alarm(self, report: SweepReport, early: tuple[int, int], blocked: dict[str, tuple[int, int]],
                     young_after: datetime, now_ts: float) -> None:
        severity = CRITICAL if report.short_bytes > 0 else WARNING
        if not report.dry_run and not self._gate.allow(severity, now_ts):
            return
        if severity == CRITICAL:  # say what holds the space: the low-space scan never read the youngest footage
            for why, (n, size) in self._young_and_open(young_after).items():
                seen = blocked.get(why, (0, 0))
                blocked = {**blocked, why: (seen[0] + n, seen[1] + size)}
        severity, data = low_space_alarm(report.need, early[1], early[0], report.short_bytes, blocked)
        data["node_id"] = self.node_id
        report.alarm = data
        if report.dry_run:
            return  # shown, not raised
        with self.engine.begin() as conn:
            conn.execute(events.insert(), [event_row(Event("recording.low_space", self.node_id, data))])
        (log.error if severity == CRITICAL else log.warning)("node %s: %s", self.node_id, data["message"])

    def _young_and_open(self, young_after: datetime) -> dict[str, tuple[int, int]]:
        """(segments, bytes) of this node's footage younger than the smallest minimum age, and
        of its open segments. Only for a critical alarm: it sums over recent days."""
        c = recordings.c
        figures = select(func.count(), func.coalesce(func.sum(c.bytes), 0))
        with self.engine.connect() as conn:
            young = conn.execute(figures.where(self._of_this_node(), c.end_at > young_after)).one()
            still_open = conn.execute(figures.where(c.node_id == self.node_id, c.state == "open")).one()
        return {TOO_YOUNG: (int(young[0]), int(young[1])), OPEN: (int(still_open[0]), int(still_open[1]))}

    # -- orphans ----------------------------------------------------------------------------------
    def _orphans_due(self, now_ts: float) -> bool:
        return (self._last_orphan_scan is None
                or now_ts - self._last_orphan_scan >= self.settings.orphan_scan_interval_s) and not self._stopping.is_set()

    # -- status -----------------------------------------------------------------------------------
    def _save_status(self, report: SweepReport) -> None:
        with self.engine.begin() as conn:
            conn.execute(retention_sweeps.delete().where(retention_sweeps.c.node_id == self.node_id))
            conn.execute(retention_sweeps.insert().values(node_id=self.node_id, at=report.at, result=report.as_dict()))

    def stats(self) -> dict[str, Any]:
        return {"sweeps": self.sweeps, "failures": self.failures, "last_error": self.last_error,
                "last": self.last_report.as_dict() if self.last_report else None}


def load_holds(engine: Engine, now: datetime) -> Holds:
    """The legal holds active at `now`."""
    with engine.connect() as conn:
        rows = conn.execute(select(legal_holds).where(active_clause(now))).mappings().all()
    return Holds((Hold(r["id"], r["channel_id"], aware(r["start_at"]), aware(r["end_at"]),
                       aware(r["until"]) if r["until"] else None) for r in rows), now)


def _reason(d: Deletion) -> str:
    return QUARANTINE_LOW_SPACE if d.segment.state == QUARANTINED else d.reason


def _then_empty(batches: Iterator[list[Segment]]) -> Iterator[list[Segment]]:
    yield from batches
    yield []
