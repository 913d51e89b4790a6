"""Typed builders for the MANSCDP bodies the platform and the simulator send."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from camgrid.gb28181.manscdp.codec import FieldValue, encode_manscdp
from camgrid.gb28181.manscdp.times import format_gb_time

_PTZ_HEX = re.compile(r"^[0-9A-Fa-f]{16}$")


def _gb_time(value: str | datetime) -> str:
    return format_gb_time(value) if isinstance(value, datetime) else value


def _body(charset: str, root: str, cmd_type: str, sn: int, device_id: str,
          fields: list[tuple[str, FieldValue]]) -> bytes:
    """Every builder takes `charset`: the platform answers each device in the charset it speaks."""
    return encode_manscdp(root, cmd_type, sn, device_id, fields, charset)


def _pages(items: Sequence[dict], page_size: int) -> list[list[dict]]:
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, got {page_size}")
    return [list(items[i:i + page_size]) for i in range(0, len(items), page_size)] or [[]]


def keepalive_notify(device_id: str, sn: int, status: str = "OK", *, charset: str = "GB18030") -> bytes:
    return _body(charset, "Notify", "Keepalive", sn, device_id, [("Status", status)])


def catalog_query(device_id: str, sn: int, *, charset: str = "GB18030") -> bytes:
    return _body(charset, "Query", "Catalog", sn, device_id, [])


def catalog_subscribe_query(device_id: str, sn: int, *, charset: str = "GB18030") -> bytes:
    """The body of a Catalog SUBSCRIBE (the same Query/Catalog, sent with `Event: Catalog`)."""
    return _body(charset, "Query", "Catalog", sn, device_id, [])


def alarm_subscribe_query(device_id: str, sn: int, *, start_priority: int = 0, end_priority: int = 0,
                          method: str = "0", charset: str = "GB18030") -> bytes:
    """The body of an alarm SUBSCRIBE (`Event: presence`): Query/Alarm with the priorities and
    methods wanted; 0 means all of them."""
    return _body(charset, "Query", "Alarm", sn, device_id, [
        ("StartAlarmPriority", start_priority), ("EndAlarmPriority", end_priority), ("AlarmMethod", method)])


def catalog_response_pages(device_id: str, sn: int, items: Sequence[dict], page_size: int, *,
                           charset: str = "GB18030") -> list[bytes]:
    """One body per page; SumNum is the total, DeviceList Num the items on that page. Item
    dicts map element names to values, with an optional nested "Info" dict."""
    return [
        _body(charset, "Response", "Catalog", sn, device_id, [("SumNum", len(items)), ("DeviceList", page)])
        for page in _pages(items, page_size)
    ]


def catalog_notify(device_id: str, sn: int, items_with_events: Sequence[dict], *, charset: str = "GB18030") -> bytes:
    """A Catalog NOTIFY; each item carries its "Event" (ON, OFF, VLOST, DEFECT, ADD, DEL, UPDATE)."""
    for item in items_with_events:
        if not item.get("Event"):
            raise ValueError(f"catalog notify item {item.get('DeviceID', '?')} has no Event")
    return _body(charset, "Notify", "Catalog", sn, device_id,
              [("SumNum", len(items_with_events)), ("DeviceList", list(items_with_events))])


def device_info_query(device_id: str, sn: int, *, charset: str = "GB18030") -> bytes:
    return _body(charset, "Query", "DeviceInfo", sn, device_id, [])


def device_info_response(device_id: str, sn: int, device_name: str, manufacturer: str, model: str,
                         firmware: str, channel: int, result: str = "OK", *, charset: str = "GB18030") -> bytes:
    return _body(charset, "Response", "DeviceInfo", sn, device_id, [
        ("DeviceName", device_name), ("Result", result), ("Manufacturer", manufacturer),
        ("Model", model), ("Firmware", firmware), ("Channel", channel),
    ])


def device_status_query(device_id: str, sn: int, *, charset: str = "GB18030") -> bytes:
    return _body(charset, "Query", "DeviceStatus", sn, device_id, [])


def device_status_response(device_id: str, sn: int, online: bool, status: str = "OK", *,
                           result: str = "OK", encode: bool | None = None, record: bool | None = None,
                           device_time: str | datetime | None = None,
                           alarm_status: Sequence[dict] | None = None, charset: str = "GB18030") -> bytes:
    def on_off(flag: bool | None) -> str | None:
        return None if flag is None else ("ON" if flag else "OFF")

    return _body(charset, "Response", "DeviceStatus", sn, device_id, [
        ("Result", result), ("Online", "ONLINE" if online else "OFFLINE"), ("Status", status),
        ("Encode", on_off(encode)), ("Record", on_off(record)),
        ("DeviceTime", _gb_time(device_time) if device_time is not None else None),
        ("Alarmstatus", list(alarm_status) if alarm_status is not None else None),
    ])


def alarm_notify(device_id: str, sn: int, priority: int | str, method: int | str, time: str | datetime,
                 description: str | None = None, longitude: float | None = None,
                 latitude: float | None = None, alarm_type: int | str | None = None, *,
                 charset: str = "GB18030") -> bytes:
    """`time` is GB local text or an aware datetime (converted to Asia/Shanghai)."""
    return _body(charset, "Notify", "Alarm", sn, device_id, [
        ("AlarmPriority", priority), ("AlarmMethod", method), ("AlarmTime", _gb_time(time)),
        ("AlarmDescription", description), ("Longitude", longitude), ("Latitude", latitude),
        ("Info", {"AlarmType": alarm_type} if alarm_type is not None else None),
    ])


def alarm_response(device_id: str, sn: int, result: str = "OK", *, charset: str = "GB18030") -> bytes:
    return response_result("Alarm", device_id, sn, result, charset=charset)


def response_result(cmd_type: str, device_id: str, sn: int, result: str = "OK", *,
                    charset: str = "GB18030") -> bytes:
    return _body(charset, "Response", cmd_type, sn, device_id, [("Result", result)])


def record_info_query(channel_id: str, sn: int, start: str | datetime, end: str | datetime,  # noqa: A002 (type)
                      type: str = "all", secrecy: int = 0, *, charset: str = "GB18030") -> bytes:
    return _body(charset, "Query", "RecordInfo", sn, channel_id, [
        ("StartTime", _gb_time(start)), ("EndTime", _gb_time(end)), ("Secrecy", secrecy), ("Type", type),
    ])


def record_info_response_pages(channel_id: str, sn: int, records: Sequence[dict], page_size: int,
                               name: str = "", *, charset: str = "GB18030") -> list[bytes]:
    """Record dicts map element names (DeviceID, Name, FilePath, StartTime, ...) to values;
    aware datetimes become GB local times."""
    local = [{k: format_gb_time(v) if isinstance(v, datetime) else v for k, v in rec.items()} for rec in records]
    return [
        _body(charset, "Response", "RecordInfo", sn, channel_id,
              [("Name", name), ("SumNum", len(local)), ("RecordList", page)])
        for page in _pages(local, page_size)
    ]


def _control(device_id: str, sn: int, fields: list[tuple[str, FieldValue]], *, charset: str) -> bytes:
    return _body(charset, "Control", "DeviceControl", sn, device_id, fields)


def device_control_ptz(device_id: str, sn: int, ptz_hex: str, *, charset: str = "GB18030") -> bytes:
    if not isinstance(ptz_hex, str) or not _PTZ_HEX.match(ptz_hex):
        raise ValueError(f"PTZCmd must be 16 hex digits, got {ptz_hex!r}")
    return _control(device_id, sn, [("PTZCmd", ptz_hex.upper()), ("Info", {"ControlPriority": 5})], charset=charset)


def device_control_teleboot(device_id: str, sn: int, *, charset: str = "GB18030") -> bytes:
    return _control(device_id, sn, [("TeleBoot", "Boot")], charset=charset)


def device_control_record(device_id: str, sn: int, start: bool, *, charset: str = "GB18030") -> bytes:
    return _control(device_id, sn, [("RecordCmd", "Record" if start else "StopRecord")], charset=charset)


def device_control_guard(device_id: str, sn: int, set_guard: bool, *, charset: str = "GB18030") -> bytes:
    return _control(device_id, sn, [("GuardCmd", "SetGuard" if set_guard else "ResetGuard")], charset=charset)


def device_control_alarm_reset(device_id: str, sn: int, *, charset: str = "GB18030") -> bytes:
    return _control(device_id, sn, [("AlarmCmd", "ResetAlarm")], charset=charset)


def device_config_basic(device_id: str, sn: int, name: str | None = None, expiration: int | None = None,
                        heartbeat_interval: int | None = None, heartbeat_count: int | None = None, *,
                        charset: str = "GB18030") -> bytes:
    params = {"Name": name, "Expiration": expiration, "HeartBeatInterval": heartbeat_interval,
              "HeartBeatCount": heartbeat_count}
    if all(v is None for v in params.values()):
        raise ValueError("device_config_basic needs at least one of name, expiration, heartbeat_interval, heartbeat_count")
    return _body(charset, "Control", "DeviceConfig", sn, device_id, [("BasicParam", params)])


def media_status_notify(device_id: str, sn: int, notify_type: int = 121, *, charset: str = "GB18030") -> bytes:
    """Notify/MediaStatus: NotifyType 121 says a playback or download reached its end."""
    return _body(charset, "Notify", "MediaStatus", sn, device_id, [("NotifyType", str(notify_type))])
