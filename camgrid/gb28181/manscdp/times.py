"""GB/T 28181 local times ("2024-05-17T14:07:33", no zone) ↔ aware UTC datetimes."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from camgrid.gb28181.manscdp.codec import ManscdpError

try:
    CHINA_TZ: tzinfo = ZoneInfo("Asia/Shanghai")
except ZoneInfoNotFoundError:  # pragma: no cover - no tz database: China has had no DST since 1991
    CHINA_TZ = timezone(timedelta(hours=8), "CST")

_GB_TIME = re.compile(
    r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2}))?(?:[.,](\d{1,9}))?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?\s*$",
    re.ASCII,
)


def parse_gb_time(s: str, tz: tzinfo = CHINA_TZ) -> datetime:
    """A GB time as an aware UTC datetime. The text is read as local time in `tz` unless it
    carries its own offset or Z (some platforms add one). Accepts a space instead of T,
    fractions of a second and a missing seconds or time part."""
    if not isinstance(s, str):
        raise ManscdpError(f"time must be text like 2024-05-17T14:07:33, got {type(s).__name__}")
    m = _GB_TIME.match(s)
    if not m:
        raise ManscdpError(f"time {s[:40]!r} is not like 2024-05-17T14:07:33")
    year, month, day, hour, minute, second, frac, offset = m.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    zone: tzinfo = tz
    if offset == "Z":
        zone = timezone.utc
    elif offset:
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        zone = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        local = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                         int(second or 0), micro, tzinfo=zone)
    except ValueError as exc:
        raise ManscdpError(f"time {s[:40]!r} is not a real date/time: {exc}") from None
    try:
        return local.astimezone(timezone.utc)
    except OverflowError:
        raise ManscdpError(f"time {s[:40]!r} is out of range") from None


def format_gb_time(dt: datetime, tz: tzinfo = CHINA_TZ, *, millis: bool = False) -> str:
    """Local time in `tz` without zone, as devices expect. Naive datetimes are refused: the
    platform keeps UTC with zone, and guessing would shift times by hours."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("format_gb_time needs an aware datetime (UTC with zone), got a naive one")
    local = dt.astimezone(tz)
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{local.microsecond // 1000:03d}" if millis else text
