"""Helpers for the API tests: fakes of the signaling side, a client wrapper, seed rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient

from camgrid.api.app import ApiContext
from camgrid.api.errors import CommandError
from camgrid.registry.devices import new_device_row
from camgrid.store.engine import utcnow
from camgrid.store.tables import channels, devices

PASSWORD = "Correct-Horse-42"
ROLES = ("admin", "operator", "viewer")


def role_tokens(engine) -> dict[str, str]:
    """One user per role (named after it: admin1, ...), each with a live token; the `users` fixtures."""
    from camgrid.governance.users import create_user, issue_token

    out = {}
    for role in ROLES:
        user = create_user(engine, f"{role}1", PASSWORD, role)
        out[role] = issue_token(engine, user["id"], 3600)
    return out


class FakeCommands:
    """Records every call; `fail` maps a device ID to the CommandError to raise."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail: dict[str, CommandError] = {}

    def _maybe_fail(self, device_id: str) -> None:
        if device_id in self.fail:
            raise self.fail[device_id]

    async def catalog_refresh(self, device_id: str) -> dict:
        self.calls.append(("catalog", device_id))
        self._maybe_fail(device_id)
        return {"device_id": device_id, "items": 3}

    async def ptz(self, device_id: str, channel_id: str, ptz_hex: str) -> dict:
        self.calls.append(("ptz", device_id, channel_id, ptz_hex))
        self._maybe_fail(device_id)
        return {"sent": True}

    async def reboot(self, device_id: str) -> dict:
        self.calls.append(("reboot", device_id))
        self._maybe_fail(device_id)
        return {"sent": True}

    async def device_status(self, device_id: str) -> dict:
        self.calls.append(("status", device_id))
        self._maybe_fail(device_id)
        return {"Online": "ONLINE"}

    async def record_info(self, device_id: str, channel_id: str, start: Any, end: Any, record_type: str) -> dict:
        self.calls.append(("record_info", device_id, channel_id, start, end, record_type))
        self._maybe_fail(device_id)
        return {"channel_id": channel_id, "partial": False, "records": [{"start": start, "end": end}]}

    async def record_command(self, device_id: str, channel_id: str, start: bool) -> dict:
        self.calls.append(("record", device_id, channel_id, start))
        self._maybe_fail(device_id)
        return {"answered": True}

    async def guard_command(self, device_id: str, target_id: str, arm: bool) -> dict:
        self.calls.append(("guard", device_id, target_id, arm))
        self._maybe_fail(device_id)
        return {"answered": True}

    async def alarm_reset(self, device_id: str, target_id: str) -> dict:
        self.calls.append(("alarm_reset", device_id, target_id))
        self._maybe_fail(device_id)
        return {"answered": False}

    async def configure_basic(self, device_id: str, **params: Any) -> dict:
        self.calls.append(("config", device_id, params))
        self._maybe_fail(device_id)
        return {"answered": True, "params": params}


class FakeHealth:
    def __init__(self, online: set[str]) -> None:
        self.online = set(online)

    def is_online(self, device_id: str) -> bool:
        return device_id in self.online

    def counts(self) -> dict[str, int]:
        return {"devices": 0, "online": len(self.online), "offline": 0}


@dataclass
class Api:
    client: TestClient
    ctx: ApiContext
    tokens: dict[str, str] = field(default_factory=dict)

    def h(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def get(self, url: str, role: str = "admin", **kw: Any) -> Any:
        return self.client.get(url, headers=self.h(role), **kw)

    def post(self, url: str, role: str = "admin", **kw: Any) -> Any:
        return self.client.post(url, headers=self.h(role), **kw)


def dev_id(n: int) -> str:
    return f"3402000000132{n:07d}"


def chan_id(device: int, n: int, type_code: str = "131") -> str:
    return f"34020000{device % 100:02d}{type_code}{n:07d}"


def channel_row(device_id: str, cid: str, **over: Any) -> dict[str, Any]:
    row = {"id": cid, "device_id": device_id, "name": f"cam {cid}", "manufacturer": "", "model": "", "owner": "",
           "civil_code": "340200", "block": "", "address": "", "parental": 0, "parent_id": device_id,
           "business_group_id": None, "safety_way": None, "register_way": None, "secrecy": None, "ip_address": None,
           "port": None, "status": "online", "fault": None, "longitude": None, "latitude": None, "ptz_type": None,
           "resolution": None, "point_class": 1, "organisation_id": None, "type_code": cid[10:13], "extra": {},
           "updated_at": utcnow()}
    row.update(over)
    return row


def seed(engine, device_rows: list[dict[str, Any]], channel_rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        if device_rows:
            conn.execute(devices.insert(), device_rows)
        if channel_rows:
            conn.execute(channels.insert(), channel_rows)


def device_row(n: int, **over: Any) -> dict[str, Any]:
    row = new_device_row(dev_id(n), name=f"device {n}")
    row.update(over)
    return row
