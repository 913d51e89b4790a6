"""REGISTER: digest authentication, expiry, unregister, pending approval and bans."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from camgrid.bus import Event, EventBus
from camgrid.config import SipSettings
from camgrid.gb28181.sip import fastpath as sipfast
from camgrid.gb28181.sip.digest import Challenge, Credentials, DigestError, NonceFactory
from camgrid.gb28181.sip.headers import NameAddr
from camgrid.gb28181.sip.message import REASONS, SipError, SipMessage
from camgrid.gb28181.sip.stack import SipStack
from camgrid.gb28181.sip.transport import Peer
from camgrid.registry.devices import DeviceAuth, add_pending_device
from camgrid.signaling.auth_cache import AuthCache
from camgrid.signaling.bans import BanList
from camgrid.signaling.persist import RegistrationWriter
from camgrid.signaling.refusals import RefusalLog
from camgrid.signaling.registrations import RegistrationTable

log = logging.getLogger(__name__)

AUTH_RECHECK_S = 5.0  # a cached secret older than this is re-read once before a failure counts


_date_prefix: list = [None, None, ""]  # (second, zone, "YYYY-MM-DDTHH:MM:SS.") of the last call


def gb_date(now: datetime, tz: ZoneInfo) -> str:
    """The Date value devices set their clocks from: local time with milliseconds, no zone.
    The zone conversion and formatting are done once per second (every REGISTER answer has one)."""
    second = int(now.timestamp() // 1)
    if _date_prefix[0] != second or _date_prefix[1] is not tz:
        _date_prefix[:] = [second, tz, now.replace(microsecond=0).astimezone(tz).strftime("%Y-%m-%dT%H:%M:%S.")]
    return _date_prefix[2] + f"{now.microsecond // 1000:03d}"


class NativeRegister:
    """A REGISTER read by the native fast path (sip.fastpath.register): what the registrar reads
    of it, and the head of its answers (Via to Server, as make_response builds them). Answers
    made while the fast call runs leave with it in the UDP batch; one made later (after a registry
    recheck) is sent at once. Only the hot, idempotent outcomes take this path (see
    Registrar.handle_native), so no server transaction is kept, as for the general path's."""

    __slots__ = ("device_id", "authorization", "contact", "expires", "gb_ver", "reply_port", "head", "digest",
                 "host", "answer", "detached", "_send", "_counters")
    method = "REGISTER"

    def __init__(self, found: tuple, host: str, send: Callable[[bytes, str, int], None], counters: Counter[str]) -> None:
        (self.device_id, self.authorization, self.contact, self.expires, self.gb_ver,
         self.reply_port, self.head, self.digest) = found  # digest: Credentials fields, when read in C
        self.host = host
        self.answer: bytes | None = None
        self.detached = False
        self._send = send
        self._counters = counters

    def get(self, name: str) -> str | None:
        if name == "Authorization":
            return self.authorization
        if name == "Contact":
            return self.contact
        if name == "Expires":
            return self.expires
        if name == "X-GB-Ver":
            return self.gb_ver
        raise KeyError(f"{name} is not read from a native REGISTER")

    def respond(self, status: int, reason: str | None, headers: list[tuple[str, str]]) -> None:
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers)
        data = b"".join((f"SIP/2.0 {status} {reason or REASONS.get(status, '')}\r\n".encode(), self.head,
                         extra.encode("utf-8", "surrogateescape"), b"Content-Length: 0\r\n\r\n"))
        self.send(data, status)

    def send(self, data: bytes, status: int) -> None:
        """An answer whole (respond's, or one the native decider built)."""
        self._counters[f"out.{status // 100}xx"] += 1
        if self.detached:
            self._send(data, self.host, self.reply_port)
        else:
            self.answer = data


