"""Orphans: segment files with no index row (a node that died before indexing them, an index row
lost), step 3 of a retention sweep (camgrid.media.retention_worker).

A file unchanged for `orphan_grace_s` that reads as a whole fMP4 segment of a channel the
registry knows is indexed again (state "recovered", codec, size and length read from the file,
start from its name; a torn tail cut off). One that reads as footage of a channel the registry
does not know is moved to the quarantine (<recordings>/_quarantine/, same layout), not deleted.
One that is not footage (unreadable, no whole fragment) is deleted unless held. The first scan
looks at every day directory; later ones only at recent days (orphans are born at a crash, and a
crash is followed by a start, hence a first scan).

`index_recovered` and `DeviceOf` also serve `camgrid retention orphans reindex`.
"""

from __future__ import annotations

import logging
import struct
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select

from camgrid.bus import Event
from camgrid.config import RetentionSettings
from camgrid.governance.event_log import event_row
from camgrid.media import retention_files as files
from camgrid.media.recording_index import audio_codec_of_file
from camgrid.media.recordings_query import MAX_SEGMENT
from camgrid.media.retention import QUARANTINED, Holds
from camgrid.media.segment_file import SegmentError, SegmentInfo, describe_segment
from camgrid.store.tables import channels, events, recordings

if TYPE_CHECKING:
    from camgrid.media.retention_worker import SweepReport

log = logging.getLogger(__name__)

ORPHAN = "orphan"  # an orphan file that is not footage, deleted (recording.deleted reason)

# (report, channel, reason, start, end, bytes, outcome): the worker counts a deletion and queues its event
CountDeletion = Callable[["SweepReport", str, str, datetime, datetime, int, str], None]


