"""Keepalives through the native fast path, in the real platform with simulated devices.

What a device and an operator can see must not depend on which path answered: the device gets
its 200, the device stays online, its charset is noted, the counts in /metrics include it, and
an unregistered sender still gets 403 (from the general path). With CAMGRID_NATIVE=0 the same
test runs on the Python path (tests/gb28181/sip/test_sipfast.py runs it so).
"""

from __future__ import annotations

import socket

from camgrid.gb28181.manscdp import keepalive_notify
from camgrid.gb28181.sip import fastpath
from conftest import PLATFORM_ID, REALM, sim_for, wait_for


async def test_keepalives_keep_devices_online_and_are_counted(platform, specs):
    sim = sim_for(platform, specs, keepalive_s=0.2, charset="UTF-8")
    await sim.start()
    try:
        assert await sim.wait_registered(10), sim.stats
        await wait_for(lambda: sim.stats.keepalives >= 3 * len(specs))
        server = platform.signaling
        assert all(platform.health.is_online(s.id) for s in specs)
        assert all(server.charset_of(s.id) == "UTF-8" for s in specs)
        counts = server.collect()
        assert counts["messages"]["Keepalive"] >= 3 * len(specs)
        assert counts["sip"]["in.MESSAGE"] >= counts["messages"]["Keepalive"]
        if fastpath.NATIVE:
            assert server.fast_keepalives >= 2 * len(specs), "the native path answered no keepalive"
        else:
            assert server.fast_keepalives == 0
    finally:
        await sim.stop(unregister=True)


async def test_a_keepalive_from_an_unregistered_device_gets_403(platform, specs):
    device = specs[0].id
    body = keepalive_notify(device, 1)
    request = (f"MESSAGE sip:{PLATFORM_ID}@{REALM} SIP/2.0\r\n"
               "Via: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bKunreg1\r\n"
               f"From: <sip:{device}@{REALM}>;tag=u1\r\nTo: <sip:{PLATFORM_ID}@{REALM}>\r\n"
               "Call-ID: unreg-1@127.0.0.1\r\nCSeq: 1 MESSAGE\r\nContent-Type: Application/MANSCDP+xml\r\n"
               f"Max-Forwards: 70\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    try:
        sock.sendto(request, ("127.0.0.1", platform.signaling.port))
        answer = await wait_for(lambda: _recv(sock))
        assert answer.startswith(b"SIP/2.0 403 ")
        assert not platform.health.is_online(device)
        assert platform.signaling.fast_keepalives == 0
    finally:
        sock.close()


def _recv(sock: socket.socket) -> bytes | None:
    try:
        return sock.recv(4096)
    except BlockingIOError:
        return None