class Registrar:
    def __init__(
        self, stack: SipStack, settings: SipSettings, engine: Engine, bus: EventBus, *,
        registrations: RegistrationTable, writer: RegistrationWriter, auth: AuthCache,
        on_registered: Callable[[str, Peer, bool], None], on_unregistered: Callable[[str, str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stack = stack
        self.settings = settings
        self.engine = engine
        self.bus = bus
        self.registrations = registrations
        self.writer = writer
        self.auth = auth
        self.on_registered = on_registered
        self.on_unregistered = on_unregistered
        self._clock = clock
        self.tz = ZoneInfo(settings.timezone)
        self.nonces = NonceFactory(settings.realm, settings.nonce_ttl_s)
        self.bans = BanList(settings.ban_failures, settings.ban_window_s, settings.ban_duration_s, clock=clock)
        self.failures: Counter[str] = Counter()  # by reason
        self.refusals = RefusalLog(bus, clock=clock)  # sip.refused events for IDs refused before any digest
        self._pending_tasks: set[asyncio.Task] = set()
        self.overloaded: Callable[[], bool] = lambda: False  # the signaling server wires its LoadMonitor here
        self._decider = None  # the native decider (native_decider), told each new second's Date prefix
        self._decider_second = None

    # -- entry point --------------------------------------------------------------------------
    def handle(self, req: SipMessage, peer: Peer) -> None:
        try:
            device_id = NameAddr.parse(req.get("From") or "").uri.user or NameAddr.parse(req.get("To") or "").uri.user
        except SipError:
            self._respond(req, peer, 400, "Bad From header")
            return
        self._route(req, peer, device_id)

    def handle_native(self, req: NativeRegister, peer: Peer) -> bool:
        """handle() for a REGISTER the native path read, when its outcome is one of the hot,
        idempotent ones: a known, approved device with a secret in the cache, not banned, asking
        to register (not to unregister) with a usable Authorization or none. False: nothing was
        done, and the general path (SIP objects, server transaction) takes the request."""
        device_id = req.device_id
        if len(device_id) != 20 or not device_id.isdigit() or self.bans.is_banned(peer.host) or self.bans.is_banned(device_id):
            return False
        cached = self.auth.peek(device_id)
        if cached is None or cached[0] is None:
            return False
        auth = cached[0]
        if auth.approval != "approved" or not (auth.ha1_md5 or auth.ha1_sha256):
            return False
        expires = _requested_expires(req)
        if expires is not None and expires < max(1, self.settings.register_expires_min):
            return False
        creds = None
        if req.digest is not None:
            creds = Credentials(*req.digest)
        elif req.authorization is not None:
            try:
                creds = Credentials.parse(req.authorization)
            except DigestError:
                return False
        elif self.overloaded():
            return False
        self._handle_with_auth(req, peer, auth.device_id, auth, cached[1], creds=creds)
        return True

    def _route(self, req: SipMessage | NativeRegister, peer: Peer, device_id: str) -> None:
        if len(device_id) != 20 or not device_id.isdigit():
            self._fail(req, peer, device_id, "bad_id", 400, "Device ID must be 20 digits", count_ban=False)
            return
        if self.bans.is_banned(peer.host) or self.bans.is_banned(device_id):
            self.failures["banned"] += 1
            self._respond(req, peer, 403, "Temporarily banned after repeated authentication failures")
            return
        if self.overloaded() and req.get("Authorization") is None:
            # Shed the cheap first leg of new work; registrations already challenged go through.
            self.failures["overload"] += 1
            low, high = self.settings.overload_retry_after_s
            self._respond(req, peer, 503, "Overloaded, retry later",
                               headers=[("Retry-After", str(random.randint(low, max(low, high))))], idempotent=True)
            return
        cached = self.auth.peek(device_id)
        if cached is not None and cached[0] is not None:
            device_id = cached[0].device_id  # the cached string: no fresh copy kept per registration
        if cached is None or (
            (cached[0] is None or cached[0].approval != "approved") and self._clock() - cached[1] > AUTH_RECHECK_S
        ):
            self._spawn(self._handle_after_lookup(req, peer, device_id))
            return
        self._handle_with_auth(req, peer, device_id, cached[0], cached[1])

    def _spawn(self, coro) -> None:  # noqa: ANN001
        task = asyncio.get_running_loop().create_task(coro)
        self._pending_tasks.add(task)
        task.add_done_callback(self._pending_tasks.discard)

    async def _handle_after_lookup(self, req: SipMessage, peer: Peer, device_id: str) -> None:
        try:
            auth = await self.auth.fetch(device_id)
        except Exception:
            log.exception("device lookup failed for %s", device_id)
            self._respond(req, peer, 503, "Registry unavailable", headers=[("Retry-After", "10")])
            return
        self._handle_with_auth(req, peer, device_id, auth, self._clock(), rechecked=True)

    def _handle_with_auth(self, req: SipMessage | NativeRegister, peer: Peer, device_id: str, auth: DeviceAuth | None,
                          loaded_at: float, *, rechecked: bool = False, creds: Credentials | None = None) -> None:
        if auth is None:
            if self.settings.unknown_devices == "pending":
                self._spawn(self._hold_pending(device_id, peer))
                self._fail(req, peer, device_id, "pending", 403, "Device awaits operator approval", count_ban=False)
            else:
                self._fail(req, peer, device_id, "unknown", 403, "Unknown device ID", count_ban=False)
            return
        if auth.approval != "approved":
            self._fail(req, peer, device_id, "pending", 403, "Device awaits operator approval", count_ban=False)
            return
        if not (auth.ha1_md5 or auth.ha1_sha256):
            self._fail(req, peer, device_id, "no_secret", 403, "Device has no secret set", count_ban=False)
            return
        if creds is None:
            header = req.get("Authorization")
            if header is None:
                self._challenge(req, peer)
                return
            try:
                creds = Credentials.parse(header)
            except DigestError:
                self._fail(req, peer, device_id, "bad_authorization", 400, "Malformed Authorization header")
                return
        nonce_state = self.nonces.check(creds.nonce)
        if nonce_state == "stale":
            self._challenge(req, peer, stale=True)
            return
        ok = nonce_state == "ok" and creds.username == device_id and creds.realm == (auth.realm or self.settings.realm)
        if ok:
            ha1 = auth.ha1_sha256 if creds.algorithm == "SHA-256" else auth.ha1_md5
            ok = bool(ha1) and creds.verify("REGISTER", ha1)
        if not ok:
            if not rechecked and self._clock() - loaded_at > AUTH_RECHECK_S:
                self._spawn(self._recheck(req, peer, device_id))
                return
            self._fail(req, peer, device_id, "bad_credentials", 401, None)
            return
        self._verified(req, peer, device_id, (self.nonces.issued_at(creds.nonce), answer_fingerprint(creds.response)))

    def accept_verified(self, req: NativeRegister, peer: Peer, issued_at: float, fingerprint: int, expires: int,
                        answer: bytes | None) -> None:
        """What follows a digest answer that the native decision (native_decider) verified: the
        same as for one verified here. The decider took it only for a registration (not an
        unregistration, not too brief): `expires` is the one requested (-1: none), `answer` the
        200 OK it built (None: built here), sent only when the answer is no replay."""
        device_id = self.auth.slots.canonical(req.device_id)
        if self.registrations.replayed(device_id, issued_at, fingerprint, peer, self.nonces.now()):
            self._replayed(req, peer, device_id)
            return
        self.bans.success(device_id)
        self._register(req, peer, device_id, (issued_at, fingerprint), 3600 if expires < 0 else expires, answer)

    def _verified(self, req: SipMessage | NativeRegister, peer: Peer, device_id: str, proof: tuple[float, int]) -> None:
        if self.registrations.replayed(device_id, *proof, peer, self.nonces.now()):
            self._replayed(req, peer, device_id)
            return
        self.bans.success(device_id)
        self._accept(req, peer, device_id, proof)

    def _replayed(self, req: SipMessage | NativeRegister, peer: Peer, device_id: str) -> None:
        self.failures["replayed"] += 1
        self.bus.publish(Event("sip.auth_failed", device_id, {"remote_addr": peer.addr, "reason": "replayed"}))
        self._challenge(req, peer, stale=True)

    def native_decider(self, load: object) -> object | None:
        """The native REGISTER decision (sipfast.RegisterDecider) over this registrar's own
        tables, so nothing is kept twice; `load` has the `overloaded` flag. None where C could not
        decide exactly as this code: no native module, challenges in SHA-256, or a nonce clock
        other than the wall clock (tests)."""
        if sipfast.RegisterDecider is None or self.settings.digest_algorithm != "MD5":
            return None
        key = self.nonces.native_key()
        if key is None:
            return None
        self._decider = sipfast.RegisterDecider(
            **self.auth.native_tables(), banned=self.bans.native_table(), load=load, key=key,
            realm=self.settings.realm, ttl=float(self.nonces.ttl_s), expires_min=self.settings.register_expires_min,
            qop=self.settings.digest_qop, expires_max=self.settings.register_expires_max)
        self._decider_second = None
        return self._decider

    async def _recheck(self, req: SipMessage, peer: Peer, device_id: str) -> None:
        try:
            auth = await self.auth.fetch(device_id)
        except Exception:
            self._respond(req, peer, 503, "Registry unavailable", headers=[("Retry-After", "10")])
            return
        self._handle_with_auth(req, peer, device_id, auth, self._clock(), rechecked=True)

    async def _hold_pending(self, device_id: str, peer: Peer) -> None:
        try:
            created = await asyncio.to_thread(add_pending_device, self.engine, device_id, peer.addr)
        except Exception:
            log.exception("could not hold %s as pending", device_id)
            return
        self.auth.forget(device_id)
        if created is not False:
            self.bus.publish(Event("device.pending", device_id, {"remote_addr": peer.addr}))

    # -- answers ------------------------------------------------------------------------------
    def _respond(self, req: SipMessage | NativeRegister, peer: Peer, status: int, reason: str | None = None, *,
                 headers: list[tuple[str, str]] | tuple = (), idempotent: bool = False) -> None:
        if type(req) is NativeRegister:
            req.respond(status, reason, list(headers))
        else:
            self.stack.respond(req, peer, status, reason, headers=headers, idempotent=idempotent)

    def _challenge(self, req: SipMessage, peer: Peer, *, stale: bool = False) -> None:
        challenge = Challenge(self.settings.realm, self.nonces.make(), self.settings.digest_algorithm,
                              "auth" if self.settings.digest_qop else None, stale=stale)
        self._respond(req, peer, 401, headers=[("WWW-Authenticate", challenge.header()), *self._ver(req)],
                           idempotent=True)

    def _ver(self, req: SipMessage) -> list[tuple[str, str]]:
        ver = req.get("X-GB-Ver")
        return [("X-GB-Ver", ver)] if ver else []

    def _fail(self, req: SipMessage, peer: Peer, device_id: str, reason: str, status: int, text: str | None,
              *, count_ban: bool = True) -> None:
        self.failures[reason] += 1
        if not count_ban:  # refused before any digest: no ban to count, an event to leave
            self.refusals.note(device_id, reason, peer.addr)
        else:
            banned = self.bans.failure(peer.host) | self.bans.failure(device_id)
            self.bus.publish(Event("sip.auth_failed", device_id, {"remote_addr": peer.addr, "reason": reason}))
            if banned:
                self.bus.publish(Event("sip.ban", device_id, {
                    "remote_addr": peer.addr, "duration_s": self.settings.ban_duration_s,
                    "failures": self.settings.ban_failures, "window_s": self.settings.ban_window_s}))
                self._respond(req, peer, 403, "Temporarily banned after repeated authentication failures")
                return
        if status == 401:
            self._challenge(req, peer)
        else:
            self._respond(req, peer, status, text)

    def _accept(self, req: SipMessage, peer: Peer, device_id: str, proof: tuple[float, int]) -> None:
        expires = _requested_expires(req)
        if expires is None:
            expires = 3600
        if expires == 0:
            self.registrations.remove(device_id)
            self.registrations.note_answer(device_id, *proof)
            self.writer.unregistered(device_id)
            self._respond(req, peer, 200, headers=[("Date", self._date(datetime.now(UTC))), *self._ver(req)])
            self.bus.publish(Event("device.unregistered", device_id, {"remote_addr": peer.addr}))
            self.on_unregistered(device_id, "unregistered by the device")
            return
        if expires < self.settings.register_expires_min:
            self.failures["interval_too_brief"] += 1
            self._respond(req, peer, 423, headers=[("Min-Expires", str(self.settings.register_expires_min))])
            return
        self._register(req, peer, device_id, proof, expires)

    def _register(self, req: SipMessage | NativeRegister, peer: Peer, device_id: str, proof: tuple[float, int],
                  expires: int, answer: bytes | None = None) -> None:
        """A registration or its refresh, with the 200 OK (`answer` when the native decider built it)."""
        expires = min(expires, self.settings.register_expires_max)
        ver = req.get("X-GB-Ver")
        version = ver or self.settings.gb_version
        device_id, registered_before = self.registrations.register(
            device_id, peer, self._clock() + expires, version, *proof)
        now = datetime.now(UTC)
        contact = req.get("Contact") or ""
        if answer is not None:
            req.send(answer, 200)  # type: ignore[union-attr]  # only a NativeRegister comes with one
        else:
            headers = [("Date", self._date(now)), ("Expires", str(expires))]
            if contact:
                headers.append(("Contact", contact.split(";expires", 1)[0]))
            if ver:
                headers.append(("X-GB-Ver", ver))
            self._respond(req, peer, 200, headers=headers, idempotent=True)  # a repeat only refreshes
        remote_addr = peer.addr
        self.writer.registered(device_id, transport=peer.transport, remote_addr=remote_addr, contact=contact,
                               gb_version=version, expires_at=now + timedelta(seconds=expires), now=now)
        if not registered_before:
            self.bus.publish(Event("device.registered", device_id, {"remote_addr": remote_addr, "transport": peer.transport,
                                                                    "expires": expires, "gb_version": version}, now))
        self.on_registered(device_id, peer, not registered_before)

    def _date(self, now: datetime) -> str:
        """gb_date, and the native decider told the Date prefix of each new second, so that it
        builds the 200 OKs of that second itself (it builds none for a second it was not told)."""
        text = gb_date(now, self.tz)
        if self._decider is not None and _date_prefix[0] != self._decider_second:
            self._decider_second = _date_prefix[0]
            self._decider.set_date(_date_prefix[0], _date_prefix[2].encode())
        return text


def answer_fingerprint(response: str) -> int:
    """64 bits of a verified digest response (hex, so equal answers give equal fingerprints)."""
    try:
        return int(response[:16], 16)
    except ValueError:
        return 0


def _requested_expires(req: SipMessage) -> int | None:
    contact = req.get("Contact") or ""
    if "expires=" in contact.lower():
        try:
            value = contact.lower().split("expires=", 1)[1].split(";", 1)[0].split(",", 1)[0].strip()
            return max(0, int(value))
        except ValueError:
            pass
    header = req.get("Expires")
    if header is not None:
        try:
            return max(0, int(header.strip()))
        except ValueError:
            return None
    return None
