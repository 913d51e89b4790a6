"""Devices registering, keeping alive, answering queries and taking commands, over real sockets."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from camgrid.signaling.errors import CommandError
from camgrid.store.tables import channels, devices
from tests.signaling.conftest import sim_for, wait_for


def db_rows(engine, table, *where):
    with engine.connect() as c:
        return [dict(r) for r in c.execute(sa.select(table).where(*where)).mappings()]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_register_keepalive_catalog_and_commands(platform, specs, transport):
    got = []
    platform.bus.subscribe("device.", lambda e: _append(got, e))
    sim = sim_for(platform, specs, transport)
    await sim.start()
    try:
        assert await sim.wait_registered(10), sim.stats
        health = platform.health
        await wait_for(lambda: all(health.is_online(s.id) for s in specs))
        # The catalog is queried after registration and lands in the registry.
        expected = {ch.id for s in specs for ch in s.channels}
        await wait_for(lambda: {r["id"] for r in db_rows(platform.engine, channels)} == expected, timeout=15)
        # DeviceInfo lands at once; the transport comes from the batched registration writer.
        def stored_device():
            return db_rows(platform.engine, devices, devices.c.id == specs[0].id)[0]

        await wait_for(lambda: stored_device()["manufacturer"] == "camgrid-sim")
        await wait_for(lambda: stored_device()["transport"] == transport)
        # Keepalives arrive and keep the device online.
        await wait_for(lambda: sim.stats.keepalives >= 2 * len(specs))
        # Commands reach the device.
        chan = specs[0].channels[0].id
        await platform.signaling.ptz(specs[0].id, chan, "A50F0101808000B6")
        await wait_for(lambda: (chan, "A50F0101808000B6") in sim.stats.ptz)
        await platform.signaling.reboot(specs[0].id)
        await wait_for(lambda: sim.stats.reboots == 1)
        info = await platform.signaling.device_status(specs[1].id)
        assert info.get("Online") == "ONLINE"
    finally:
        await sim.stop(unregister=True)
    await wait_for(lambda: not platform.health.is_online(specs[0].id))
    await platform.bus.drain()
    seen = {(e.kind, e.subject) for e in got}
    assert ("device.registered", specs[0].id) in seen
    assert ("device.online", specs[0].id) in seen
    assert ("device.unregistered", specs[0].id) in seen
    assert ("device.offline", specs[0].id) in seen


async def test_silent_device_goes_offline_with_a_reason(platform, specs):
    sim = sim_for(platform, specs[:1])
    await sim.start()
    assert await sim.wait_registered(10)
    await wait_for(lambda: platform.health.is_online(specs[0].id))
    offline = []
    platform.bus.subscribe("device.offline", lambda e: _append(offline, e))
    await sim.stop()  # stops sending keepalives without unregistering
    await wait_for(lambda: not platform.health.is_online(specs[0].id), timeout=10)
    await wait_for(lambda: offline)
    assert offline[0].subject == specs[0].id and offline[0].data.get("reason")
    await wait_for(lambda: db_rows(platform.engine, devices, devices.c.id == specs[0].id)[0]["status"] == "offline")


async def _append(target, event):
    target.append(event)


async def test_commands_to_an_unregistered_device_fail_clearly(platform, specs):
    with pytest.raises(CommandError) as err:
        await platform.signaling.ptz(specs[0].id, specs[0].channels[0].id, "A50F0100000000B5")
    assert err.value.status == 409
    assert "not registered" in err.value.message


async def test_wrong_password_is_refused_then_banned(platform, specs):
    got = []
    platform.bus.subscribe("sip.", lambda e: _append(got, e))
    sim = sim_for(platform, specs[:1], wrong_password=True)
    await sim.start(run_devices=False)
    try:
        # Each attempt is one failure; the simulator retries every 5-10 s, so drive it directly.
        dev = sim.devices[specs[0].id]
        for _ in range(platform.settings.sip.ban_failures + 1):
            await dev.register()
        await wait_for(lambda: any(e.kind == "sip.ban" for e in got))
        assert not platform.health.is_online(specs[0].id)
        assert platform.signaling.registrar.bans.active() >= 1
        assert sim.stats.register_failures["403"] >= 1
    finally:
        await sim.stop()


async def test_unknown_device_is_refused(platform):
    from camgrid.sim.devices import generate

    strangers = generate(1, 1, seed="other", first_serial=900)
    sim = sim_for(platform, strangers)
    await sim.start(run_devices=False)  # the device's own loop would register too and count twice
    try:
        dev = sim.devices[strangers[0].id]
        assert await dev.register() is False
        assert sim.stats.register_failures["403"] == 1
        assert platform.signaling.registrar.failures["unknown"] == 1
    finally:
        await sim.stop()


async def test_alarm_notify_becomes_an_event(platform, specs):
    got = []
    platform.bus.subscribe("alarm.", lambda e: _append(got, e))
    sim = sim_for(platform, specs[:1])
    await sim.start()
    try:
        assert await sim.wait_registered(10)
        await sim.devices[specs[0].id].send_alarm(priority=2, description="door forced")
        await wait_for(lambda: got)
        assert got[0].kind == "alarm.device"
        assert got[0].data["device_id"] == specs[0].id
    finally:
        await sim.stop()


async def test_a_deleted_device_is_dropped_at_once_and_refused_after(platform, specs):
    from camgrid.bus import Event
    from camgrid.registry.devices import delete_device

    sim = sim_for(platform, specs[:1])
    await sim.start()
    try:
        assert await sim.wait_registered(10)
        dev = specs[0].id
        await wait_for(lambda: platform.health.is_online(dev))
        delete_device(platform.engine, dev)
        platform.bus.publish(Event("device.deleted", dev, {"by": "test"}))  # what the API route publishes
        await wait_for(lambda: not platform.signaling.registrations.is_registered(dev))
        assert not platform.health.is_online(dev)
        failures = sim.stats.register_failures["403"]
        assert await sim.devices[dev].register() is False  # its cached secret is gone with it
        # >=: the device's own keepalive meets a 403 too and may make it register again meanwhile
        assert sim.stats.register_failures["403"] >= failures + 1
    finally:
        await sim.stop()
