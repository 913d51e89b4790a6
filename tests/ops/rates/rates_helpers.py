"""A small registry and event history for the rates tests, written straight to the tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from camgrid.registry.devices import new_device_row
from camgrid.store.tables import channels, devices, events

TZ = ZoneInfo("Asia/Shanghai")
D1, D2 = "34020000001320000001", "34020000001320000002"
C1, C2, C3 = "34020000001310000011", "34020000001310000012", "34020000001310000021"


def local(day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A local time in December 2026."""
    return datetime(2026, 12, day, hour, minute, tzinfo=TZ)


def channel(cid: str, device_id: str, point_class: int, **over: Any) -> dict[str, Any]:
    row = {"id": cid, "device_id": device_id, "name": f"cam {cid[-2:]}", "manufacturer": "acme", "model": "",
           "owner": "", "civil_code": "340200", "block": "", "address": "", "parental": 0, "parent_id": device_id,
           "business_group_id": None, "safety_way": None, "register_way": None, "secrecy": None, "ip_address": None,
           "port": None, "status": "online", "fault": None, "longitude": None, "latitude": None, "ptz_type": None,
           "resolution": None, "point_class": point_class, "organisation_id": "3402000000216000001" + cid[-1],
           "type_code": cid[10:13], "extra": {}, "updated_at": local(1, 0).astimezone(UTC)}
    row.update(over)
    return row


def seed_registry(engine, *, d1_status: str = "online", d2_status: str = "offline") -> None:
    with engine.begin() as conn:
        conn.execute(devices.insert(), [{**new_device_row(D1), "status": d1_status},
                                        {**new_device_row(D2), "status": d2_status}])
        conn.execute(channels.insert(), [channel(C1, D1, 1), channel(C2, D1, 2), channel(C3, D2, 1)])


def add_events(engine, rows: list[tuple[datetime, str, str, dict]]) -> None:
    with engine.begin() as conn:
        conn.execute(events.insert(), [{"at": at.astimezone(UTC), "kind": kind, "subject": subject, "data": data}
                                       for at, kind, subject, data in rows])


def history() -> list[tuple[datetime, str, str, dict]]:
    """D1 comes online on the 1st at 10:00; D2 goes offline on the 2nd at 06:00; C1 is blurred on
    the 2nd from 12:00 to 18:00; D1 is down on the 3rd from 08:00 to 09:00; C1 measured 1080p."""
    return [
        (local(1, 10), "device.online", D1, {"reason": "registered"}),
        (local(1, 11), "media.first_frame", C1, {"codec": "h264", "width": 1920, "height": 1080}),
        (local(2, 6), "device.offline", D2, {"reason": "keepalive timeout"}),
        (local(2, 12), "vqd.fault", C1, {"type": "blur", "score": 0.9, "severity": "major"}),
        (local(2, 18), "vqd.cleared", C1, {"type": "blur"}),
        (local(3, 8), "device.offline", D1, {"reason": "keepalive timeout"}),
        (local(3, 9), "device.online", D1, {"reason": "registered"}),
    ]
