"""REGISTERs through the native fast path, in the real platform with devices on real sockets.

The fast path takes only the hot, idempotent outcomes (challenge, accept, a wrong response
challenged again) of a known, approved device; everything else (unknown devices, unregister,
bans, a malformed Authorization) must still reach the general path and get its answer there.
What a device and an operator see must not depend on which path answered. With
CAMGRID_NATIVE=0 this file runs on the Python path (tests/gb28181/sip/test_sipfast.py).
"""

from __future__ import annotations

import socket

from camgrid.gb28181.sip import fastpath
from camgrid.gb28181.sip.digest import Challenge, authorization_header
from camgrid.gb28181.sip.message import parse_message
from conftest import PLATFORM_ID, REALM, sim_for, wait_for

URI = f"sip:{PLATFORM_ID}@{REALM}"


def register_request(device: str, n: int, *, auth: str | None = None, expires: int = 3600) -> bytes:
    return (f"REGISTER {URI} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;rport;branch=z9hG4bKfr{n}\r\n"
            f"From: <sip:{device}@{REALM}>;tag=t{n}\r\nTo: <sip:{device}@{REALM}>\r\nCall-ID: fr{n}@127.0.0.1\r\n"
            f"CSeq: {n} REGISTER\r\nContact: <sip:{device}@127.0.0.1:5999>\r\n"
            + (f"Authorization: {auth}\r\n" if auth else "")
            + f"Max-Forwards: 70\r\nExpires: {expires}\r\nContent-Length: 0\r\n\r\n").encode()


class Device:
    """One device on a real UDP socket, sending crafted REGISTERs and reading the answers."""

    def __init__(self, platform, device_id: str, secret: str) -> None:
        self.platform, self.id, self.secret, self.n = platform, device_id, secret, 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)

    async def send(self, *, auth: str | None = None, expires: int = 3600):
        self.n += 1
        self.sock.sendto(register_request(self.id, self.n, auth=auth, expires=expires), ("127.0.0.1", self.platform.signaling.port))
        return parse_message(await wait_for(lambda: _recv(self.sock)))

    async def register(self, *, secret: str | None = None, expires: int = 3600):
        challenge = await self.send(expires=expires)
        assert challenge.status == 401, challenge.to_bytes()
        c = Challenge.parse(challenge.get("WWW-Authenticate") or "")
        return await self.send(auth=authorization_header(c, self.id, secret or self.secret, "REGISTER", URI), expires=expires)

    def close(self) -> None:
        self.sock.close()


def _recv(sock: socket.socket) -> bytes | None:
    try:
        return sock.recv(4096)
    except BlockingIOError:
        return None


async def test_simulated_devices_register_through_the_fast_path(platform, specs):
    sim = sim_for(platform, specs)
    await sim.start()
    try:
        assert await sim.wait_registered(10), sim.stats
        await wait_for(lambda: all(platform.health.is_online(s.id) for s in specs))
        server = platform.signaling
        counts = server.collect()["sip"]
        assert counts["in.REGISTER"] >= 2 * len(specs)
        assert counts["out.4xx"] >= len(specs) and counts["out.2xx"] >= len(specs)
        if fastpath.NATIVE:
            # the first REGISTER of each device misses the auth cache (a registry read): general path
            assert server.fast_registers >= len(specs), "the native path took no REGISTER"
            # challenges and verified answers of known devices are decided in C (sipfast.RegisterDecider)
            assert server.decided_registers >= len(specs), "the native decision took no REGISTER"
        else:
            assert server.fast_registers == server.decided_registers == 0
    finally:
        await sim.stop(unregister=True)
    await wait_for(lambda: not any(platform.health.is_online(s.id) for s in specs))


async def test_unregister_and_unknown_devices_take_the_general_path(platform, specs):
    spec = specs[0]
    dev = Device(platform, spec.id, spec.password)
    stranger = Device(platform, "34020000001329999999", "Whatever-Secret-1")
    try:
        ok = await dev.register()
        assert ok.status == 200 and ok.get("Date") and ok.get("Expires") == "3600"
        await wait_for(lambda: platform.health.is_online(spec.id))
        taken = platform.signaling.fast_registers
        bye = await dev.register(expires=0)  # an unregister is answered by the general path
        assert bye.status == 200
        await wait_for(lambda: not platform.health.is_online(spec.id))
        if fastpath.NATIVE:
            assert platform.signaling.fast_registers == taken  # neither leg: Expires 0 is never fast
        refused = await stranger.send()
        assert refused.status == 403 and "Unknown" in refused.reason
        assert platform.signaling.registrar.failures["unknown"] >= 1
    finally:
        dev.close()
        stranger.close()


async def test_a_wrong_secret_is_challenged_again_and_counts_towards_a_ban(platform, specs):
    spec = specs[1]
    dev = Device(platform, spec.id, spec.password)
    registrar = platform.signaling.registrar
    try:
        assert (await dev.register()).status == 200
        failures = registrar.failures["bad_credentials"]
        again = await dev.register(secret="Not-The-Secret-42")
        assert again.status == 401 and "nonce=" in (again.get("WWW-Authenticate") or "")
        assert registrar.failures["bad_credentials"] == failures + 1
        malformed = await dev.send(auth="Digest username=")  # declined by the fast path: 400 from the general one
        assert malformed.status == 400
        assert registrar.failures["bad_authorization"] >= 1
    finally:
        dev.close()
