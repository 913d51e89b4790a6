"""A captured REGISTER sent again is not the device: over real UDP sockets against the platform.

Nonces are stateless and valid for minutes, so a REGISTER with a good Authorization could be
sent again by whoever captured it, from their own address, and would move the device's
registration there. The registrar accepts an answer it already accepted only from the device's
live registration address, and never an answer to an older nonce than the device's last.
"""

from __future__ import annotations

import asyncio
import socket


from camgrid.bus import Event
from camgrid.gb28181.sip.digest import Challenge, authorization_header
from camgrid.gb28181.sip.message import parse_message
from tests.signaling.conftest import PLATFORM_ID, REALM

URI = f"sip:{PLATFORM_ID}@{REALM}"


class Udp:
    def __init__(self, platform_port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.to = ("127.0.0.1", platform_port)
        self.sent = 0

    async def send(self, data: bytes):
        loop = asyncio.get_running_loop()
        await loop.sock_sendto(self.sock, data, self.to)
        return parse_message(await asyncio.wait_for(loop.sock_recv(self.sock, 65535), 5))

    def close(self) -> None:
        self.sock.close()


def register(device_id: str, via_port: int, branch: str, *, expires: int = 3600, auth: str | None = None) -> bytes:
    lines = [f"REGISTER {URI} SIP/2.0", f"Via: SIP/2.0/UDP 127.0.0.1:{via_port};rport;branch=z9hG4bK{branch}",
             f"From: <sip:{device_id}@{REALM}>;tag=t1", f"To: <sip:{device_id}@{REALM}>", "Call-ID: replay-test@cam",
             "CSeq: 1 REGISTER", f"Contact: <sip:{device_id}@127.0.0.1:{via_port}>", "Max-Forwards: 70",
             f"Expires: {expires}"]
    if auth:
        lines.append(f"Authorization: {auth}")
    return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()


async def authorise(udp: Udp, spec, branch: str) -> str:
    challenge = await udp.send(register(spec.id, udp.port, branch + "c"))
    assert challenge.status == 401
    return authorization_header(Challenge.parse(challenge.get("WWW-Authenticate")), spec.id, spec.password, "REGISTER", URI)


async def test_a_replayed_register_is_challenged_and_the_registration_stays(platform, specs):
    spec, reg = specs[0], platform.signaling.registrations
    failed: list[Event] = []

    async def note(event: Event) -> None:
        failed.append(event)
    platform.bus.subscribe("sip.auth_failed", note)
    device, thief = Udp(platform.signaling.port), Udp(platform.signaling.port)
    try:
        auth1 = await authorise(device, spec, "a")
        assert (await device.send(register(spec.id, device.port, "a1", auth=auth1))).status == 200
        assert reg.peer_of(spec.id).port == device.port

        # The thief sends the captured REGISTER (a new branch, so no transaction matches it).
        answer = await thief.send(register(spec.id, device.port, "x1", auth=auth1))
        assert answer.status == 401 and "stale=TRUE" in answer.get("WWW-Authenticate")
        assert reg.peer_of(spec.id).port == device.port
        assert platform.signaling.registrar.failures["replayed"] == 1

        # The device itself may renew with its unchanged Authorization.
        assert (await device.send(register(spec.id, device.port, "a2", auth=auth1))).status == 200

        # A fresh registration makes the first answer one to an older nonce: refused even from home.
        auth2 = await authorise(device, spec, "b")
        assert auth2 != auth1
        assert (await device.send(register(spec.id, device.port, "b1", auth=auth2))).status == 200
        assert (await device.send(register(spec.id, device.port, "a3", auth=auth1))).status == 401

        # After the device unregisters, its last registration cannot be brought back from elsewhere.
        assert (await device.send(register(spec.id, device.port, "b2", expires=0, auth=auth2))).status == 200
        assert not reg.is_registered(spec.id)
        assert (await thief.send(register(spec.id, device.port, "x2", auth=auth2))).status == 401
        assert not reg.is_registered(spec.id)

        await asyncio.sleep(0.1)  # queued subscribers run
        replays = [e for e in failed if e.data.get("reason") == "replayed"]
        assert len(replays) == 3 and replays[0].data["remote_addr"] == f"127.0.0.1:{thief.port}"
        assert platform.signaling.registrar.failures["replayed"] == 3
        assert not platform.signaling.registrar.bans.is_banned("127.0.0.1")  # a replay is not a wrong password
    finally:
        device.close()
        thief.close()
