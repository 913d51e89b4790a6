"""RecordInfo answers: a device's own recordings of a channel, assembled from pages."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo
from typing import Any

from camgrid.gb28181.manscdp.codec import ManscdpError
from camgrid.gb28181.manscdp.paging import PagedAssembler
from camgrid.gb28181.manscdp.times import CHINA_TZ, parse_gb_time

RECORD_TYPES = ("all", "time", "alarm", "manual")


def _field(item: Mapping[str, str], name: str) -> str:
    return (item.get(name) or "").strip()


class RecordAssembler(PagedAssembler):
    """Pages of one RecordInfo answer. A record is one file or span; the same span sent twice
    (devices resend a page when our 200 is slow) counts once. Items without a start time are
    dropped: they cannot be played back."""

    def key(self, item: Mapping[str, str]) -> tuple[str, ...] | None:
        start = _field(item, "StartTime")
        if not start:
            return None
        return (_field(item, "DeviceID"), start, _field(item, "EndTime"), _field(item, "FilePath"), _field(item, "Type"))


def _size(value: str) -> int | None:
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else None


def record_item_to_row(item: Mapping[str, str], tz: tzinfo = CHINA_TZ) -> dict[str, Any] | None:
    """A RecordList Item → {channel_id, name, file_path, address, start, end, secrecy, type,
    recorder_id, file_size}, times read as local in `tz` and returned as aware UTC datetimes.
    None when a time is unreadable or the span ends before it starts."""
    try:
        start = parse_gb_time(_field(item, "StartTime"), tz)
        end = parse_gb_time(_field(item, "EndTime"), tz)
    except ManscdpError:
        return None
    if end < start:
        return None
    rec_type = _field(item, "Type").lower()
    return {
        "channel_id": _field(item, "DeviceID"),
        "name": _field(item, "Name"),
        "file_path": _field(item, "FilePath"),
        "address": _field(item, "Address"),
        "start": start,
        "end": end,
        "secrecy": 1 if _field(item, "Secrecy") == "1" else 0,
        "type": rec_type if rec_type in RECORD_TYPES else (rec_type or "time"),
        "recorder_id": _field(item, "RecorderID"),
        "file_size": _size(_field(item, "FileSize")),
    }
