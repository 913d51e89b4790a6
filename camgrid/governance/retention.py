"""Retention profiles, which channel uses which, and legal holds: the rules the media nodes'
retention sweeps (camgrid.media.retention_worker) apply.

Every channel uses the profile named "default" unless it is assigned another one; migration
0006 creates "default" (90 days, never before 7), and `default_profile` recreates it should
it be missing (a database built without migrations). Only assignments to other profiles are
stored, so 500k channels on the default cost no rows.

A legal hold keeps a channel's footage in a time range from every deletion until it is
released or its `until` passes. Holds are never deleted, only released, so who held what,
for which case, and who let it go stays on record.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from camgrid.store.engine import utcnow
from camgrid.store.tables import channel_retention, channels, legal_holds, recordings, retention_profiles

DEFAULT = "default"
DEFAULT_MAX_AGE_DAYS = 90  # the "recordings kept >= 90 days" these networks are measured by
DEFAULT_MIN_AGE_DAYS = 7
MAX_DAYS = 36500


class RetentionError(ValueError):
    """A request the rules refuse; the message says what to do."""


class NotFound(RetentionError):
    pass


class Conflict(RetentionError):
    pass


def check_ages(max_age_days: int | None, min_age_days: int) -> None:
    if min_age_days < 0 or min_age_days > MAX_DAYS:
        raise RetentionError(f"min_age_days must be between 0 and {MAX_DAYS}, not {min_age_days}")
    if max_age_days is not None and not 1 <= max_age_days <= MAX_DAYS:
        raise RetentionError(f"max_age_days must be between 1 and {MAX_DAYS} (or null for no limit), not {max_age_days}")
    if max_age_days is not None and min_age_days > max_age_days:
        raise RetentionError(f"min_age_days ({min_age_days}) cannot be above max_age_days ({max_age_days}): "
                             "footage would have to be kept and deleted at once")


# -- profiles ---------------------------------------------------------------------------------


def default_profile(conn: Connection) -> dict[str, Any]:
    row = conn.execute(select(retention_profiles).where(retention_profiles.c.name == DEFAULT)).mappings().first()
    if row is not None:
        return dict(row)
    try:
        with conn.begin_nested():
            conn.execute(retention_profiles.insert().values(
                name=DEFAULT, max_age_days=DEFAULT_MAX_AGE_DAYS, min_age_days=DEFAULT_MIN_AGE_DAYS,
                description="Built in: used by every channel without a profile of its own.", updated_at=utcnow(),
                updated_by="camgrid"))
    except IntegrityError:
        pass  # another process created it first
    return dict(conn.execute(select(retention_profiles).where(retention_profiles.c.name == DEFAULT)).mappings().one())


def list_profiles(engine: Engine) -> list[dict[str, Any]]:
    """Every profile with the number of channels assigned to it (the default's count is of
    explicit assignments only: every other channel uses it too)."""
    counts = (select(channel_retention.c.profile_id, func.count().label("n"))
              .group_by(channel_retention.c.profile_id).subquery())
    with engine.begin() as conn:
        default_profile(conn)
        rows = conn.execute(select(retention_profiles, func.coalesce(counts.c.n, 0).label("channels"))
                            .outerjoin(counts, counts.c.profile_id == retention_profiles.c.id)
                            .order_by(retention_profiles.c.name)).mappings()
        return [dict(r) for r in rows]


def find_profile(conn: Connection, ref: int | str) -> dict[str, Any]:
    """A profile by id or by name."""
    if ref == DEFAULT:
        return default_profile(conn)
    col = retention_profiles.c.id if isinstance(ref, int) else retention_profiles.c.name
    row = conn.execute(select(retention_profiles).where(col == ref)).mappings().first()
    if row is None:
        raise NotFound(f"there is no retention profile {ref!r}; GET /api/v1/retention/profiles lists them")
    return dict(row)


def create_profile(engine: Engine, name: str, max_age_days: int | None, min_age_days: int, description: str,
                   actor: str) -> dict[str, Any]:
    check_ages(max_age_days, min_age_days)
    with engine.begin() as conn:
        if name == DEFAULT:
            default_profile(conn)
        if conn.execute(select(retention_profiles.c.id).where(retention_profiles.c.name == name)).first():
            raise Conflict(f"a retention profile named {name!r} exists already; change it with PATCH instead")
        conn.execute(retention_profiles.insert().values(
            name=name, max_age_days=max_age_days, min_age_days=min_age_days, description=description,
            updated_at=utcnow(), updated_by=actor))
        return find_profile(conn, name)


def update_profile(engine: Engine, profile_id: int, changes: dict[str, Any], actor: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Apply `changes` (name, max_age_days, min_age_days, description); returns (before, after)."""
    with engine.begin() as conn:
        before = find_profile(conn, profile_id)
        after = {**before, **changes}
        check_ages(after["max_age_days"], after["min_age_days"])
        if before["name"] == DEFAULT and after["name"] != DEFAULT:
            raise RetentionError("the default profile cannot be renamed (every channel without a profile uses it); "
                                 "change its ages instead")
        if after["name"] != before["name"] and conn.execute(
                select(retention_profiles.c.id).where(retention_profiles.c.name == after["name"])).first():
            raise Conflict(f"a retention profile named {after['name']!r} exists already")
        conn.execute(update(retention_profiles).where(retention_profiles.c.id == profile_id)
                     .values(**changes, updated_at=utcnow(), updated_by=actor))
        return before, find_profile(conn, profile_id)


# -- channels ---------------------------------------------------------------------------------


def channel_known(conn: Connection, channel_id: str) -> bool:
    """In the registry, or has footage (a removed camera's recordings still follow the rules)."""
    return bool(conn.execute(select(channels.c.pk).where(channels.c.id == channel_id).limit(1)).first()
                or conn.execute(select(recordings.c.id).where(recordings.c.channel_id == channel_id).limit(1)).first())