class OrphanScan:
    """One node's orphan scan, run by its RetentionWorker's sweep (blocking: in the sweep's thread)."""

    def __init__(self, engine: Engine, root: Path, node_id: str, settings: RetentionSettings,
                 stopping: threading.Event, tally: CountDeletion) -> None:
        self.engine = engine
        self.root = root
        self.node_id = node_id
        self.settings = settings
        self._stopping = stopping  # set: stop between day directories
        self._tally = tally

    def run(self, holds: Holds, now_ts: float, report: SweepReport, *, first: bool) -> None:
        """Scan every day directory (`first`) or the recent ones; report.orphans_scanned says
        whether the scan went through them all (it stops between directories when the worker stops)."""
        grace = self.settings.orphan_grace_s
        now = datetime.fromtimestamp(now_ts, timezone.utc)
        since = None if first else (now - timedelta(seconds=grace) - timedelta(days=2)).date()
        device_of = DeviceOf(self.engine)
        interrupted = False
        for channel_id, day, directory in files.day_dirs(self.root, since):
            if self._stopping.is_set():
                interrupted = True
                break
            settled = files.settled_files(directory, channel_id, day, now_ts - grace)
            if not settled:
                continue
            indexed = self._indexed(channel_id, day, [f.relative for f in settled])
            removed = False
            for f in settled:
                if f.relative in indexed:
                    continue
                path = directory / Path(f.relative).name
                why = self._reindex(path, f, device_of, report)
                if why is None:
                    continue  # footage: indexed again
                if why == QUARANTINED:
                    removed = True  # footage of an unknown channel: moved to the quarantine
                    continue
                if holds.covering(channel_id, f.start_at, f.start_at + MAX_SEGMENT):
                    continue
                outcome, error = (files.REMOVED, None) if report.dry_run else files.remove_file(path)
                if error:
                    report.errors.append(f"{f.relative}: {error}")
                    continue
                removed = True
                self._tally(report, channel_id, ORPHAN, f.start_at, f.start_at, f.bytes, outcome)
                log.warning("retention: %s has no index row and cannot be indexed again (%s); %s", f.relative, why,
                            "would delete it" if report.dry_run else "deleted it")
            if removed and not report.dry_run:
                files.settle_dirs({directory}, now.date())
        for kind, tallies in (("recording.reindexed", report.reindexed), ("recording.quarantined", report.quarantined)):
            if tallies and not report.dry_run:
                with self.engine.begin() as conn:
                    conn.execute(events.insert(), [event_row(Event(kind, channel, {"node_id": self.node_id, **t.as_dict()}))
                                                   for channel, t in sorted(tallies.items())])
        report.orphans_scanned = not interrupted

    def _reindex(self, path: Path, f: files.FileOnDisk, device_of: DeviceOf, report: SweepReport) -> str | None:
        """Index an orphan file again when it is footage of a known channel: None when it was
        (or, in a dry run, would be); QUARANTINED when it is footage of a channel the registry
        does not know and was (would be) moved to the quarantine; otherwise why it is not footage."""
        device_id = device_of(f.channel_id)
        try:
            info = describe_segment(path, repair=device_id is not None and not report.dry_run)
        except FileNotFoundError:
            return "it is gone"
        except (SegmentError, OSError, struct.error) as exc:
            return f"unreadable: {exc}"
        end_at = f.start_at + timedelta(seconds=info.duration_s)
        if device_id is None:
            return self._quarantine(f, end_at, report)
        if not report.dry_run and not index_recovered(self.engine, self.root, f.relative, f.channel_id, device_id,
                                                      f.start_at, info, self.node_id):
            return None  # indexed meanwhile
        report.reindexed[f.channel_id].add(f.start_at, end_at, info.bytes)
        log.warning("retention: %s had no index row; %s it again (%s %dx%d, %.1f s, %d bytes%s)", f.relative,
                    "would index" if report.dry_run else "indexed", info.codec, info.width, info.height, info.duration_s,
                    info.bytes, f", {info.torn_bytes} torn bytes cut" if info.torn_bytes and not report.dry_run else "")
        return None

    def _quarantine(self, f: files.FileOnDisk, end_at: datetime, report: SweepReport) -> str | None:
        if not report.dry_run:
            outcome, error = files.quarantine(self.root, f.relative)
            if error:
                report.errors.append(f"{f.relative}: cannot move it to the quarantine: {error}")
                log.error("retention: %s is footage of channel %s, which is not in the registry, and cannot be moved to "
                          "the quarantine (%s); it stays where it is", f.relative, f.channel_id, error)
                return QUARANTINED  # kept in place, tried again at the next scan
            if outcome == files.MISSING:
                return "it is gone"
        report.quarantined[f.channel_id].add(f.start_at, end_at, f.bytes)
        log.warning("retention: %s is footage of channel %s, which is not in the registry; %s to %s/ (list with "
                    "`camgrid retention orphans list`)", f.relative, f.channel_id,
                    "would move it" if report.dry_run else "moved it", files.QUARANTINE)
        return QUARANTINED

    def _indexed(self, channel_id: str, day: Any, paths: list[str]) -> set[str]:
        """Which of `paths` have an index row (any node, any state). The (channel_id, start_at)
        index narrows the search to the days around the directory's."""
        c = recordings.c
        start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc) - timedelta(days=1)
        found: set[str] = set()
        with self.engine.connect() as conn:
            for i in range(0, len(paths), 500):
                found.update(conn.scalars(select(c.path).where(
                    c.channel_id == channel_id, c.start_at >= start, c.start_at < start + timedelta(days=3),
                    c.path.in_(paths[i:i + 500]))))
        return found


def index_recovered(engine: Engine, root: Path, relative: str, channel_id: str, device_id: str, start_at: datetime,
                    info: SegmentInfo, node_id: str) -> bool:
    """Write the index row of a segment file found again (state "recovered"; its audio codec read
    from the file); False when a row for that file exists already. The id keeps the file name's 8 hex digits."""
    seg_id = Path(relative).stem.split("-", 1)[1] + uuid.uuid4().hex[8:]
    row = {"id": seg_id, "channel_id": channel_id, "device_id": device_id, "start_at": start_at,
           "end_at": start_at + timedelta(seconds=info.duration_s), "bytes": info.bytes, "path": relative, "codec": info.codec,
           "width": info.width, "height": info.height, "audio_codec": audio_codec_of_file(root / relative),
           "state": "recovered", "node_id": node_id,
           "created_at": datetime.now(timezone.utc)}
    c = recordings.c
    with engine.begin() as conn:
        if conn.execute(select(c.id).where(c.channel_id == channel_id, c.start_at >= start_at - timedelta(days=1),
                                           c.start_at < start_at + timedelta(days=1), c.path == relative)).first():
            return False
        conn.execute(recordings.insert(), row)
    return True


class DeviceOf:
    """channel → its device in the registry (None: unknown), asked once per channel per scan."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._known: dict[str, str | None] = {}

    def __call__(self, channel_id: str) -> str | None:
        if channel_id not in self._known:
            with self.engine.connect() as conn:
                self._known[channel_id] = conn.scalars(select(channels.c.device_id).where(channels.c.id == channel_id)
                                                       .order_by(channels.c.pk).limit(1)).first()
        return self._known[channel_id]
