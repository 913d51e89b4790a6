"""The platform's device-facing SIP role: registrations, MANSCDP messages, queries and commands."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from camgrid.bus import Event, EventBus
from camgrid.config import Settings
from camgrid.gb28181 import manscdp
from camgrid.gb28181.manscdp import RECORD_TYPES, ManscdpError, ManscdpMessage, RecordAssembler, format_gb_time, record_item_to_row
from camgrid.gb28181.sip import fastpath as sipfast
from camgrid.gb28181.sip.headers import user_of
from camgrid.gb28181.sip.message import SipError, SipMessage
from camgrid.gb28181.sip.stack import SipStack, TransactionTimeout, TransportUnavailable
from camgrid.gb28181.sip.transport import Peer
from camgrid.registry.channels import apply_catalog
from camgrid.registry.devices import set_keepalive, update_device_info
from camgrid.registry.health import HealthTracker
from camgrid.signaling.errors import CommandError, NoAnswerError
from camgrid.signaling.media_sessions import MediaSessions
from camgrid.signaling.overload import LoadMonitor
from camgrid.signaling.persist import RegistrationWriter, load_registrations
from camgrid.signaling.queries import PagedSession, PendingQueries
from camgrid.registry.slots import DeviceSlots
from camgrid.signaling.auth_cache import AuthCache
from camgrid.signaling.registrar import NativeRegister, Registrar
from camgrid.signaling.registrations import RegistrationTable
from camgrid.signaling.subscriptions import ALARM as ALARM_EVENT
from camgrid.signaling.subscriptions import SubscriptionManager

log = logging.getLogger(__name__)
_native_keepalive = sipfast.keepalive
_native_register = sipfast.register

MANSCDP_TYPE = "Application/MANSCDP+xml"


class SignalingServer:
    def __init__(self, settings: Settings, engine: Engine, bus: EventBus, health: HealthTracker, *,
                 slots: DeviceSlots | None = None) -> None:
        self.settings = settings
        self.sip = settings.sip
        self.engine = engine
        self.bus = bus
        self.health = health
        self.stack = SipStack(
            self._on_request, host=self.sip.host, port=self.sip.port, transports=self.sip.transports,
            max_message_bytes=self.sip.max_message_bytes, advertised_host=self.sip.advertised_host,
            user_agent=self.sip.user_agent,
        )
        self.slots = slots if slots is not None else health.slots  # one numbering for all per-device state
        self.registrations = RegistrationTable(slots=self.slots)
        self.writer = RegistrationWriter(engine)
        self.auth = AuthCache(engine, slots=self.slots)
        self.registrar = Registrar(
            self.stack, self.sip, engine, bus, registrations=self.registrations, writer=self.writer, auth=self.auth,
            on_registered=self._registered, on_unregistered=self._unregistered,
        )
        self.load = LoadMonitor(self.sip.overload_lag_s, on_change=self._overload_changed, backlog=self._udp_backlog)
        self.registrar.overloaded = lambda: self.load.overloaded
        self.pending = PendingQueries()
        self.subscriptions = SubscriptionManager(self.stack, self.registrations, platform_id=self.sip.id,
                                                 expires_s=settings.catalog.subscribe_expires_s, next_sn=self.pending.next_sn,
                                                 charset_of=self.charset_of)
        self.catalogs: dict[str, PagedSession] = {}
        self.record_queries: dict[tuple[str, int], tuple[str, PagedSession]] = {}  # (device, SN) → (channel, session)
        self.utf8_devices: set[str] = set()  # devices that write UTF-8; everyone else is answered in GB18030
        self.messages: Counter[str] = Counter()  # by CmdType
        self._tasks: set[asyncio.Task] = set()
        self._sweeper: asyncio.Task | None = None
        self._followups = asyncio.Semaphore(32)  # catalog/info queries after registration
        self.media: MediaSessions | None = None  # set by the wiring when media nodes exist
        self._user_agent = self.sip.user_agent
        self.fast_keepalives = 0  # answered by _fast_keepalive; merged into the counts in collect()
        self.fast_registers = 0  # REGISTERs taken by _fast_register (counted in stack.counters as they go)
        self.decided_registers = 0  # of those, decided in C (a challenge, or a digest answer verified)
        self._decider = self.registrar.native_decider(self.load)
        self._decide = self._decider.decide if self._decider is not None else None
        if sipfast.keepalive is not None:
            self.stack.set_fast_path(self._fast)

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        log.debug("%s", sipfast.describe())
        # Registry changes made through the API (same process) reach the in-memory state at once.
        for kind in ("device.deleted", "device.added", "device.approved"):
            self.bus.subscribe(kind, self._on_registry_change)
        await asyncio.to_thread(self.auth.load_all)
        rows = await asyncio.to_thread(load_registrations, self.engine)
        restored = self.registrations.restore(rows)
        log.info("restored %d unexpired registrations", restored)
        await self.stack.start()
        await self.writer.start()
        await self.load.start()
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_loop())

    async def stop(self) -> None:
        await self.load.stop()
        if self._sweeper:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.subscriptions.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.stack.stop()
        await self.writer.stop()

    @property
    def port(self) -> int:
        return self.stack.port

    def _spawn(self, coro) -> asyncio.Task:  # noqa: ANN001
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for reg in self.registrations.pop_expired():
                self.writer.unregistered(reg.device_id)
                self._spawn(self.subscriptions.unsubscribe(reg.device_id, tell_device=False))
                self.bus.publish(Event("device.registration_expired", reg.device_id, {}))
                self.health.unregistered(reg.device_id, "registration expired")

    def _udp_backlog(self) -> tuple[int, int] | None:
        udp = self.stack.transports.udp
        return udp.receive_backlog() if udp is not None else None

    def _overload_changed(self, overloaded: bool, lag_s: float) -> None:
        if overloaded:
            log.warning("overloaded: event loop %.0f ms late; new REGISTERs get 503 with Retry-After", lag_s * 1000)
        else:
            log.warning("overload over: new REGISTERs are accepted again")
        self.bus.publish(Event("sip.overload" if overloaded else "sip.overload_over", self.sip.id,
                               {"lag_ms": round(lag_s * 1000), "shed_total": self.registrar.failures["overload"]}))

    async def _on_registry_change(self, event: Event) -> None:
        device_id = event.subject
        self.auth.forget(device_id)  # the next REGISTER reads the registry again
        if event.kind == "device.deleted":
            self.registrations.remove(device_id)
            self.writer.forget(device_id)
            await self.subscriptions.unsubscribe(device_id, tell_device=False)
            self.health.forget(device_id)
            self.utf8_devices.discard(device_id)

    # -- registration callbacks ---------------------------------------------------------------
    def _registered(self, device_id: str, peer: Peer, is_new: bool) -> None:
        self.health.registered(device_id)
        if is_new and self.settings.catalog.query_on_register:
            self._spawn(self._after_register(device_id))

    def _unregistered(self, device_id: str, reason: str) -> None:
        self.health.unregistered(device_id, reason)
        self._spawn(self.subscriptions.unsubscribe(device_id, tell_device=False))

    async def _after_register(self, device_id: str) -> None:
        async with self._followups:
            await asyncio.sleep(0.2)  # let the device finish its own post-register work
            with contextlib.suppress(CommandError):
                info = await self.device_info(device_id)
                await asyncio.to_thread(
                    update_device_info, self.engine, device_id, name=info.get("DeviceName") or None,
                    manufacturer=info.get("Manufacturer") or None, model=info.get("Model") or None,
                    firmware=info.get("Firmware") or None)
            with contextlib.suppress(CommandError):
                await self.catalog_refresh(device_id)
            with contextlib.suppress(CommandError):
                await self.subscriptions.subscribe(device_id)
            if self.settings.catalog.alarm_subscribe:
                try:
                    await self.subscriptions.subscribe(device_id, ALARM_EVENT)
                except CommandError as exc:  # many devices only push alarms unasked
                    log.info("%s", exc.message)

    # -- incoming requests ----------------------------------------------------------------------
    def _on_request(self, req: SipMessage, peer: Peer) -> None:
        method = req.method
        if method == "REGISTER":
            self.registrar.handle(req, peer)
        elif method == "MESSAGE":
            self._on_message(req, peer)
        elif method == "NOTIFY":
            self._on_notify(req, peer)
        elif method == "OPTIONS":
            self.stack.respond(req, peer, 200, headers=[("Allow", "REGISTER, MESSAGE, NOTIFY, SUBSCRIBE, INVITE, ACK, BYE, INFO, OPTIONS")])
        elif method == "ACK":
            return
        elif method in ("BYE", "INFO") and self.media is not None and self.media.on_request(req, peer):
            return
        elif method in ("BYE", "INFO", "INVITE", "SUBSCRIBE", "CANCEL"):
            self.stack.respond(req, peer, 481)
        else:
            self.stack.respond(req, peer, 501)

    def _fast(self, data: bytes, host: str, port: int) -> tuple[bytes, int] | None:
        """The UDP fast path (sip.fastpath): keepalives and registrations in their plain shape.
        None: the general path takes the datagram."""
        if data.startswith(b"MESSAGE "):
            return self._fast_keepalive(data, host, port)
        if data.startswith(b"REGISTER "):
            return self._fast_register(data, host, port)
        return None

    def _fast_register(self, data: bytes, host: str, port: int) -> tuple[bytes, int] | None:
        """A REGISTER read in C. Its two hottest outcomes are decided there too (the decider:
        a challenge, or a verified answer that Registrar.accept_verified takes on, with the 200 OK
        built in C but sent only once it is known to be no replay); otherwise the
        registrar decides as for any other, taking only its hot outcomes here
        (Registrar.handle_native). b"" as the answer: handled, the answer follows later (a
        registry recheck)."""
        counters = self.stack.counters
        if self._decide is None:
            found = _native_register(data, host, port, self._user_agent)
            if found is None:
                return None
            verified = None
        else:
            decided = self._decide(data, host, port, self._user_agent)
            if decided is None:
                return None
            if decided[0] == 1:  # challenged in C
                counters["in.REGISTER"] += 1
                counters["out.4xx"] += 1
                self.fast_registers += 1
                self.decided_registers += 1
                return decided[1], decided[2]
            found = decided[1]
            verified = decided if decided[0] == 2 else None
        req = NativeRegister(found, host, self._send_later, counters)
        peer = Peer("udp", host, port)
        if verified is not None:
            self.registrar.accept_verified(req, peer, *verified[2:])
            self.decided_registers += 1
        elif not self.registrar.handle_native(req, peer):
            return None
        counters["in.REGISTER"] += 1
        self.fast_registers += 1
        req.detached = True
        return (req.answer or b"", req.reply_port)

    def _send_later(self, data: bytes, host: str, port: int) -> None:
        self.stack.transports.send(data, Peer("udp", host, port))

    def _fast_keepalive(self, data: bytes, host: str, port: int) -> tuple[bytes, int] | None:
        """The keepalive of a registered device in its plain shape, parsed and answered in C
        (sip.fastpath): the same checks and state updates as _on_message's, without the SIP
        objects. Anything else, an unregistered sender included, takes the general path."""
        found = _native_keepalive(data, host, port, self._user_agent)
        if found is None:
            return None
        sender, utf8, reply_port, answer = found
        if not self.registrations.touch_udp(sender, host, port):
            return None
        self.health.seen(sender)
        if utf8:
            self.utf8_devices.add(sender)
        else:
            self.utf8_devices.discard(sender)
        self.fast_keepalives += 1
        return answer, reply_port

    def _sender(self, req: SipMessage) -> str:
        try:
            return user_of(req.get("From") or "")
        except SipError:
            return ""

    def _on_message(self, req: SipMessage, peer: Peer) -> None:
        if "manscdp" not in req.content_type:
            self.stack.respond(req, peer, 415, headers=[("Accept", MANSCDP_TYPE)])
            return
        # Who is talking comes before the XML: an unregistered sender costs no body parse.
        sender = self._sender(req)
        if not self.registrations.touch(sender, peer):  # follows a moved NAT binding too
            self.messages["unregistered"] += 1
            self.stack.respond(req, peer, 403, "Not registered")
            return
        try:
            msg = manscdp.parse_manscdp(req.body)
        except ManscdpError as exc:
            self.messages["malformed"] += 1
            self.stack.respond(req, peer, 400, str(exc)[:120].replace("\r", " ").replace("\n", " "))
            return
        self.health.seen(sender)
        self._note_charset(sender, msg)
        kind = msg.cmd_type
        self.messages[kind] += 1
        if kind == "Keepalive":
            self.stack.respond(req, peer, 200, idempotent=True)
            return
        self.stack.respond(req, peer, 200)
        if msg.root == "Response" and kind == "Catalog":
            self._catalog_page(sender, msg)
        elif msg.root == "Response" and kind == "RecordInfo":
            self._record_page(sender, msg)
        elif msg.root == "Notify" and kind == "Alarm":
            self._on_alarm(sender, msg)
        elif msg.root == "Notify" and kind == "MediaStatus":
            notify_type = str(msg.fields.get("NotifyType", ""))
            self.bus.publish(Event("media.status", msg.device_id, {"device_id": sender, "notify_type": notify_type}))
            if self.media is not None:
                self.media.on_media_status(sender, msg.device_id, notify_type)
        elif msg.root == "Response":
            self.pending.resolve(sender, msg)

    def _on_notify(self, req: SipMessage, peer: Peer) -> None:
        sender = self._sender(req)
        if not self.registrations.touch(sender, peer):
            self.stack.respond(req, peer, 481)
            return
        self.health.seen(sender)
        try:
            msg = manscdp.parse_manscdp(req.body)
        except ManscdpError as exc:
            self.stack.respond(req, peer, 400, str(exc)[:120].replace("\r", " ").replace("\n", " "))
            return
        self._note_charset(sender, msg)
        self.messages[f"notify.{msg.cmd_type}"] += 1
        self.subscriptions.on_notify(sender, req)
        self.stack.respond(req, peer, 200)
        if msg.cmd_type == "Catalog" and msg.items:
            self._spawn(self._apply_catalog_events(sender, msg))
        elif msg.cmd_type == "Alarm" and msg.root == "Notify":  # an alarm subscription's NOTIFY: the 200 answers it
            self.bus.publish(Event("alarm.device", msg.device_id or sender, self._alarm_data(sender, msg)))

    async def _apply_catalog_events(self, device_id: str, msg: ManscdpMessage) -> None:
        from camgrid.registry.channels import apply_catalog_events

        rows = []
        for item in msg.items:
            row = manscdp.catalog_item_to_channel(item)
            row["Event"] = (item.get("Event") or "").upper()
            rows.append(row)
        try:
            changes = await asyncio.to_thread(apply_catalog_events, self.engine, device_id, rows)
        except Exception:
            log.exception("could not apply catalog events from %s", device_id)
            return
        for event, channel_id in changes:
            self.bus.publish(Event(f"channel.{event.lower()}", channel_id, {"device_id": device_id}))

    @staticmethod
    def _alarm_data(sender: str, msg: ManscdpMessage) -> dict[str, Any]:
        return {"device_id": sender, **{k: v for k, v in msg.fields.items() if isinstance(v, str)}}

    def _on_alarm(self, sender: str, msg: ManscdpMessage) -> None:
        self.bus.publish(Event("alarm.device", msg.device_id or sender, self._alarm_data(sender, msg)))
        body = manscdp.alarm_response(msg.device_id or sender, msg.sn, charset=self.charset_of(sender))
        self._spawn(self._send_quietly(sender, body))

    async def _send_quietly(self, device_id: str, body: bytes) -> None:
        with contextlib.suppress(CommandError):
            await self.send_manscdp(device_id, body)

    def _catalog_page(self, sender: str, msg: ManscdpMessage) -> None:
        session = self.catalogs.get(sender)
        if session is None:
            # An unsolicited catalog (some devices push one after registering): assemble it too.
            session = self.catalogs[sender] = PagedSession(sender, msg.sn)
            self._spawn(self._finish_catalog(session))
        session.feed(msg)

    def _record_page(self, sender: str, msg: ManscdpMessage) -> None:
        entry = self.record_queries.get((sender, msg.sn))
        if entry is None:
            # Devices that answer with their own SN: match the one open query for this channel.
            mine = [e for (dev, _sn), e in self.record_queries.items() if dev == sender and e[0] == msg.device_id]
            if len(mine) != 1:
                self.messages["unmatched"] += 1
                return
            entry = mine[0]
        entry[1].feed(msg)

    def _note_charset(self, sender: str, msg: ManscdpMessage) -> None:
        if msg.charset == "UTF-8":
            self.utf8_devices.add(sender)
        else:
            self.utf8_devices.discard(sender)

    def charset_of(self, device_id: str) -> str:
        """The charset the device last wrote in: it is answered in the same one."""
        return "UTF-8" if device_id in self.utf8_devices else "GB18030"

    # -- outgoing requests ----------------------------------------------------------------------
    async def send_manscdp(self, device_id: str, body: bytes, *, target_id: str | None = None,
                           timeout: float | None = None) -> SipMessage:
        peer = self.registrations.peer_of(device_id)
        if peer is None:
            raise CommandError(409, f"device {device_id} is not registered (offline); the command was not sent")
        if peer.transport == "tcp" and peer.conn is None:
            # A TCP registration restored after a platform restart: the device's connection died
            # with the old process, and only the device can open a new one.
            raise CommandError(409, f"device {device_id} registered over TCP and has not reconnected since the platform "
                                    "restarted; its next keepalive or REGISTER reconnects it (within its keepalive interval)")
        target = target_id or device_id
        realm = self.sip.realm
        req = self.stack.new_request(
            "MESSAGE", f"sip:{target}@{peer.host}:{peer.port}", from_uri=f"sip:{self.sip.id}@{realm}",
            to_uri=f"sip:{target}@{realm}", peer=peer, body=body, content_type=MANSCDP_TYPE,
        )
        try:
            resp = await self.stack.request(req, peer, timeout=timeout or self.settings.catalog.transaction_timeout_s)
        except TransactionTimeout:
            raise CommandError(504, f"device {device_id} did not answer the MESSAGE at {peer.addr} over {peer.transport}") from None
        except TransportUnavailable as exc:
            raise CommandError(409, f"device {device_id} cannot be reached: {exc}") from None
        if (resp.status or 0) >= 300:
            raise CommandError(502, f"device {device_id} refused the request: {resp.status} {resp.reason}")
        return resp

    async def query(self, device_id: str, cmd_type: str, body_for_sn, *, timeout: float | None = None,  # noqa: ANN001
                    target_id: str | None = None) -> ManscdpMessage:
        timeout = timeout or self.settings.catalog.answer_timeout_s
        sn = self.pending.next_sn()
        fut = self.pending.expect(device_id, cmd_type, sn)
        try:
            await self.send_manscdp(device_id, body_for_sn(sn), target_id=target_id)
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise NoAnswerError(f"device {device_id} accepted the {cmd_type} request but sent no answer within {timeout:.0f} s") from None
        finally:
            fut.cancel()

    async def device_info(self, device_id: str) -> dict[str, Any]:
        msg = await self.query(device_id, "DeviceInfo", lambda sn: manscdp.device_info_query(device_id, sn, charset=self.charset_of(device_id)))
        return dict(msg.fields)

    async def device_status(self, device_id: str) -> dict[str, Any]:
        msg = await self.query(device_id, "DeviceStatus", lambda sn: manscdp.device_status_query(device_id, sn, charset=self.charset_of(device_id)))
        return dict(msg.fields)

    async def catalog_refresh(self, device_id: str) -> dict[str, Any]:
        existing = self.catalogs.get(device_id)
        if existing is not None:
            await existing.done.wait()
            return {"device_id": device_id, "joined_running_query": True}
        sn = self.pending.next_sn()
        session = self.catalogs[device_id] = PagedSession(device_id, sn)
        try:
            await self.send_manscdp(device_id, manscdp.catalog_query(device_id, sn, charset=self.charset_of(device_id)))
        except CommandError:
            self.catalogs.pop(device_id, None)
            raise
        return await self._finish_catalog(session)

    async def _finish_catalog(self, session: PagedSession) -> dict[str, Any]:
        try:
            await session.wait(self.settings.catalog.page_timeout_s)
        finally:
            if self.catalogs.get(session.device_id) is session:
                del self.catalogs[session.device_id]
        items, partial, expected = session.assembler.result()
        if not items and partial:
            self.bus.publish(Event("catalog.timeout", session.device_id, {"expected": expected}))
            raise CommandError(504, f"device {session.device_id} sent no catalog within {self.settings.catalog.page_timeout_s:.0f} s")
        rows = [manscdp.catalog_item_to_channel(item) for item in items]
        diff = await asyncio.to_thread(apply_catalog, self.engine, session.device_id, rows, partial=partial)
        result = {"device_id": session.device_id, "items": len(items), "expected": expected, "partial": partial,
                  "added": len(diff.added), "removed": len(diff.removed), "updated": len(diff.updated)}
        self.bus.publish(Event("catalog.partial" if partial else "catalog.updated", session.device_id, result))
        return result

    async def ptz(self, device_id: str, channel_id: str, ptz_hex: str) -> dict[str, Any]:
        body = manscdp.device_control_ptz(channel_id, self.pending.next_sn(), ptz_hex, charset=self.charset_of(device_id))
        await self.send_manscdp(device_id, body, target_id=channel_id)
        return {"device_id": device_id, "channel_id": channel_id, "ptz": ptz_hex, "sent": True}

    async def reboot(self, device_id: str) -> dict[str, Any]:
        body = manscdp.device_control_teleboot(device_id, self.pending.next_sn(), charset=self.charset_of(device_id))
        await self.send_manscdp(device_id, body)
        return {"device_id": device_id, "sent": True}

    async def record_info(self, device_id: str, channel_id: str, start: datetime, end: datetime,
                          record_type: str = "all") -> dict[str, Any]:
        """The device's own recordings of a channel between start and end (aware datetimes),
        assembled from its RecordInfo pages; `partial` when pages stopped before SumNum."""
        if record_type not in RECORD_TYPES:
            raise CommandError(400, f"record type must be one of {', '.join(RECORD_TYPES)}, got {record_type!r}")
        if start.tzinfo is None or end.tzinfo is None or end <= start:
            raise CommandError(400, "the time range needs zone-aware start and end, with end after start")
        tz = self.registrar.tz
        sn = self.pending.next_sn()
        session = PagedSession(device_id, sn, RecordAssembler)
        key = (device_id, sn)
        self.record_queries[key] = (channel_id, session)
        try:
            body = manscdp.record_info_query(channel_id, sn, format_gb_time(start, tz), format_gb_time(end, tz),
                                             record_type, charset=self.charset_of(device_id))
            await self.send_manscdp(device_id, body, target_id=channel_id)
            await session.wait(self.settings.catalog.page_timeout_s)
        finally:
            self.record_queries.pop(key, None)
        items, partial, expected = session.assembler.result()
        if expected is None:
            raise NoAnswerError(f"device {device_id} accepted the RecordInfo query for {channel_id} but sent no "
                                f"answer within {self.settings.catalog.page_timeout_s:.0f} s")
        records = [row for row in (record_item_to_row(item, tz) for item in items) if row is not None]
        records.sort(key=lambda r: (r["start"], r["end"]))
        if partial:
            self.bus.publish(Event("records.partial", channel_id, {"device_id": device_id, "expected": expected,
                                                                   "received": len(items)}))
        return {"device_id": device_id, "channel_id": channel_id, "from": start, "to": end, "type": record_type,
                "expected": expected, "received": len(items), "partial": partial,
                "unreadable": len(items) - len(records) + session.assembler.dropped, "records": records}

    async def _control(self, device_id: str, target_id: str, cmd_type: str, build, action: str) -> dict[str, Any]:  # noqa: ANN001
        """Send a Control body and wait for the device's Response. Devices that do not answer
        Control commands are common: that is reported as answered=False, not as a failure."""
        result: dict[str, Any] = {"device_id": device_id, "target_id": target_id, "action": action, "sent": True}
        try:
            msg = await self.query(device_id, cmd_type, build, target_id=target_id)
        except NoAnswerError:
            return {**result, "answered": False, "result": None}
        answer = (msg.fields.get("Result") or "").strip().upper()
        if answer and answer != "OK":
            raise CommandError(502, f"device {device_id} answered {cmd_type} {action} for {target_id} with Result {answer}")
        return {**result, "answered": True, "result": answer or "OK"}

    async def record_command(self, device_id: str, channel_id: str, start: bool) -> dict[str, Any]:
        """RecordCmd: start or stop recording on the device's own storage."""
        cs = self.charset_of(device_id)
        return await self._control(device_id, channel_id, "DeviceControl",
                                   lambda sn: manscdp.device_control_record(channel_id, sn, start, charset=cs),
                                   "Record" if start else "StopRecord")

    async def guard_command(self, device_id: str, target_id: str, arm: bool) -> dict[str, Any]:
        """GuardCmd: arm (SetGuard) or disarm (ResetGuard) the device's alarm inputs."""
        cs = self.charset_of(device_id)
        return await self._control(device_id, target_id, "DeviceControl",
                                   lambda sn: manscdp.device_control_guard(target_id, sn, arm, charset=cs),
                                   "SetGuard" if arm else "ResetGuard")

    async def alarm_reset(self, device_id: str, target_id: str) -> dict[str, Any]:
        """AlarmCmd ResetAlarm: clear a latched alarm on the device."""
        cs = self.charset_of(device_id)
        return await self._control(device_id, target_id, "DeviceControl",
                                   lambda sn: manscdp.device_control_alarm_reset(target_id, sn, charset=cs), "ResetAlarm")

    async def configure_basic(self, device_id: str, *, name: str | None = None, expiration: int | None = None,
                              heartbeat_interval: int | None = None, heartbeat_count: int | None = None) -> dict[str, Any]:
        """DeviceConfig BasicParam: name, registration expiry and keepalive interval/count."""
        cs = self.charset_of(device_id)
        params = {"name": name, "expiration": expiration, "heartbeat_interval": heartbeat_interval,
                  "heartbeat_count": heartbeat_count}
        if all(v is None for v in params.values()):
            raise CommandError(400, "DeviceConfig needs at least one of name, expiration, heartbeat_interval, heartbeat_count")
        result = await self._control(device_id, device_id, "DeviceConfig",
                                     lambda sn: manscdp.device_config_basic(device_id, sn, **params, charset=cs), "BasicParam")
        if heartbeat_interval is not None or heartbeat_count is not None:
            # The timeout follows the new keepalive settings once the device confirmed them;
            # unconfirmed, only a longer timeout is taken (a device that kept the old settings is still on time).
            interval, count = self.health.keepalive_of(device_id)
            interval, count = heartbeat_interval or interval, heartbeat_count or count
            if result["answered"] or interval * count > self.health.timeout_s(device_id):
                self.health.set_keepalive(device_id, interval_s=interval, count=count)
                await asyncio.to_thread(set_keepalive, self.engine, device_id, interval_s=interval, count=count)
                result["keepalive_timeout_s"] = self.health.timeout_s(device_id)
        return {**result, "params": {k: v for k, v in params.items() if v is not None}}

    # -- observability --------------------------------------------------------------------------
    def collect(self) -> dict[str, Any]:
        return {
            "registered": len(self.registrations),
            "messages": dict(self.messages + Counter(Keepalive=self.fast_keepalives)),
            "sip": dict(self.stack.counters + Counter({"in.MESSAGE": self.fast_keepalives, "out.2xx": self.fast_keepalives})),
            "registration_failures": dict(self.registrar.failures),
            "bans_total": self.registrar.bans.bans_total,
            "bans_active": self.registrar.bans.active(),
            "event_loop_lag_seconds": round(self.load.lag_s, 4),
            "udp_receive_queue_bytes": self.load.backlog_bytes,
            "overloaded": self.load.overloaded,
            "overload_episodes_total": self.load.episodes,
            "collected_at": time.time(),
        }