def channel_profile(conn: Connection, channel_id: str) -> dict[str, Any]:
    row = conn.execute(select(retention_profiles).join(channel_retention, channel_retention.c.profile_id == retention_profiles.c.id)
                       .where(channel_retention.c.channel_id == channel_id)).mappings().first()
    return dict(row) if row is not None else default_profile(conn)


def assign_profile(engine: Engine, channel_id: str, ref: int | str, actor: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Make the channel use profile `ref`; returns (previous profile, new profile)."""
    with engine.begin() as conn:
        if not channel_known(conn, channel_id):
            raise NotFound(f"channel {channel_id} is neither in the registry nor has recordings; check the ID")
        profile = find_profile(conn, ref)
        before = channel_profile(conn, channel_id)
        conn.execute(channel_retention.delete().where(channel_retention.c.channel_id == channel_id))
        if profile["name"] != DEFAULT:  # the default needs no row
            conn.execute(channel_retention.insert().values(channel_id=channel_id, profile_id=profile["id"],
                                                           updated_at=utcnow(), updated_by=actor))
        return before, profile


def oldest_footage(conn: Connection, channel_id: str | None = None) -> dict[str, Any] | None:
    """The oldest segment (by its end, through ix_recordings_end_at; per channel through
    ix_recordings_channel_id_start_at)."""
    if channel_id is None:
        stmt = select(recordings.c.channel_id, recordings.c.start_at, recordings.c.end_at).order_by(recordings.c.end_at)
    else:
        stmt = (select(recordings.c.channel_id, recordings.c.start_at, recordings.c.end_at)
                .where(recordings.c.channel_id == channel_id).order_by(recordings.c.start_at))
    row = conn.execute(stmt.limit(1)).mappings().first()
    return dict(row) if row is not None else None


# -- legal holds ------------------------------------------------------------------------------


def active_clause(now: datetime) -> Any:
    return and_(legal_holds.c.released_at.is_(None), or_(legal_holds.c.until.is_(None), legal_holds.c.until > now))


def _utc(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise RetentionError(f"{name} needs a zone, e.g. 2026-05-17T08:00:00+08:00 or ...Z")
    return value.astimezone(timezone.utc)


def create_hold(engine: Engine, *, channel_id: str, start_at: datetime, end_at: datetime, case_ref: str, reason: str,
                until: datetime | None, actor: str) -> dict[str, Any]:
    now = utcnow()
    start_at, end_at = _utc("from", start_at), _utc("to", end_at)
    until = _utc("until", until) if until is not None else None
    if end_at <= start_at:
        raise RetentionError("the held range must end after it starts (to after from)")
    if until is not None and until <= now:
        raise RetentionError("until is in the past: the hold would never be active; leave it out for a hold until released")
    if not case_ref.strip() or not reason.strip():
        raise RetentionError("a legal hold needs a case reference and a reason")
    with engine.begin() as conn:
        if not channel_known(conn, channel_id):
            raise NotFound(f"channel {channel_id} is neither in the registry nor has recordings; check the ID")
        hold_id = conn.execute(legal_holds.insert().values(
            channel_id=channel_id, start_at=start_at, end_at=end_at, case_ref=case_ref.strip(), reason=reason.strip(),
            created_by=actor, created_at=now, until=until).returning(legal_holds.c.id)).scalar_one()
        return hold_with_footage(conn, hold_id)


def hold_with_footage(conn: Connection, hold_id: int) -> dict[str, Any]:
    """The hold and what footage it keeps now (segments and bytes in its range)."""
    row = conn.execute(select(legal_holds).where(legal_holds.c.id == hold_id)).mappings().first()
    if row is None:
        raise NotFound(f"there is no legal hold {hold_id}")
    hold = dict(row)
    c = recordings.c
    segs, size = conn.execute(select(func.count(), func.coalesce(func.sum(c.bytes), 0)).where(
        c.channel_id == hold["channel_id"], c.start_at < hold["end_at"], c.end_at >= hold["start_at"])).one()
    hold["segments"], hold["bytes"] = int(segs), int(size)
    return hold


def list_holds(engine: Engine, *, channel_id: str | None = None, active: bool | None = None,
               limit: int = 100, after_id: int | None = None) -> list[dict[str, Any]]:
    now = utcnow()
    stmt = select(legal_holds).order_by(legal_holds.c.id).limit(limit)
    if channel_id is not None:
        stmt = stmt.where(legal_holds.c.channel_id == channel_id)
    if active is True:
        stmt = stmt.where(active_clause(now))
    elif active is False:
        stmt = stmt.where(~active_clause(now))
    if after_id is not None:
        stmt = stmt.where(legal_holds.c.id > after_id)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def release_hold(engine: Engine, hold_id: int, actor: str, reason: str) -> dict[str, Any]:
    with engine.begin() as conn:
        hold = hold_with_footage(conn, hold_id)
        if hold["released_at"] is not None:
            raise Conflict(f"legal hold {hold_id} was already released by {hold['released_by']} at "
                           f"{hold['released_at']}")
        conn.execute(update(legal_holds).where(legal_holds.c.id == hold_id, legal_holds.c.released_at.is_(None))
                     .values(released_at=utcnow(), released_by=actor, release_reason=reason))
        return hold_with_footage(conn, hold_id)


def active_hold_count(conn: Connection, channel_id: str | None = None) -> int:
    stmt = select(func.count()).select_from(legal_holds).where(active_clause(utcnow()))
    if channel_id is not None:
        stmt = stmt.where(legal_holds.c.channel_id == channel_id)
    return int(conn.execute(stmt).scalar_one())
