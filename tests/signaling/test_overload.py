"""Overload protection: the loop-lag monitor, and new REGISTERs shed with 503 while it says so."""

from __future__ import annotations

import asyncio
import time

from camgrid.signaling.overload import LoadMonitor
from tests.signaling.conftest import sim_for, wait_for


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_one_late_wakeup_is_not_overload_but_a_sustained_lag_is():
    clock, changes = Clock(), []
    mon = LoadMonitor(0.25, calm_s=2.0, sustained=3, clock=clock, on_change=lambda on, lag: changes.append(on))
    for lag in (0.9, 0.0, 0.4, 0.4, 0.0):  # never three in a row
        mon.observe(lag)
        clock.t += 0.1
    assert not mon.overloaded and changes == []
    for _ in range(3):
        mon.observe(0.3)
        clock.t += 0.1
    assert mon.overloaded and changes == [True] and mon.episodes == 1


def test_recovery_needs_calm_for_a_while():
    clock, changes = Clock(), []
    mon = LoadMonitor(0.2, calm_s=2.0, sustained=1, clock=clock, on_change=lambda on, lag: changes.append(on))
    mon.observe(0.5)
    assert mon.overloaded
    for lag in (0.05, 0.05, 0.15, 0.05):  # 0.15 is above half the threshold: the calm period restarts
        clock.t += 0.9
        mon.observe(lag)
    assert mon.overloaded
    clock.t += 2.1
    mon.observe(0.01)
    assert not mon.overloaded and changes == [True, False]


def test_disabled_with_a_zero_threshold():
    assert not LoadMonitor(0).enabled


async def test_a_blocked_event_loop_is_seen():
    mon = LoadMonitor(0.1, interval_s=0.02, sustained=2)
    await mon.start()
    try:
        await asyncio.sleep(0.05)
        for _ in range(5):  # a loop busy with a storm: every wake-up of the monitor comes late
            time.sleep(0.2)
            await asyncio.sleep(0)
        await wait_for(lambda: mon.overloaded, timeout=2)
        assert mon.max_lag_s >= 0.1
    finally:
        await mon.stop()


async def test_new_registrations_are_shed_and_keepalives_still_served(platform, specs):
    await platform.signaling.load.stop()  # drive the overload flag by hand
    online = sim_for(platform, specs[:1])
    await online.start()
    try:
        assert await online.wait_registered(10)
        newcomer = sim_for(platform, specs[1:2])
        await newcomer.start(run_devices=False)
        try:
            platform.signaling.load.overloaded = True
            kept_alive = online.stats.keepalives
            assert await newcomer.devices[specs[1].id].register() is False
            assert newcomer.stats.register_failures["503"] == 1
            assert platform.signaling.registrar.failures["overload"] == 1
            await wait_for(lambda: online.stats.keepalives > kept_alive + 1)  # the registered device is served
            assert platform.health.is_online(specs[0].id)
            platform.signaling.load.overloaded = False
            assert await newcomer.devices[specs[1].id].register() is True
        finally:
            await newcomer.stop()
    finally:
        await online.stop()


async def test_a_full_receive_queue_counts_as_overload_even_with_a_punctual_loop():
    queued = [(0, 1000)]
    mon = LoadMonitor(0.25, interval_s=0.01, sustained=2, backlog=lambda: queued[0])
    await mon.start()
    try:
        await asyncio.sleep(0.1)
        assert not mon.overloaded
        queued[0] = (400, 1000)  # 40 % of the queue waiting, over the 25 % mark
        await wait_for(lambda: mon.overloaded, timeout=2)
        assert mon.backlog_bytes == 400
    finally:
        await mon.stop()


async def test_receive_backlog_reads_the_kernel_queue():
    import socket as socketlib

    from camgrid.gb28181.sip.transport import UdpTransport

    proto = UdpTransport(lambda data, peer: None, 65536)
    proto.open("127.0.0.1", 0)
    try:
        first = proto.receive_backlog()
        if first is None:
            import pytest

            pytest.skip("no /proc/net/udp here (not Linux)")
        sender = socketlib.socket(socketlib.AF_INET, socketlib.SOCK_DGRAM)
        for _ in range(20):  # sent while the loop is not running: they wait in the kernel
            sender.sendto(b"x" * 400, proto.local_address)
        sender.close()
        waiting, size = proto.receive_backlog()
        assert waiting >= 20 * 400 and size > 0
        await asyncio.sleep(0.05)  # the loop reads them
        assert proto.receive_backlog()[0] == 0
    finally:
        proto.close()
