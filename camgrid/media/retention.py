"""Retention policy: which recorded segments to delete, and why. Pure: no disk, no database,
no clock — everything is passed in, so every rule is tested directly (tests/media/test_retention.py).
camgrid.media.retention_worker does the I/O around it.

The rules, strongest first:

1. Never deleted: a segment still open (being written, or left open by a node that died and
   not yet recovered); a segment that overlaps an active legal hold; a segment younger than
   its profile's minimum age. A segment's age is that of its newest footage (its end).
2. "max_age": a segment older than its profile's maximum age is deleted.
3. "low_space": while free space (on the disk, or within the node's quota) is below the low
   water, the oldest segments that rule 1 allows are deleted, oldest first, until the high
   water is reached — and not one segment more.

Quarantined footage (segment files of a channel no longer in the registry, moved aside by the
worker instead of deleted) has no maximum age: only rule 3 deletes it, oldest first with the rest,
and rule 1 still applies (held, too young).

When low space cannot be fixed (everything left is held, too young or open), new footage will
fail to be written; the worker raises an alarm instead of breaking rule 1. Deleting footage
before its maximum age breaks the "kept 90 days" figure, so that is alarmed too (less often).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

MAX_AGE, LOW_SPACE = "max_age", "low_space"
OPEN, HELD, TOO_YOUNG = "open", "held", "too_young"
DELETABLE_STATES = ("closed", "recovered")
QUARANTINED = "quarantined"  # the state of a quarantined file (no index row) offered to `decide`
# A byte threshold meant for a big disk must not make a small one (an embedded board, a test
# filesystem) look permanently full: absolute thresholds count for at most this share of it.
MAX_ABSOLUTE_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    max_age_days: int | None  # None: no age limit; only low space deletes
    min_age_days: int = 0
    id: int | None = None

    def expired(self, end_at: datetime, now: datetime) -> bool:
        return self.max_age_days is not None and end_at < now - timedelta(days=self.max_age_days)

    def too_young(self, end_at: datetime, now: datetime) -> bool:
        return end_at > now - timedelta(days=self.min_age_days)


@dataclass(frozen=True, slots=True)
class Hold:
    id: int
    channel_id: str
    start_at: datetime
    end_at: datetime
    until: datetime | None = None  # None: until released
    released_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.released_at is None and (self.until is None or self.until > now)

    def overlaps(self, start_at: datetime, end_at: datetime) -> bool:
        # A zero-length segment at the hold's very start still counts as held.
        return start_at < self.end_at and end_at >= self.start_at


class Holds:
    """The holds active at `now`, looked up by channel."""

    def __init__(self, holds: Iterable[Hold], now: datetime) -> None:
        self._by_channel: dict[str, list[Hold]] = defaultdict(list)
        for hold in holds:
            if hold.active(now):
                self._by_channel[hold.channel_id].append(hold)

    def covering(self, channel_id: str, start_at: datetime, end_at: datetime) -> Hold | None:
        for hold in self._by_channel.get(channel_id, ()):
            if hold.overlaps(start_at, end_at):
                return hold
        return None

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_channel.values())


@dataclass(frozen=True, slots=True)
class Segment:
    id: str
    channel_id: str
    start_at: datetime
    end_at: datetime
    bytes: int
    state: str
    path: str = ""


@dataclass(frozen=True, slots=True)
class Deletion:
    segment: Segment
    reason: str  # MAX_AGE | LOW_SPACE


@dataclass
class Plan:
    """What to delete from one batch of segments, and what was kept although a rule wanted it gone."""

    deletions: list[Deletion] = field(default_factory=list)
    blocked: dict[str, list[Segment]] = field(default_factory=lambda: defaultdict(list))  # protection → segments
    need_left: int = 0  # bytes still to free after these deletions

    def freed(self, reason: str | None = None) -> int:
        return sum(d.segment.bytes for d in self.deletions if reason is None or d.reason == reason)


def protection(segment: Segment, profile: Profile, holds: Holds, now: datetime) -> str | None:
    """Why the segment must be kept whatever else applies, or None."""
    if segment.state not in DELETABLE_STATES and segment.state != QUARANTINED:
        return OPEN
    if holds.covering(segment.channel_id, segment.start_at, segment.end_at) is not None:
        return HELD
    if profile.too_young(segment.end_at, now):
        return TOO_YOUNG
    return None


def decide(segments: Iterable[Segment], *, profile_of: Callable[[str], Profile], holds: Holds, now: datetime,
           need_bytes: int = 0) -> Plan:
    """Deletions for `segments` (oldest first by end). Expired segments go first, and what they
    free counts toward `need_bytes`; then the oldest others (quarantined files among them) go,
    for low space, until the need is met. A protected segment is never deleted: it is listed in `blocked` when a rule wanted it."""
    plan = Plan(need_left=need_bytes)
    younger: list[Segment] = []
    protected: list[tuple[str, Segment, bool]] = []
    for seg in segments:
        profile = profile_of(seg.channel_id)
        expired = profile.expired(seg.end_at, now) and seg.state != QUARANTINED  # only low space deletes those
        why = protection(seg, profile, holds, now)
        if why is not None:
            protected.append((why, seg, expired))
        elif expired:
            plan.deletions.append(Deletion(seg, MAX_AGE))
            plan.need_left -= seg.bytes
        else:
            younger.append(seg)
    for seg in younger:
        if plan.need_left <= 0:
            break
        plan.deletions.append(Deletion(seg, LOW_SPACE))
        plan.need_left -= seg.bytes
    plan.need_left = max(0, plan.need_left)
    for why, seg, expired in protected:
        if expired or plan.need_left > 0:
            plan.blocked[why].append(seg)
    return plan


# -- space ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Disk:
    """Figures of the recordings' filesystem, and the bytes this node's index holds."""

    size_bytes: int
    free_bytes: int
    recordings_bytes: int | None = None  # needed only with a quota


@dataclass(frozen=True, slots=True)
class Thresholds:
    min_free_percent: float = 5.0
    min_free_bytes: int = 1 << 30
    target_free_percent: float = 10.0
    target_free_bytes: int = 2 << 30
    quota_bytes: int | None = None

    @classmethod
    def of(cls, settings: Any) -> Thresholds:
        """From a camgrid.config.RetentionSettings."""
        return cls(settings.min_free_percent, settings.min_free_bytes, settings.target_free_percent,
                   settings.target_free_bytes, settings.quota_bytes)


@dataclass(frozen=True, slots=True)
class SpaceNeed:
    bytes: int  # to free to reach the high water; 0 when above the low water
    limit: str | None = None  # "disk" | "quota": which one is low
    figures: dict[str, int] = field(default_factory=dict)


def _water(size: int, percent: float, absolute: int) -> int:
    return max(math.ceil(size * percent / 100), min(absolute, int(size * MAX_ABSOLUTE_SHARE)))


def space_needed(disk: Disk, t: Thresholds) -> SpaceNeed:
    """How many bytes to free. The quota is treated as a disk of that size holding this node's
    recordings, with the same percentages (the byte thresholds are for the real disk)."""
    best = SpaceNeed(0)
    low = _water(disk.size_bytes, t.min_free_percent, t.min_free_bytes)
    if disk.free_bytes < low:
        high = _water(disk.size_bytes, t.target_free_percent, t.target_free_bytes)
        best = SpaceNeed(high - disk.free_bytes, "disk", {"free_bytes": disk.free_bytes, "size_bytes": disk.size_bytes,
                                                         "low_water_bytes": low, "target_free_bytes": high})
    if t.quota_bytes is not None and disk.recordings_bytes is not None:
        free = t.quota_bytes - disk.recordings_bytes
        low = _water(t.quota_bytes, t.min_free_percent, 0)
        if free < low:
            high = _water(t.quota_bytes, t.target_free_percent, 0)
            if high - free > best.bytes:
                best = SpaceNeed(high - free, "quota", {"quota_bytes": t.quota_bytes, "recordings_bytes": disk.recordings_bytes,
                                                        "low_water_bytes": low, "target_free_bytes": high})
    return best


# -- alarms -----------------------------------------------------------------------------------

WARNING, CRITICAL = "warning", "critical"


class AlarmGate:
    """Rate limit for the low-space alarm: at most one per `interval_s` while the condition
    lasts, but a worse one (warning → critical) passes at once."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last_at: float | None = None
        self._last_severity: str | None = None

    def allow(self, severity: str, now: float) -> bool:
        worse = severity == CRITICAL and self._last_severity != CRITICAL
        if self._last_at is not None and now - self._last_at < self.interval_s and not worse:
            return False
        self._last_at, self._last_severity = now, severity
        return True


