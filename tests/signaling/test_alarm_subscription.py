"""Alarm SUBSCRIBE (Event: presence, Query/Alarm): the platform subscribes to each device's alarms
after it registers and refreshes in the dialog; a subscribed device's alarm NOTIFY becomes an
alarm.device fact; with the subscription off, alarms sent unasked (MESSAGE) still arrive."""

from __future__ import annotations

from camgrid.app import Platform
from camgrid.gb28181 import manscdp
from tests.signaling.conftest import make_settings, provision, sim_for, wait_for


async def _append(target, event):  # noqa: ANN001
    target.append(event)


def test_the_alarm_subscription_body_asks_for_every_alarm():
    msg = manscdp.parse_manscdp(manscdp.alarm_subscribe_query("34020000001320000001", 7))
    assert (msg.root, msg.cmd_type, msg.sn) == ("Query", "Alarm", 7)
    assert (msg.fields["StartAlarmPriority"], msg.fields["EndAlarmPriority"], msg.fields["AlarmMethod"]) == ("0", "0", "0")


async def test_alarms_arrive_through_the_subscription(platform, specs):
    got = []
    platform.bus.subscribe("alarm.", lambda e: _append(got, e))
    sim = sim_for(platform, specs[:1])
    await sim.start()
    try:
        assert await sim.wait_registered(10)
        device = specs[0].id
        subs = platform.signaling.subscriptions
        await wait_for(lambda: device in subs.alarms and sim.devices[device].alarm_subscription, timeout=10)
        assert device in subs.active  # the catalog subscription is its own dialog
        assert subs.alarms[device].dialog.call_id != subs.active[device].dialog.call_id
        await sim.devices[device].send_alarm(priority=2, method=5, description="tripwire")
        await wait_for(lambda: got, timeout=10)
        assert sim.stats.queries["AlarmNotify"] == 1 and sim.stats.queries["AlarmSubscribe"] == 1
        event = got[0]
        assert event.kind == "alarm.device" and event.data["AlarmPriority"] == "2"
        assert event.data["AlarmDescription"] == "tripwire" and event.data["device_id"] == device
        subs.alarms[device].expires = 1  # refresh now: inside the same dialog
        call_id = subs.alarms[device].dialog.call_id
        await subs.subscribe(device, "presence")
        assert sim.stats.queries["AlarmSubscribe"] == 2 and subs.alarms[device].dialog.call_id == call_id
    finally:
        await sim.stop()


async def test_without_the_subscription_alarms_still_come_unasked(tmp_path, db_url, specs):
    provision(db_url, specs[:1])
    platform = Platform(make_settings(tmp_path, db_url, catalog={"alarm_subscribe": False}), announce=lambda text: None)
    await platform.start()
    got = []
    platform.bus.subscribe("alarm.", lambda e: _append(got, e))
    sim = sim_for(platform, specs[:1])
    await sim.start()
    try:
        assert await sim.wait_registered(10)
        device = specs[0].id
        await wait_for(lambda: device in platform.signaling.subscriptions.active, timeout=10)
        assert device not in platform.signaling.subscriptions.alarms
        await sim.devices[device].send_alarm()
        await wait_for(lambda: got, timeout=10)
        assert sim.stats.queries["AlarmNotify"] == 0 and got[0].kind == "alarm.device"
    finally:
        await sim.stop()
        await platform.stop()
