"""The device's own recordings (RecordInfo), RecordCmd, GuardCmd, AlarmCmd, DeviceConfig and
DeviceStatus through the API: validation, permissions, and an audit row for each."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from api_helpers import FakeCommands, chan_id, channel_row, dev_id, device_row, seed
from sqlalchemy import select

from camgrid.store.tables import audit_log

DEV = dev_id(0)
CHAN = chan_id(0, 1)


@pytest.fixture
def one_channel(engine):
    seed(engine, [device_row(0)], [channel_row(DEV, CHAN)])


def _audit(engine, action):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(audit_log).where(audit_log.c.action == action)).mappings()]


def test_device_records_query_is_sent_and_audited(api, engine, one_channel):
    commands: FakeCommands = api.ctx.commands
    resp = api.get(f"/api/v1/channels/{CHAN}/device-records", "viewer",
                   params={"from": "2026-11-20T08:00:00+08:00", "to": "2026-11-20T10:00:00Z", "type": "alarm"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["result"]["records"] == [{"start": "2026-11-20T00:00:00Z", "end": "2026-11-20T10:00:00Z"}]
    _, device, channel, start, end, kind = commands.calls[0]
    assert (device, channel, kind) == (DEV, CHAN, "alarm")
    assert start == datetime(2026, 11, 20, 0, 0, tzinfo=timezone.utc) and end.utcoffset().total_seconds() == 0
    row = _audit(engine, "channel.device_records")[0]
    assert row["actor"] == "viewer1" and row["target"] == CHAN and row["detail"]["type"] == "alarm"


@pytest.mark.parametrize(("params", "status", "words"), [
    ({"from": "2026-11-20T08:00:00", "to": "2026-11-20T10:00:00Z"}, 400, "needs a zone"),
    ({"from": "2026-11-20T10:00:00Z", "to": "2026-11-20T08:00:00Z"}, 400, "after"),
    ({"from": "2026-09-01T00:00:00Z", "to": "2026-11-20T08:00:00Z"}, 400, "at most 31 days"),
    ({"from": "2026-11-20T08:00:00Z", "to": "2026-11-20T09:00:00Z", "type": "motion"}, 422, ""),
    ({"from": "yesterday", "to": "2026-11-20T09:00:00Z"}, 422, ""),
])
def test_device_records_refuses_bad_ranges(api, one_channel, params, status, words):
    resp = api.get(f"/api/v1/channels/{CHAN}/device-records", params=params)
    assert resp.status_code == status
    assert words in resp.text
    assert api.ctx.commands.calls == []


def test_device_records_of_an_unknown_channel_is_404(api, one_channel):
    resp = api.get(f"/api/v1/channels/{chan_id(9, 9)}/device-records",
                   params={"from": "2026-11-20T08:00:00Z", "to": "2026-11-20T09:00:00Z"})
    assert resp.status_code == 404


def test_record_guard_alarm_and_config_commands(api, engine, one_channel):
    commands: FakeCommands = api.ctx.commands
    assert api.post(f"/api/v1/channels/{CHAN}/record", "operator", json={"action": "start"}).status_code == 200
    assert api.post(f"/api/v1/devices/{DEV}/guard", "operator", json={"action": "disarm"}).status_code == 200
    target = chan_id(0, 2)
    assert api.post(f"/api/v1/devices/{DEV}/guard", "operator", json={"action": "arm", "target_id": target}).status_code == 200
    reset = api.post(f"/api/v1/devices/{DEV}/alarm-reset", "operator")
    assert reset.status_code == 200 and reset.json()["result"] == {"answered": False}
    cfg = api.post(f"/api/v1/devices/{DEV}/config", json={"name": "东门", "heartbeat_interval": 30})
    assert cfg.status_code == 200
    assert api.get(f"/api/v1/devices/{DEV}/device-status", "viewer").json()["result"] == {"Online": "ONLINE"}
    assert commands.calls == [
        ("record", DEV, CHAN, True), ("guard", DEV, DEV, False), ("guard", DEV, target, True),
        ("alarm_reset", DEV, DEV), ("config", DEV, {"name": "东门", "heartbeat_interval": 30}), ("status", DEV),
    ]
    assert [r["detail"]["action"] for r in _audit(engine, "command.guard")] == ["disarm", "arm"]
    assert _audit(engine, "command.config")[0]["detail"] == {"name": "东门", "heartbeat_interval": 30, "ok": True}
    assert len(_audit(engine, "command.record")) == len(_audit(engine, "command.alarm_reset")) == 1


@pytest.mark.parametrize(("url", "role", "body", "status"), [
    (f"/api/v1/channels/{CHAN}/record", "viewer", {"action": "start"}, 403),
    (f"/api/v1/channels/{CHAN}/record", "operator", {"action": "pause"}, 422),
    (f"/api/v1/devices/{DEV}/guard", "viewer", {"action": "arm"}, 403),
    (f"/api/v1/devices/{DEV}/guard", "operator", {"action": "arm", "target_id": "12"}, 422),
    (f"/api/v1/devices/{DEV}/config", "operator", {"name": "x"}, 403),  # configuration needs devices:write
    (f"/api/v1/devices/{DEV}/config", "admin", {}, 422),
    (f"/api/v1/devices/{DEV}/config", "admin", {"heartbeat_interval": 1}, 422),
])
def test_command_refusals(api, one_channel, url, role, body, status):
    assert api.post(url, role, json=body).status_code == status
    assert api.ctx.commands.calls == []
