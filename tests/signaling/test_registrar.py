"""The Date value on REGISTER answers (devices set their clocks from it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from camgrid.signaling.registrar import gb_date

SHANGHAI, LONDON = ZoneInfo("Asia/Shanghai"), ZoneInfo("Europe/London")


def test_local_time_with_milliseconds_across_seconds_and_zones():
    t = datetime(2026, 12, 1, 15, 59, 59, 987654, tzinfo=UTC)
    assert gb_date(t, SHANGHAI) == "2026-12-01T23:59:59.987"
    assert gb_date(t + timedelta(microseconds=20_000), SHANGHAI) == "2026-12-02T00:00:00.007"  # next second, next day
    assert gb_date(t, LONDON) == "2026-12-01T15:59:59.987"  # another zone is not served from the cache
    assert gb_date(t.replace(microsecond=1000), SHANGHAI) == "2026-12-01T23:59:59.001"


def test_every_millisecond_of_a_second_matches_a_fresh_conversion():
    base = datetime(2027, 3, 28, 0, 59, 58, tzinfo=UTC)  # around London's switch to summer time
    for ms in range(0, 3000, 37):
        t = base + timedelta(milliseconds=ms)
        local = t.astimezone(LONDON)
        assert gb_date(t, LONDON) == local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}"
