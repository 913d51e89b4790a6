"""The disk side of retention: removing segment files, tidying their directories, finding
orphan files (on disk, but in no index row), and the quarantine that keeps orphan footage of
channels the registry does not know (<recordings>/_quarantine/, the same layout).

Only files in the recorder's layout, <channel>/<YYYYMMDD>/<HHMMSS>-<8 hex>.mp4, are ever
touched: the recordings directory may be a mount point with other things in it (lost+found).
A day directory is removed once empty, but never today's or yesterday's (UTC), where the
recorder may be creating a file at that very moment. Blocking I/O: call from a worker thread.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path, PurePosixPath

from camgrid.media.segment_file import fsync_dir

_CHANNEL = re.compile(r"^[0-9A-Za-z]{1,20}$")
_DAY = re.compile(r"^\d{8}$")
_FILE = re.compile(r"^(\d{6})-[0-9a-f]{8}\.mp4$")
REMOVED, MISSING, FAILED = "removed", "missing", "failed"


def disk_usage(root: Path) -> tuple[int, int]:
    """(size, free) of the filesystem holding `root`, in bytes; free is what a non-root writer
    may still use."""
    usage = shutil.disk_usage(root)
    return usage.total, usage.free


def segment_path(root: Path, relative: str) -> Path | None:
    """The file of an index row, or None for a path that would leave the recordings directory."""
    rel = PurePosixPath(relative)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        return None
    return root.joinpath(*rel.parts)


def remove_file(path: Path) -> tuple[str, str | None]:
    """(outcome, error). A file that is already gone is not an error."""
    try:
        path.unlink()
    except FileNotFoundError:
        return MISSING, None
    except OSError as exc:
        return FAILED, f"{exc.strerror or exc}"
    return REMOVED, None


def _day_of(directory: Path) -> date | None:
    if not _DAY.match(directory.name):
        return None
    try:
        return datetime.strptime(directory.name, "%Y%m%d").date()
    except ValueError:
        return None


def settle_dirs(directories: set[Path], today: date) -> None:
    """Make removals durable (fsync each directory) and remove day directories left empty,
    except today's and yesterday's."""
    for directory in directories:
        day = _day_of(directory)
        try:
            if day is not None and day < today - timedelta(days=1) and not any(directory.iterdir()):
                directory.rmdir()
                fsync_dir(directory.parent)
            else:
                fsync_dir(directory)
        except OSError:
            continue  # gone already, or not empty after all (a file appeared): nothing to settle


@dataclass(frozen=True, slots=True)
class FileOnDisk:
    relative: str
    channel_id: str
    start_at: datetime  # from the file name (the recorder names a file after its start)
    bytes: int


def day_dirs(root: Path, since: date | None = None) -> Iterator[tuple[str, date, Path]]:
    """(channel, day, directory) of every day directory in the layout, optionally only from `since` on."""
    try:
        channel_dirs = sorted(p for p in root.iterdir() if p.is_dir() and _CHANNEL.match(p.name))
    except FileNotFoundError:
        return
    for channel_dir in channel_dirs:
        try:
            entries = sorted(channel_dir.iterdir())
        except OSError:
            continue
        for directory in entries:
            day = _day_of(directory)
            if day is not None and directory.is_dir() and (since is None or day >= since):
                yield channel_dir.name, day, directory


def settled_files(directory: Path, channel_id: str, day: date, unchanged_before: float) -> list[FileOnDisk]:
    """Segment files in a day directory not modified since `unchanged_before` (epoch seconds):
    a file the recorder still writes to, or whose index row may still be queued, is newer."""
    found = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return found
    for entry in entries:
        match = _FILE.match(entry.name)
        if not match or not entry.is_file(follow_symlinks=False):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if st.st_mtime >= unchanged_before:
            continue
        hms = match.group(1)
        try:
            start = datetime(day.year, day.month, day.day, int(hms[:2]), int(hms[2:4]), int(hms[4:]), tzinfo=timezone.utc)
        except ValueError:
            continue
        found.append(FileOnDisk(f"{channel_id}/{directory.name}/{entry.name}", channel_id, start, st.st_size))
    return found


# -- quarantine ---------------------------------------------------------------------------------
# Footage of a channel the registry no longer knows (a re-import, a swapped NVR) is moved, not
# deleted, to <recordings>/_quarantine/<channel>/<YYYYMMDD>/<file>: the same filesystem (a rename,
# counted in the same disk), the same layout, and a name no channel directory can have.
QUARANTINE = "_quarantine"


@dataclass(frozen=True, slots=True)
class Quarantined:
    relative: str  # its path in the recordings layout (where it came from, where a re-index puts it)
    channel_id: str
    start_at: datetime  # from the file name
    end_at: datetime  # its age: the later of its start and its last change (a move keeps that)
    bytes: int


def quarantine_path(root: Path, relative: str) -> Path | None:
    path = segment_path(root, relative)
    return None if path is None else root / QUARANTINE / path.relative_to(root)


def _move(source: Path, target: Path) -> tuple[str, str | None]:
    """Rename `source` to `target` (never over an existing file), durably. (outcome, error)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            return FAILED, f"{target} already exists"
        os.rename(source, target)
        fsync_dir(target.parent)
        fsync_dir(source.parent)
    except FileNotFoundError:
        return MISSING, None
    except OSError as exc:
        return FAILED, f"{exc.strerror or exc}"
    return REMOVED, None


def quarantine(root: Path, relative: str) -> tuple[str, str | None]:
    """Move a segment file from the recordings layout into the quarantine. (outcome, error)."""
    source, target = segment_path(root, relative), quarantine_path(root, relative)
    if source is None or target is None:
        return FAILED, "its path leads outside the recordings directory"
    return _move(source, target)


def release(root: Path, relative: str) -> tuple[str, str | None]:
    """Move a quarantined file back to its place in the recordings layout. (outcome, error)."""
    source, target = quarantine_path(root, relative), segment_path(root, relative)
    if source is None or target is None:
        return FAILED, "its path leads outside the recordings directory"
    return _move(source, target)


def quarantined(root: Path, channel_id: str | None = None) -> list[Quarantined]:
    """The quarantined segment files (of one channel), oldest first."""
    base = root / QUARANTINE
    found: list[Quarantined] = []
    if channel_id is not None and not _CHANNEL.match(channel_id):
        return found
    for channel, day, directory in day_dirs(base):
        if channel_id is not None and channel != channel_id:
            continue
        for f in settled_files(directory, channel, day, float("inf")):
            try:
                mtime = (directory / PurePosixPath(f.relative).name).stat().st_mtime
            except FileNotFoundError:
                continue
            end = max(f.start_at, datetime.fromtimestamp(mtime, timezone.utc))
            found.append(Quarantined(f.relative, channel, f.start_at, end, f.bytes))
    found.sort(key=lambda q: (q.end_at, q.relative))
    return found


def quarantined_bytes(root: Path) -> int:
    return sum(q.bytes for q in quarantined(root))
