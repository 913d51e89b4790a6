"""Simulated GB/T 28181 devices speaking to a platform over real sockets.

All UDP devices of one simulator share one socket (the platform tells them apart by ID, as it
does with devices behind one NAT); each TCP device opens its own connection, as real ones do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field

from camgrid.gb28181 import manscdp
from camgrid.gb28181.manscdp import ManscdpError
from camgrid.gb28181.sip.digest import Challenge, DigestError, authorization_header
from camgrid.gb28181.sip.headers import NameAddr, SipUri, new_call_id, new_tag
from camgrid.gb28181.sip.message import SipError, SipMessage
from camgrid.gb28181.sip.stack import SipStack, TransactionTimeout, TransportUnavailable
from camgrid.gb28181.sip.transport import Peer
from camgrid.sim.devices import SimDeviceSpec, catalog_items, device_records
from camgrid.sim.media import SimMediaOptions, SimMedia

log = logging.getLogger(__name__)
MANSCDP_TYPE = "Application/MANSCDP+xml"


@dataclass
class SimOptions:
    platform_id: str
    server_host: str
    server_port: int
    transport: str = "udp"
    expires: int = 3600
    keepalive_s: float = 60.0
    catalog_page: int = 20
    wrong_password: bool = False  # every REGISTER uses a wrong secret
    malformed_every: int = 0  # send a malformed MESSAGE every N keepalives (0: never)
    alarm_every_s: float = 0.0  # send an Alarm notify this often (0: never)
    catalog_change_every_s: float = 0.0  # toggle a channel OFF/ON by Catalog NOTIFY this often (0: never)
    charset: str = "GB18030"  # what the device writes its MANSCDP bodies in (GB18030 or UTF-8)
    record_page: int = 8  # RecordInfo items per page
    answer_controls: bool = True  # send a Response to DeviceControl/DeviceConfig (some devices do not)
    register_spread_s: float = 0.0  # spread first registrations over this long
    gb_version: str = "2.0"
    media: SimMediaOptions = field(default_factory=SimMediaOptions)  # what channels send when INVITEd


@dataclass
class SimStats:
    registered: int = 0
    register_failures: Counter = field(default_factory=Counter)
    keepalives: int = 0
    queries: Counter = field(default_factory=Counter)
    ptz: list = field(default_factory=list)  # (channel_id, hex) received
    controls: list = field(default_factory=list)  # (target_id, element, value) of other Control commands
    configs: list = field(default_factory=list)  # (device_id, BasicParam dict) received
    charsets: Counter = field(default_factory=Counter)  # charsets of the platform's bodies to us
    catalog_changes: int = 0
    reboots: int = 0


class SimDevice:
    def __init__(self, spec: SimDeviceSpec, sim: Simulator) -> None:
        self.spec = spec
        self.sim = sim
        self.opts = sim.opts
        self.stack: SipStack = sim.udp_stack  # TCP devices replace it with their own
        self.peer = Peer(self.opts.transport, self.opts.server_host, self.opts.server_port)
        self.call_id = new_call_id("sim")
        self.from_tag = new_tag()
        self.cseq = 0
        self.sn = random.randint(1, 10000)
        self.registered = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.subscription: tuple[str, str, str, str] | None = None  # call-id, our tag, platform tag, contact
        self.alarm_subscription: tuple[str, str, str, str] | None = None  # the same, of the alarm SUBSCRIBE
        self.keepalive_s = self.opts.keepalive_s  # DeviceConfig HeartBeatInterval changes it
        self.cs = self.opts.charset

    @property
    def realm(self) -> str:
        return self.opts.platform_id[:10]

    def _uri(self, user: str) -> str:
        return f"sip:{user}@{self.realm}"

    async def run(self) -> None:
        if self.opts.register_spread_s:
            await asyncio.sleep(random.uniform(0, self.opts.register_spread_s))
        while True:
            try:
                if self.opts.transport == "tcp" and (self.stack is self.sim.udp_stack or self.peer.conn is None or self.peer.conn.closed.done()):
                    await self._connect_tcp()
                ok = await self.register()
            except (TransactionTimeout, TransportUnavailable, OSError) as exc:
                self.sim.stats.register_failures[type(exc).__name__] += 1
                ok = False
            if not ok:
                await asyncio.sleep(5 + random.uniform(0, 5))
                continue
            await self._keepalive_until_reregister()

    async def _connect_tcp(self) -> None:
        stack = SipStack(self.sim.handle_request, host="127.0.0.1", port=0, transports=[], user_agent="camgrid-sim")
        await stack.start()
        self.stack = stack
        self.peer = await stack.transports.connect_tcp(self.opts.server_host, self.opts.server_port)
        self.sim.tcp_devices[id(stack)] = self

    async def _keepalive_until_reregister(self) -> None:
        deadline = time.monotonic() + self.opts.expires * 0.8
        sent = 0
        next_alarm = time.monotonic() + self.opts.alarm_every_s if self.opts.alarm_every_s else None
        every_change = self.opts.catalog_change_every_s
        next_change = time.monotonic() + every_change if every_change and self.spec.channels else None
        await asyncio.sleep(random.uniform(0, min(self.opts.keepalive_s, 5.0)))
        while time.monotonic() < deadline:
            sent += 1
            if self.opts.malformed_every and sent % self.opts.malformed_every == 0:
                await self._send_message(b"<?xml version=\"1.0\"?><Notify><CmdType>Keepalive</CmdType><SN>1", expect_ok=False)
            try:
                resp = await self._send_message(manscdp.keepalive_notify(self.spec.id, self._next_sn(), charset=self.cs))
            except (TransactionTimeout, TransportUnavailable):
                resp = None
            if resp is not None and resp.status == 200:
                self.sim.stats.keepalives += 1
            elif resp is not None and resp.status in (401, 403, 404):
                return  # the platform no longer knows us: register again
            if next_alarm is not None and time.monotonic() >= next_alarm:
                next_alarm += self.opts.alarm_every_s
                await self.send_alarm()
            if next_change is not None and time.monotonic() >= next_change:
                next_change += every_change
                await self._toggle_a_channel()
            await asyncio.sleep(self.keepalive_s)

    def _next_sn(self) -> int:
        self.sn += 1
        return self.sn

    def _new_request(self, method: str, uri: str, body: bytes = b"", content_type: str | None = None,
                     headers: list[tuple[str, str]] | None = None) -> SipMessage:
        self.cseq += 1
        return self.stack.new_request(
            method, uri, from_uri=self._uri(self.spec.id), to_uri=self._uri(self.spec.id) if method == "REGISTER" else self._uri(self.opts.platform_id),
            peer=self.peer, call_id=self.call_id if method == "REGISTER" else None, from_tag=self.from_tag if method == "REGISTER" else None,
            cseq=self.cseq, headers=headers or [], body=body, content_type=content_type,
            contact=f"<sip:{self.spec.id}@{self.stack.local_host(self.peer)}:{self.stack.local_port(self.peer)}>" if method == "REGISTER" else None,
        )

    async def register(self, expires: int | None = None) -> bool:
        expires = self.opts.expires if expires is None else expires
        uri = f"sip:{self.opts.platform_id}@{self.realm}"
        extra = [("Expires", str(expires)), ("X-GB-Ver", self.opts.gb_version)]
        resp = await self.stack.request(self._new_request("REGISTER", uri, headers=extra), self.peer)
        if resp.status == 401:
            try:
                challenge = Challenge.parse(resp.get("WWW-Authenticate") or "")
            except DigestError:
                self.sim.stats.register_failures["bad_challenge"] += 1
                return False
            password = self.spec.password + ("-wrong" if self.opts.wrong_password else "")
            auth = authorization_header(challenge, self.spec.id, password, "REGISTER", uri)
            resp = await self.stack.request(self._new_request("REGISTER", uri, headers=extra + [("Authorization", auth)]), self.peer)
        if resp.status == 200:
            if expires:
                self.sim.stats.registered += 1
                self.registered.set()
            return True
        self.sim.stats.register_failures[str(resp.status)] += 1
        return False

    async def _send_message(self, body: bytes, *, expect_ok: bool = True) -> SipMessage | None:
        req = self._new_request("MESSAGE", f"sip:{self.opts.platform_id}@{self.realm}", body, MANSCDP_TYPE)
        if not expect_ok:
            self.stack.send(req, self.peer)
            return None
        return await self.stack.request(req, self.peer)

    async def send_alarm(self, priority: int = 1, method: int = 5, description: str = "Simulated motion alarm") -> None:
        """An alarm: as a NOTIFY in the alarm subscription's dialog when the platform subscribed,
        else as a MESSAGE (how devices send alarms unasked)."""
        chan = self.spec.channels[0].id if self.spec.channels else self.spec.id
        body = manscdp.alarm_notify(chan, self._next_sn(), priority, method, time.strftime("%Y-%m-%dT%H:%M:%S"),
                                    description, None, None, None, charset=self.cs)
        with contextlib.suppress(TransactionTimeout, TransportUnavailable):
            if self.alarm_subscription:
                self.sim.stats.queries["AlarmNotify"] += 1
                await self._notify_in(self.alarm_subscription, "presence", body)
            else:
                await self._send_message(body)

    # -- answering the platform -----------------------------------------------------------------
    def on_subscribe(self, req: SipMessage, peer: Peer, stack: SipStack) -> None:
        expires = req.get("Expires") or "3600"
        alarm = (req.get("Event") or "").strip().lower().startswith("presence")
        current = self.alarm_subscription if alarm else self.subscription
        to_tag = current[1] if current and current[0] == req.call_id else new_tag()
        stack.respond(req, peer, 200, headers=[("Expires", expires)], to_tag=to_tag)
        self.sim.stats.queries["AlarmSubscribe" if alarm else "Subscribe"] += 1
        from_tag = NameAddr.parse(req.get("From") or "").tag or ""
        state = None if expires.strip() == "0" else (req.call_id, to_tag, from_tag, req.get("Contact") or "")
        if alarm:
            self.alarm_subscription = state
        else:
            self.subscription = state

    async def notify_catalog(self, event: str, channel_index: int = 0) -> bool:
        """Send a Catalog NOTIFY (ON, OFF, VLOST, DEFECT, ADD, DEL, UPDATE) in the subscription dialog."""
        if not self.subscription:
            return False
        call_id, local_tag, remote_tag, _contact = self.subscription
        ch = self.spec.channels[channel_index]
        item = next(i for i in catalog_items(self.spec) if i["DeviceID"] == ch.id)
        item["Event"] = event
        body = manscdp.catalog_notify(self.spec.id, self._next_sn(), [item], charset=self.cs)
        with contextlib.suppress(TransactionTimeout, TransportUnavailable):
            resp = await self._notify_in(self.subscription, "Catalog", body)
            return resp.status == 200
        return False

    async def _notify_in(self, subscription: tuple[str, str, str, str], event: str, body: bytes) -> SipMessage:
        call_id, local_tag, remote_tag, _contact = subscription
        self.cseq += 1
        req = self.stack.new_request(
            "NOTIFY", f"sip:{self.opts.platform_id}@{self.realm}", from_uri=self._uri(self.spec.id),
            to_uri=self._uri(self.opts.platform_id), peer=self.peer, call_id=call_id, from_tag=local_tag,
            to_tag=remote_tag, cseq=self.cseq, headers=[("Event", event), ("Subscription-State", "active")],
            body=body, content_type=MANSCDP_TYPE)
        return await self.stack.request(req, self.peer)

    def on_message(self, req: SipMessage, peer: Peer, stack: SipStack) -> None:
        try:
            msg = manscdp.parse_manscdp(req.body)
        except ManscdpError:
            stack.respond(req, peer, 400)
            return
        stack.respond(req, peer, 200)
        self.sim.stats.queries[msg.cmd_type] += 1
        self.sim.stats.charsets[msg.charset] += 1
        asyncio.get_running_loop().create_task(self._answer(msg))

    async def _answer(self, msg: manscdp.ManscdpMessage) -> None:
        dev, cs = self.spec, self.cs
        bodies: list[bytes] = []
        if msg.root == "Query" and msg.cmd_type == "Catalog":
            bodies = manscdp.catalog_response_pages(dev.id, msg.sn, catalog_items(dev), self.opts.catalog_page, charset=cs)
        elif msg.root == "Query" and msg.cmd_type == "DeviceInfo":
            bodies = [manscdp.device_info_response(dev.id, msg.sn, device_name=dev.name, manufacturer="camgrid-sim",
                                                   model=f"SIM-{dev.kind.upper()}", firmware="1.0", channel=len(dev.channels),
                                                   charset=cs)]
        elif msg.root == "Query" and msg.cmd_type == "DeviceStatus":
            bodies = [manscdp.device_status_response(dev.id, msg.sn, online=True, status="OK", charset=cs)]
        elif msg.root == "Query" and msg.cmd_type == "RecordInfo":
            bodies = self._record_info(msg)
        elif msg.root == "Control" and msg.cmd_type == "DeviceControl":
            self._on_control(msg)
            if self.opts.answer_controls:
                bodies = [manscdp.response_result("DeviceControl", msg.device_id, msg.sn, charset=cs)]
        elif msg.root == "Control" and msg.cmd_type == "DeviceConfig":
            self._on_config(msg)
            if self.opts.answer_controls:
                bodies = [manscdp.response_result("DeviceConfig", msg.device_id, msg.sn, charset=cs)]
        for body in bodies:
            with contextlib.suppress(TransactionTimeout, TransportUnavailable):
                await self._send_message(body)

    def _record_info(self, msg: manscdp.ManscdpMessage) -> list[bytes]:
        channel = next((c for c in self.spec.channels if c.id == msg.device_id), None)
        records: list[dict] = []
        try:
            start = manscdp.parse_gb_time(msg.fields.get("StartTime", "")).timestamp()
            end = manscdp.parse_gb_time(msg.fields.get("EndTime", "")).timestamp()
        except ManscdpError:
            start = end = 0.0  # an unreadable range: answer with an empty list, as devices do
        if channel is not None and end > start:
            record_type = (msg.fields.get("Type") or "all").lower()
            records = device_records(channel, start, end, time.time(), record_type=record_type)
        name = channel.name if channel else self.spec.name
        return manscdp.record_info_response_pages(msg.device_id, msg.sn, records, self.opts.record_page, name=name,
                                                  charset=self.cs)

    def _on_control(self, msg: manscdp.ManscdpMessage) -> None:
        ptz = msg.fields.get("PTZCmd")
        if ptz:
            self.sim.stats.ptz.append((msg.device_id, ptz))
            self.sim.on_event(f"PTZ {msg.device_id} {ptz}")
        if "TeleBoot" in msg.fields:
            self.sim.stats.reboots += 1
            self.sim.on_event(f"REBOOT {self.spec.id}")
        for element in ("RecordCmd", "GuardCmd", "AlarmCmd"):
            value = msg.fields.get(element)
            if value:
                self.sim.stats.controls.append((msg.device_id, element, value))
                self.sim.on_event(f"{element} {msg.device_id} {value}")

    def _on_config(self, msg: manscdp.ManscdpMessage) -> None:
        params = {k.split(".", 1)[1]: v for k, v in msg.fields.items() if k.startswith("BasicParam.")}
        self.sim.stats.configs.append((msg.device_id, params))
        self.sim.on_event(f"DeviceConfig {msg.device_id} {params}")
        interval = params.get("HeartBeatInterval", "")
        if interval.isdigit() and int(interval) > 0:
            self.keepalive_s = float(interval)
        if params.get("Name"):
            self.spec.name = params["Name"]

    async def _toggle_a_channel(self) -> None:
        """A scheduled catalog change: one channel goes OFF, or comes back ON."""
        index = random.randrange(len(self.spec.channels))
        ch = self.spec.channels[index]
        ch.status = "OFF" if ch.status == "ON" else "ON"
        if await self.notify_catalog(ch.status, index):
            self.sim.stats.catalog_changes += 1


class Simulator:
    def __init__(self, specs: list[SimDeviceSpec], opts: SimOptions, *, bind_host: str = "0.0.0.0") -> None:
        self.specs = specs
        self.opts = opts
        self.stats = SimStats()
        self.udp_stack = SipStack(self.handle_request, host=bind_host, port=0, transports=["udp"], user_agent="camgrid-sim")
        self.devices = {spec.id: SimDevice(spec, self) for spec in specs}
        self.channel_owner = {ch.id: spec.id for spec in specs for ch in spec.channels}
        self.tcp_devices: dict[int, SimDevice] = {}
        self.events: list[str] = []
        self.media = SimMedia(opts.media, on_event=lambda line: self.on_event(line), send_message=self._message_from)

    def on_event(self, line: str) -> None:
        self.events.append(line)
        log.info("%s", line)

    async def start(self, *, run_devices: bool = True) -> None:
        """Open the SIP socket; with run_devices=False the devices act only when driven directly."""
        await self.udp_stack.start()
        if not run_devices:
            return
        for dev in self.devices.values():
            dev.task = asyncio.get_running_loop().create_task(dev.run())

    async def stop(self, *, unregister: bool = False) -> None:
        if unregister:
            await asyncio.gather(*(d.register(expires=0) for d in self.devices.values() if d.registered.is_set()),
                                 return_exceptions=True)
        for dev in self.devices.values():
            if dev.task:
                dev.task.cancel()
        await asyncio.gather(*(d.task for d in self.devices.values() if d.task), return_exceptions=True)
        for dev in self.devices.values():
            if dev.stack is not self.udp_stack:
                await dev.stack.stop()
        await self.media.stop()
        await self.udp_stack.stop()

    async def wait_registered(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(asyncio.gather(*(d.registered.wait() for d in self.devices.values())), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def _message_from(self, target_id: str, body: bytes) -> None:
        """A MANSCDP MESSAGE from the device that owns `target_id` (a channel or the device itself)."""
        dev = self.devices.get(target_id) or self.devices.get(self.channel_owner.get(target_id, ""))
        if dev is not None:
            with contextlib.suppress(TransactionTimeout, TransportUnavailable):
                await dev._send_message(body)

    def handle_request(self, req: SipMessage, peer: Peer) -> None:
        stack = self.udp_stack
        if peer.transport == "tcp" and peer.conn is not None:
            for dev in self.tcp_devices.values():
                if dev.peer.conn is peer.conn:
                    stack = dev.stack
                    break
        try:
            target = SipUri.parse(req.uri or "").user
        except SipError:
            stack.respond(req, peer, 400)
            return
        dev = self.devices.get(target)
        if dev is None:
            owner = self.channel_owner.get(target)
            dev = self.devices.get(owner) if owner else None
        if dev is None:
            with contextlib.suppress(SipError):
                dev = self.devices.get(NameAddr.parse(req.get("To") or "").uri.user)
        if dev is None:
            stack.respond(req, peer, 404)
            return
        if req.method == "MESSAGE":
            dev.on_message(req, peer, stack)
        elif req.method == "SUBSCRIBE":
            dev.on_subscribe(req, peer, stack)
        elif req.method in ("INVITE", "ACK", "BYE", "INFO"):
            self.media.handle(req, peer, stack, target, f"{stack.local_host(peer)}:{stack.local_port(peer)}")
        elif req.method in ("OPTIONS",):
            stack.respond(req, peer, 200)
        elif req.method != "ACK":
            stack.respond(req, peer, 501)
