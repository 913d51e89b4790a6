"""RecordInfo pages → records, and every builder speaking the peer's charset."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from camgrid.gb28181 import manscdp
from camgrid.gb28181.manscdp import RecordAssembler, parse_manscdp, record_item_to_row

CAM = "34020000001320000001"
UTC = timezone.utc


def _rec(start: str, end: str, **extra: str) -> dict:
    return {"DeviceID": CAM, "Name": "东门", "FilePath": f"/r/{start}.mp4", "Address": "", "StartTime": start,
            "EndTime": end, "Secrecy": "0", "Type": "time", "RecorderID": CAM, **extra}


def _pages(sn: int, records: list[dict], page_size: int, charset: str = "GB18030") -> list:
    return [parse_manscdp(b) for b in manscdp.record_info_response_pages(CAM, sn, records, page_size, charset=charset)]


def test_pages_assemble_deduplicated_in_any_order() -> None:
    recs = [_rec(f"2026-11-20T{h:02d}:00:00", f"2026-11-20T{h:02d}:30:00") for h in range(7)]
    pages = _pages(42, recs, 3)
    assert [p.list_num for p in pages] == [3, 3, 1] and all(p.sum_num == 7 for p in pages)
    asm = RecordAssembler(CAM, 42, 0.0)
    asm.feed(pages[2], 1.0)
    asm.feed(pages[0], 1.1)
    asm.feed(pages[0], 1.2)  # the device resent a page: nothing counts twice
    assert asm.received == 4 and not asm.complete
    asm.feed(pages[1], 1.3)
    items, partial, expected = asm.result()
    assert (len(items), partial, expected) == (7, False, 7)


def test_same_start_different_type_are_two_records() -> None:
    pages = _pages(1, [_rec("2026-11-20T01:00:00", "2026-11-20T01:10:00"),
                       _rec("2026-11-20T01:00:00", "2026-11-20T01:10:00", Type="alarm")], 10)
    asm = RecordAssembler(CAM, 1, 0.0)
    asm.feed(pages[0], 0.1)
    assert asm.complete and asm.received == 2


def test_missing_pages_leave_a_partial_answer() -> None:
    recs = [_rec(f"2026-11-20T{h:02d}:00:00", f"2026-11-20T{h:02d}:59:59") for h in range(5)]
    pages = _pages(9, recs, 2)
    asm = RecordAssembler(CAM, 9, 0.0)
    asm.feed(pages[0], 1.0)
    assert asm.timed_out(6.0, 5.0) and asm.result()[1:] == (True, 5)


def test_records_without_start_are_dropped_and_counted() -> None:
    asm = RecordAssembler(CAM, 3, 0.0)
    asm.feed(_pages(3, [_rec("", "2026-11-20T01:00:00"), _rec("2026-11-20T01:00:00", "2026-11-20T02:00:00")], 5)[0], 0.1)
    assert asm.dropped == 1 and asm.received == 1


def test_empty_record_list_is_complete() -> None:
    asm = RecordAssembler(CAM, 3, 0.0)
    asm.feed(_pages(3, [], 5)[0], 0.1)
    assert asm.complete and asm.result() == ([], False, 0)


def test_record_row_reads_local_time_and_fields() -> None:
    row = record_item_to_row(_rec("2026-11-20T08:00:00", "2026-11-20T08:30:00", FileSize="900000000", Type="Alarm"))
    assert row is not None
    assert row["start"] == datetime(2026, 11, 20, 0, 0, tzinfo=UTC)  # 08:00 in Asia/Shanghai
    assert row["end"] == datetime(2026, 11, 20, 0, 30, tzinfo=UTC)
    assert (row["channel_id"], row["name"], row["type"], row["file_size"], row["secrecy"]) == (
        CAM, "东门", "alarm", 900000000, 0)


@pytest.mark.parametrize("start,end", [
    ("2026-11-20T08:00:00", "yesterday"),
    ("2026-13-40T08:00:00", "2026-11-20T09:00:00"),
    ("2026-11-20T09:00:00", "2026-11-20T08:00:00"),  # ends before it starts
])
def test_unusable_record_rows_are_none(start: str, end: str) -> None:
    assert record_item_to_row(_rec(start, end)) is None


def test_odd_sizes_and_types_do_not_raise() -> None:
    row = record_item_to_row(_rec("2026-11-20T08:00:00", "2026-11-20T08:00:00", FileSize="-5", Type=""))
    assert row is not None and row["file_size"] is None and row["type"] == "time"


def test_response_pages_write_datetimes_as_gb_local_time() -> None:
    start = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
    body = manscdp.record_info_response_pages(CAM, 1, [{"DeviceID": CAM, "StartTime": start, "EndTime": start}], 5)[0]
    assert b"<StartTime>2026-11-20T08:00:00</StartTime>" in body


# -- charset --------------------------------------------------------------------------------------

@pytest.mark.parametrize("charset,declared,codec", [("UTF-8", b'encoding="UTF-8"', "utf-8"),
                                                    ("GB18030", b'encoding="GB2312"', "gb18030")])
def test_builders_write_the_charset_they_are_given(charset: str, declared: bytes, codec: str) -> None:
    bodies = [
        manscdp.catalog_query(CAM, 1, charset=charset),
        manscdp.device_info_query(CAM, 1, charset=charset),
        manscdp.device_control_record(CAM, 1, True, charset=charset),
        manscdp.device_control_guard(CAM, 1, False, charset=charset),
        manscdp.device_control_alarm_reset(CAM, 1, charset=charset),
        manscdp.device_config_basic(CAM, 1, name="东门 camera", charset=charset),
        manscdp.alarm_response(CAM, 1, charset=charset),
        manscdp.record_info_query(CAM, 1, "2026-11-20T08:00:00", "2026-11-20T09:00:00", charset=charset),
    ]
    for body in bodies:
        assert declared in body.split(b"\n", 1)[0]
        assert parse_manscdp(body).charset == ("UTF-8" if charset == "UTF-8" else "GB18030")
    name_body = bodies[5]
    assert "东门 camera".encode(codec) in name_body
    assert parse_manscdp(name_body).fields["BasicParam.Name"] == "东门 camera"


def test_control_bodies_carry_the_standard_elements() -> None:
    assert parse_manscdp(manscdp.device_control_record(CAM, 5, False)).fields["RecordCmd"] == "StopRecord"
    assert parse_manscdp(manscdp.device_control_guard(CAM, 5, True)).fields["GuardCmd"] == "SetGuard"
    assert parse_manscdp(manscdp.device_control_alarm_reset(CAM, 5)).fields["AlarmCmd"] == "ResetAlarm"
    cfg = parse_manscdp(manscdp.device_config_basic(CAM, 5, expiration=3600, heartbeat_interval=30, heartbeat_count=3))
    assert (cfg.cmd_type, cfg.fields["BasicParam.Expiration"], cfg.fields["BasicParam.HeartBeatCount"]) == (
        "DeviceConfig", "3600", "3")
    with pytest.raises(ValueError):
        manscdp.device_config_basic(CAM, 5)


# -- fuzz: whatever a device sends, no exception escapes ------------------------------------------
from hypothesis import given, settings as hsettings, strategies as st  # noqa: E402

_TEXT = st.one_of(st.text(max_size=30), st.sampled_from(["2026-11-20T08:00:00", "2026-02-30T25:61:00", "", "-1",
                                                        "99999999999999999999999", "1e9", "Z", "alarm"]))
_ITEM = st.dictionaries(st.sampled_from(["DeviceID", "Name", "FilePath", "StartTime", "EndTime", "Type", "FileSize",
                                         "Secrecy", "Address", "RecorderID", "Other"]), _TEXT, max_size=11)


@hsettings(max_examples=400, deadline=None)
@given(_ITEM)
def test_any_record_item_maps_or_is_refused(item) -> None:
    row = record_item_to_row(item)
    if row is not None:
        assert row["end"] >= row["start"] and row["start"].utcoffset().total_seconds() == 0
        assert row["file_size"] is None or row["file_size"] >= 0


@hsettings(max_examples=200, deadline=None)
@given(st.lists(st.lists(_ITEM, max_size=5), max_size=4), st.lists(st.integers(-5, 50), min_size=4, max_size=4))
def test_any_pages_assemble_without_error(pages, sums) -> None:
    asm = RecordAssembler(CAM, 1, 0.0)
    for i, items in enumerate(pages):
        msg = manscdp.ManscdpMessage("Response", "RecordInfo", 1, CAM, items=[{k: str(v) for k, v in it.items()} for it in items],
                                     sum_num=sums[i])
        asm.feed(msg, float(i))
    items, partial, expected = asm.result()
    assert len(items) == asm.received and (expected is None or expected >= 0)
    assert partial == (not asm.complete)
