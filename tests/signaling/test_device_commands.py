"""RecordInfo, RecordCmd/GuardCmd/AlarmCmd, DeviceConfig and charsets, against simulated devices
over real sockets."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from camgrid.app import Platform
from camgrid.signaling.errors import CommandError
from camgrid.sim.devices import device_records
from camgrid.store.tables import devices
from tests.signaling.conftest import make_settings, provision, sim_for, wait_for

UTC = timezone.utc


def _window(hours: float) -> tuple[datetime, datetime]:
    end = datetime.now(UTC).replace(microsecond=0)
    return end - timedelta(hours=hours), end


async def test_record_info_is_assembled_from_many_pages(platform, specs):
    sim = sim_for(platform, specs[:1], record_page=4)
    await sim.start()
    try:
        assert await sim.wait_registered(10)
        chan = specs[0].channels[0]
        start, end = _window(12)
        answer = await platform.signaling.record_info(specs[0].id, chan.id, start, end)
        expected = device_records(chan, start.timestamp(), end.timestamp(), time.time())
        assert answer["partial"] is False and answer["unreadable"] == 0
        assert answer["expected"] == answer["received"] == len(expected) > 4  # more than one page
        assert [r["start"] for r in answer["records"]] == [r["StartTime"] for r in expected]
        assert {r["channel_id"] for r in answer["records"]} == {chan.id}
        alarms = await platform.signaling.record_info(specs[0].id, chan.id, start, end, "alarm")
        assert alarms["records"] and all(r["type"] == "alarm" for r in alarms["records"])
    finally:
        await sim.stop()


async def test_record_info_with_lost_pages_is_partial(platform, specs):
    got = []
    platform.bus.subscribe("records.", lambda e: _append(got, e))
    sim = sim_for(platform, specs[:1], record_page=2)
    dev = sim.devices[specs[0].id]
    full = dev._record_info
    dev._record_info = lambda msg: full(msg)[:-1]  # the last page never arrives
    await sim.start()
    try:
        assert await sim.wait_registered(10)
        start, end = _window(6)
        answer = await platform.signaling.record_info(specs[0].id, specs[0].channels[0].id, start, end)
        assert answer["partial"] is True and answer["received"] < answer["expected"]
        await platform.bus.drain()
        assert [e.kind for e in got] == ["records.partial"]
    finally:
        await sim.stop()


async def test_record_info_refuses_a_bad_range(platform, specs):
    start, end = _window(1)
    with pytest.raises(CommandError) as err:
        await platform.signaling.record_info(specs[0].id, specs[0].channels[0].id, end, start)
    assert err.value.status == 400
    with pytest.raises(CommandError) as err:
        await platform.signaling.record_info(specs[0].id, specs[0].channels[0].id, start, end, "everything")
    assert err.value.status == 400


async def test_control_commands_reach_the_device_and_are_confirmed(platform, specs):
    sim = sim_for(platform, specs[:1])
    await sim.start()
    try:
        assert await sim.wait_registered(10)
        dev_id, chan = specs[0].id, specs[0].channels[0].id
        sig = platform.signaling
        assert (await sig.record_command(dev_id, chan, True))["answered"] is True
        assert (await sig.record_command(dev_id, chan, False))["result"] == "OK"
        assert (await sig.guard_command(dev_id, dev_id, True))["answered"] is True
        assert (await sig.alarm_reset(dev_id, dev_id))["answered"] is True
        assert sim.stats.controls == [(chan, "RecordCmd", "Record"), (chan, "RecordCmd", "StopRecord"),
                                      (dev_id, "GuardCmd", "SetGuard"), (dev_id, "AlarmCmd", "ResetAlarm")]
        result = await sig.configure_basic(dev_id, name="东门 1", heartbeat_interval=1)
        assert result["answered"] is True and result["params"] == {"name": "东门 1", "heartbeat_interval": 1}
        assert sim.stats.configs[0] == (dev_id, {"Name": "东门 1", "HeartBeatInterval": "1"})
        assert sim.devices[dev_id].keepalive_s == 1.0 and sim.devices[dev_id].spec.name == "东门 1"
        # The platform's timeout follows the confirmed interval (× keepalive_count = 2 here), and is stored.
        assert result["keepalive_timeout_s"] == platform.health.timeout_s(dev_id) == 2.0
        result = await sig.configure_basic(dev_id, heartbeat_count=5)
        assert result["keepalive_timeout_s"] == platform.health.timeout_s(dev_id) == 5.0
        with platform.engine.connect() as conn:
            stored = conn.execute(sa.select(devices.c.keepalive_interval_s, devices.c.keepalive_count)
                                  .where(devices.c.id == dev_id)).one()
        assert tuple(stored) == (1, 5)
        with pytest.raises(CommandError) as err:
            await sig.configure_basic(dev_id)
        assert err.value.status == 400
    finally:
        await sim.stop()


async def test_a_device_that_does_not_confirm_is_reported_not_failed(tmp_path, db_url, specs):
    provision(db_url, specs[:1])
    settings = make_settings(tmp_path, db_url, catalog={"answer_timeout_s": 0.5, "query_on_register": False})
    platform = Platform(settings, announce=lambda text: None)
    await platform.start()
    sim = sim_for(platform, specs[:1], answer_controls=False)
    await sim.start()
    try:
        assert await sim.wait_registered(10)
        result = await platform.signaling.guard_command(specs[0].id, specs[0].id, False)
        assert (result["sent"], result["answered"], result["result"]) == (True, False, None)
        assert sim.stats.controls == [(specs[0].id, "GuardCmd", "ResetGuard")]
    finally:
        await sim.stop()
        await platform.stop()


@pytest.mark.parametrize("charset", ["UTF-8", "GB18030"])
async def test_the_platform_answers_in_the_devices_charset(platform, specs, charset):
    sim = sim_for(platform, specs[:1], charset=charset)
    await sim.start()
    try:
        assert await sim.wait_registered(10)
        # Until a device has written to us we cannot know its charset; after that we follow it.
        await wait_for(lambda: sim.stats.keepalives >= 1 and sim.stats.queries["Catalog"] >= 1)
        before = Counter(sim.stats.charsets)
        await platform.signaling.device_status(specs[0].id)
        await platform.signaling.record_command(specs[0].id, specs[0].channels[0].id, True)
        assert sim.stats.charsets - before == Counter({charset: 2})
    finally:
        await sim.stop()


async def test_scheduled_catalog_changes_reach_the_registry(platform, specs):
    got = []
    platform.bus.subscribe("channel.", lambda e: _append(got, e))
    sim = sim_for(platform, specs[:1], catalog_change_every_s=0.3)
    await sim.start()
    try:
        assert await sim.wait_registered(10)
        await wait_for(lambda: specs[0].id in platform.signaling.subscriptions.active and sim.devices[specs[0].id].subscription, timeout=10)
        await wait_for(lambda: sim.stats.catalog_changes >= 2, timeout=10)
        await platform.bus.drain()
        await wait_for(lambda: {e.kind for e in got} >= {"channel.off", "channel.on"}, timeout=10)
    finally:
        await sim.stop()


async def _append(target, event):
    target.append(event)


async def test_metrics_show_the_write_back_queues(platform, specs):
    from prometheus_client import CollectorRegistry, generate_latest

    from camgrid.api.routes.metrics import PlatformCollector
    from camgrid.api.app import ApiContext

    sim = sim_for(platform, specs[:1])
    await sim.start()
    try:
        assert await sim.wait_registered(10)
        await wait_for(lambda: platform.recorder.written >= 1)  # device.registered / device.online stored
        ctx = ApiContext(engine=platform.engine, settings=platform.settings, bus=platform.bus, health=platform.health,
                         commands=platform.signaling, metrics=platform)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(PlatformCollector(ctx))
        text = generate_latest(registry).decode()
        for series in ("camgrid_events_written_total", "camgrid_events_buffered", "camgrid_events_dropped_total",
                       "camgrid_health_pending_writes", "camgrid_sip_registered_devices 1.0"):
            assert series in text, series
    finally:
        await sim.stop()


async def test_catalog_subscriptions_refresh_inside_their_dialog_and_start_over_after_a_481(platform, specs):
    sim = sim_for(platform, specs[:1])
    await sim.start()
    try:
        assert await sim.wait_registered(10)
        device = specs[0].id
        subs = platform.signaling.subscriptions
        await wait_for(lambda: device in subs.active and sim.devices[device].subscription, timeout=10)
        sub = subs.active[device]
        first = sim.devices[device].subscription
        dialog = sub.dialog
        assert dialog is not None and dialog.call_id == first[0] and dialog.remote_tag == first[1]
        await sim.devices[device].notify_catalog("OFF")
        assert dialog.remote_cseq is not None  # the device's NOTIFY was taken into the dialog

        before = dialog.local_cseq
        sub.expires = await subs._send(sub, 3600)  # a refresh
        assert sub.dialog is dialog and dialog.local_cseq == before + 1
        assert sim.devices[device].subscription[0] == first[0]  # same Call-ID: the same dialog on the device

        # The device forgets the dialog (a reboot): the refresh is refused with 481, a new one starts.
        original = sim.devices[device].on_subscribe

        def forgetful(req, peer, stack):
            if req.call_id == first[0]:
                stack.respond(req, peer, 481)
                return
            original(req, peer, stack)
        sim.devices[device].on_subscribe = forgetful
        with pytest.raises(CommandError) as err:
            await subs._send(sub, 3600)
        assert err.value.status == 481 and sub.dialog.state == "terminated"
        sub.expires = await subs._send(sub, 3600)
        assert sub.dialog is not None and sub.dialog.call_id != first[0]
        assert sim.devices[device].subscription[0] == sub.dialog.call_id
    finally:
        await sim.stop()


async def test_a_tcp_device_not_yet_reconnected_after_a_restart_gets_a_clear_refusal(platform, specs):
    from camgrid.gb28181.sip.transport import Peer

    device = specs[0].id
    # What RegistrationTable.restore() leaves for a TCP device: its address, no connection.
    platform.signaling.registrations.put(device, Peer("tcp", "127.0.0.1", 5999), time.monotonic() + 3600)
    with pytest.raises(CommandError) as err:
        await platform.signaling.device_info(device)
    assert err.value.status == 409 and "has not reconnected since the platform restarted" in err.value.message