def low_space_alarm(need: SpaceNeed, freed_early: int, deleted_early: int, short_bytes: int,
                    blocked: Mapping[str, tuple[int, int]]) -> tuple[str, dict[str, Any]]:
    """(severity, event data) for a sweep that found space low. `blocked` maps a protection
    to (segments, bytes) kept although space was needed."""
    severity = CRITICAL if short_bytes > 0 else WARNING
    data: dict[str, Any] = {
        "severity": severity, "limit": need.limit, **need.figures, "needed_bytes": need.bytes,
        "deleted_before_max_age": deleted_early, "freed_bytes": freed_early, "short_bytes": short_bytes,
        **{f"{why}_segments": n for why, (n, _) in blocked.items()},
        **{f"{why}_bytes": b for why, (_, b) in blocked.items()},
    }
    if severity == CRITICAL:
        data["message"] = (f"recordings' {need.limit} is low and {short_bytes} more bytes cannot be freed: the rest is "
                           "under legal hold, younger than its minimum age, or still being written. New footage will "
                           "fail to record once the space is gone: add disk, lower minimum ages, or release holds.")
    else:
        data["message"] = (f"recordings' {need.limit} was low: {deleted_early} segments were deleted before their "
                           "maximum age. Add disk or shorten maximum ages to keep footage as long as profiles say.")
    return severity, data
