"""The simulator's device-side record list: deterministic, with gaps, clipped to what exists."""

from __future__ import annotations

from camgrid.sim.devices import RECORD_FILE_S, RECORD_LIMIT, SimChannel, device_records

CH = SimChannel("34020000001320000001", "sim ch1")
NOW = 1_800_000_000.0  # a fixed "now", aligned to the half hour


def test_same_query_same_answer_and_files_are_aligned() -> None:
    a = device_records(CH, NOW - 86400, NOW, NOW)
    assert a == device_records(CH, NOW - 86400, NOW, NOW)
    assert all(r["StartTime"].timestamp() % RECORD_FILE_S == 0 for r in a)
    assert all(r["EndTime"] > r["StartTime"] for r in a)


def test_about_one_in_ten_files_is_missing() -> None:
    day = device_records(CH, NOW - 86400, NOW, NOW)
    slots = 86400 // RECORD_FILE_S
    assert slots * 0.75 <= len(day) < slots  # some gaps, most present


def test_nothing_in_the_future_or_beyond_retention() -> None:
    assert device_records(CH, NOW + 10, NOW + 86400, NOW) == []
    assert device_records(CH, NOW - 30 * 86400, NOW - 20 * 86400, NOW) == []


def test_type_filter_and_limit() -> None:
    alarms = device_records(CH, NOW - 3 * 86400, NOW, NOW, record_type="alarm")
    assert alarms and all(r["Type"] == "alarm" for r in alarms)
    assert len(device_records(CH, NOW - 7 * 86400, NOW, NOW, file_s=60)) == RECORD_LIMIT
