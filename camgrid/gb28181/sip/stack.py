"""A SIP endpoint: transports plus RFC 3261 transactions (timers, retransmissions).

Server transactions absorb request retransmissions by re-sending the last response; client
transactions retransmit over UDP (Timer A/E, doubling from T1 to T2) and give up after
Timer B/F (64 x T1). Non-2xx answers to an INVITE are ACKed here; 2xx ACKs belong to the
dialog and are sent by the caller (camgrid.gb28181.sip.dialog builds them).

The request handler is a plain function so the hot path (keepalive) costs no task creation;
a handler that needs to wait schedules its own task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from camgrid.gb28181.sip.headers import NameAddr, Via, new_branch, new_call_id, new_tag
from camgrid.gb28181.sip.message import REASONS, SipError, SipMessage, canonical_name, parse_message
from camgrid.gb28181.sip.transport import FastHandler, Peer, Transports

log = logging.getLogger(__name__)

RequestHandler = Callable[[SipMessage, Peer], None]
_STATUS_COUNTER = {n: f"out.{n}xx" for n in range(1, 7)}


class TransactionTimeout(Exception):
    """No final response arrived before Timer B/F fired."""


class TransportUnavailable(Exception):
    """No way to reach the peer (e.g. its TCP connection is gone)."""


@dataclass(slots=True)
class _ServerTx:
    peer: Peer
    response: bytes | None
    expires: float


class _ClientTx:
    __slots__ = ("data", "peer", "future", "interval", "timer", "deadline_timer", "is_invite", "request")

    def __init__(self, request: SipMessage, data: bytes, peer: Peer, future: asyncio.Future) -> None:
        self.request = request
        self.data = data
        self.peer = peer
        self.future = future
        self.interval = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.deadline_timer: asyncio.TimerHandle | None = None
        self.is_invite = request.method == "INVITE"


class SipStack:
    def __init__(
        self,
        handler: RequestHandler,
        *,
        host: str = "0.0.0.0",
        port: int = 5060,
        transports: Iterable[str] = ("udp", "tcp"),
        max_message_bytes: int = 65536,
        advertised_host: str | None = None,
        user_agent: str = "camgrid",
        t1: float = 0.5,
        t2: float = 4.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._handler = handler
        self.transports = Transports(self._receive, host=host, port=port, kinds=list(transports), max_size=max_message_bytes)
        self.max_message_bytes = max_message_bytes
        self.advertised_host = advertised_host
        self.user_agent = user_agent
        self.t1, self.t2 = t1, t2
        self._clock = clock
        self._server_txs: dict[tuple[str, str, str], _ServerTx] = {}
        self._server_expiry: deque[tuple[float, tuple[str, str]]] = deque()
        self._client_txs: dict[str, _ClientTx] = {}
        self._reaper: asyncio.Task[None] | None = None
        self.counters: Counter[str] = Counter()
        self.on_response: Callable[[SipMessage, Peer], None] | None = None  # stray responses

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        await self.transports.start()
        self._reaper = asyncio.get_running_loop().create_task(self._reap_loop())

    async def stop(self) -> None:
        if self._reaper:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for tx in list(self._client_txs.values()):
            self._finish_client(tx, exc=TransactionTimeout("stack stopped"))
        await self.transports.stop()

    @property
    def port(self) -> int:
        return self.transports.port

    def set_fast_path(self, handler: FastHandler | None) -> None:
        """Let `handler` take UDP datagrams before the general path (see transport.FastHandler):
        requests it answers bypass parsing, transactions and the request handler, so it must
        answer only requests that need no transaction state (the way respond(idempotent=True)
        treats them) and count them itself."""
        self.transports.fast = handler
        if self.transports.udp is not None:
            self.transports.udp.fast = handler

    def local_host(self, peer: Peer | None = None) -> str:
        if self.advertised_host:
            return self.advertised_host
        host = self.transports.host
        if host in ("0.0.0.0", "::", ""):
            if peer is not None and peer.conn is not None and peer.conn.transport is not None:
                return peer.conn.transport.get_extra_info("sockname")[0]
            return "127.0.0.1" if peer is None or peer.host.startswith("127.") else _guess_local_ip(peer.host)
        return host

    def local_port(self, peer: Peer | None = None) -> int:
        if peer is not None and peer.conn is not None and peer.conn.transport is not None:
            return peer.conn.transport.get_extra_info("sockname")[1]
        return self.port

    # -- receive path ----------------------------------------------------------------------------
    def _receive(self, data: bytes, peer: Peer) -> None:
        try:
            msg = parse_message(data, max_size=self.max_message_bytes, stream=peer.transport == "tcp")
        except SipError as exc:
            self.counters["parse_errors"] += 1
            self._answer_unparsable(data, peer, exc)
            return
        if msg.is_request:
            self.counters[f"in.{msg.method}"] += 1
            self._receive_request(msg, peer)
        else:
            self.counters["in.response"] += 1
            self._receive_response(msg, peer)

    def _answer_unparsable(self, data: bytes, peer: Peer, exc: SipError) -> None:
        """Answer 400/413 when enough of the request survives to route a response; else drop."""
        if data.startswith(b"SIP/"):
            return  # never answer a response
        try:
            head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace").split("\r\n")
            keep = [line for line in head[1:] if line.split(":", 1)[0].strip().lower() in ("via", "v", "from", "f", "to", "t", "call-id", "i", "cseq")]
            if len([1 for line in keep if line.lower().startswith(("via", "v:"))]) == 0:
                return
            reason = getattr(exc, "status", 400)
            text = f"SIP/2.0 {reason} {REASONS.get(reason, 'Bad Request')}\r\n" + "\r\n".join(keep)
            text += f"\r\nWarning: 399 camgrid \"{str(exc)[:100].replace(chr(34), chr(39))}\"\r\nContent-Length: 0\r\n\r\n"
            self.transports.send(text.encode("utf-8", "replace"), peer)
        except Exception:  # pragma: no cover - best effort only
            pass

    def _receive_request(self, msg: SipMessage, peer: Peer) -> None:
        try:
            via = Via.parse(msg.top_via)
        except SipError:
            self._answer_unparsable(msg.to_bytes(), peer, SipError("bad Via"))
            return
        # RFC 3261 18.2.1 / RFC 3581: note where the request really came from.
        changed = False
        if via.host != peer.host:
            via.params["received"] = peer.host
            changed = True
        if "rport" in via.params:
            via.params["rport"] = str(peer.port)
            changed = True
        if changed:
            msg.headers[[k for k, _ in msg.headers].index("Via")] = ("Via", str(via))
        key = _server_key(msg, via.branch)
        reply_to = peer
        if peer.transport == "udp":
            host, port = via.response_address(peer.port)
            if host != peer.host or port != peer.port:
                reply_to = Peer("udp", host, port)
        msg.stack_data = (key, reply_to)
        if msg.method == "ACK":
            self._server_txs.pop(key, None)
            self._handler(msg, peer)
            return
        existing = self._server_txs.get(key)
        if existing is not None:
            self.counters["retransmissions_in"] += 1
            if existing.response is not None:
                self.transports.send(existing.response, existing.peer)
            return
        self._server_txs[key] = _ServerTx(peer, None, 0.0)
        try:
            self._handler(msg, peer)
        except Exception:
            log.exception("request handler failed for %s from %s", msg.method, peer.addr)
            if self._server_txs.get(key) and self._server_txs[key].response is None:
                self.respond(msg, peer, 500)

    def _receive_response(self, msg: SipMessage, peer: Peer) -> None:
        try:
            branch = Via.parse(msg.top_via).branch
        except SipError:
            return
        tx = self._client_txs.get(branch)
        if tx is None:
            if self.on_response is not None:
                self.on_response(msg, peer)
            return
        status = msg.status or 0
        if status < 200:
            if not tx.is_invite and tx.timer is not None and tx.peer.transport == "udp":
                tx.interval = self.t2  # proceeding: keep retransmitting at T2
            elif tx.is_invite and tx.timer is not None:
                tx.timer.cancel()  # Timer A stops on any provisional answer
                tx.timer = None
            return
        if tx.is_invite and status >= 300:
            self._send_ack_for_failure(tx.request, msg, tx.peer)
        self._finish_client(tx, result=msg)

    # -- server side ---------------------------------------------------------------------------
    def respond(
        self, request: SipMessage, peer: Peer, status: int, reason: str | None = None, *,
        headers: Iterable[tuple[str, str]] = (), body: bytes = b"", to_tag: str | None = None,
        idempotent: bool = False,
    ) -> SipMessage:
        """Answer a request. `idempotent=True` (REGISTER, keepalive) keeps no transaction state
        after a final answer, so retransmissions of the request reach the handler again."""
        response = make_response(request, status, reason, headers=headers, body=body, to_tag=to_tag, server=self.user_agent)
        data = response.to_bytes()
        if request.stack_data is not None:
            key, dest = request.stack_data
        else:  # a request that did not come through _receive_request (tests, stateless answers)
            try:
                via = Via.parse(request.top_via)
            except SipError:
                self.transports.send(data, peer)
                return response
            key, dest = _server_key(request, via.branch), peer
            if peer.transport == "udp":
                dest = Peer("udp", *via.response_address(peer.port))
        self.transports.send(data, dest)
        self.counters[_STATUS_COUNTER[status // 100]] += 1
        if status >= 200 and request.method != "ACK":
            if idempotent:
                # Nothing to remember: a retransmission is simply handled again (as a stateless
                # proxy would), which saves holding the answer for Timer J (32 s over UDP).
                self._server_txs.pop(key, None)
                return response
            tx = self._server_txs.get(key)
            if tx is not None:
                tx.response = data
                tx.peer = dest
                linger = 64 * self.t1 if peer.transport == "udp" else 0.0
                tx.expires = self._clock() + linger
                self._server_expiry.append((tx.expires, key))
        return response

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.reap()

    def reap(self) -> None:
        now = self._clock()
        q = self._server_expiry
        while q and q[0][0] <= now:
            _, key = q.popleft()
            tx = self._server_txs.get(key)
            if tx is not None and tx.expires <= now and tx.response is not None:
                del self._server_txs[key]
        # Requests that never got an answer (handler dropped them) must not leak.
        if len(self._server_txs) > 200_000:
            for key in [k for k, tx in self._server_txs.items() if tx.response is None][:50_000]:
                del self._server_txs[key]

    # -- client side ---------------------------------------------------------------------------
    def new_request(
        self, method: str, uri: str, *, from_uri: str, to_uri: str, peer: Peer, call_id: str | None = None,
        from_tag: str | None = None, to_tag: str | None = None, cseq: int = 1, contact: str | None = None,
        headers: Iterable[tuple[str, str]] = (), body: bytes = b"", content_type: str | None = None,
    ) -> SipMessage:
        host = self.local_host(peer)
        msg = SipMessage(method=method, uri=uri)
        transport = "TCP" if peer.transport == "tcp" else "UDP"
        msg.add("Via", f"SIP/2.0/{transport} {host}:{self.local_port(peer)};rport;branch={new_branch()}")
        msg.add("From", f"<{from_uri}>;tag={from_tag or new_tag()}")
        msg.add("To", f"<{to_uri}>" + (f";tag={to_tag}" if to_tag else ""))
        msg.add("Call-ID", call_id or new_call_id(host))
        msg.add("CSeq", f"{cseq} {method}")
        msg.add("Max-Forwards", "70")
        if contact:
            msg.add("Contact", contact)
        msg.add("User-Agent", self.user_agent)
        for k, v in headers:
            msg.add(k, v)
        if content_type:
            msg.add("Content-Type", content_type)
        msg.body = body
        return msg

    async def request(self, msg: SipMessage, peer: Peer, *, timeout: float | None = None) -> SipMessage:
        """Send a request in a client transaction; return the final response."""
        branch = Via.parse(msg.top_via).branch
        data = msg.to_bytes()
        if len(data) > self.max_message_bytes:
            raise SipError(f"request of {len(data)} bytes exceeds the size limit")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[SipMessage] = loop.create_future()
        tx = _ClientTx(msg, data, peer, future)
        self._client_txs[branch] = tx
        if not self.transports.send(data, peer):
            self._client_txs.pop(branch, None)
            raise TransportUnavailable(f"no {peer.transport} connection to {peer.addr}")
        self.counters[f"out.{msg.method}"] += 1
        if peer.transport == "udp":
            tx.interval = self.t1
            tx.timer = loop.call_later(self.t1, self._retransmit, branch)
        tx.deadline_timer = loop.call_later(timeout or 64 * self.t1, self._timeout, branch)
        return await future

    def _retransmit(self, branch: str) -> None:
        tx = self._client_txs.get(branch)
        if tx is None or tx.future.done():
            return
        self.transports.send(tx.data, tx.peer)
        self.counters["retransmissions_out"] += 1
        tx.interval = tx.interval * 2 if tx.is_invite else min(tx.interval * 2, self.t2)
        tx.timer = asyncio.get_running_loop().call_later(tx.interval, self._retransmit, branch)

    def _timeout(self, branch: str) -> None:
        tx = self._client_txs.get(branch)
        if tx is not None:
            self.counters["client_timeouts"] += 1
            self._finish_client(tx, exc=TransactionTimeout(f"no answer to {tx.request.method} from {tx.peer.addr}"))

    def _finish_client(self, tx: _ClientTx, *, result: SipMessage | None = None, exc: Exception | None = None) -> None:
        for timer in (tx.timer, tx.deadline_timer):
            if timer is not None:
                timer.cancel()
        try:
            branch = Via.parse(tx.request.top_via).branch
            self._client_txs.pop(branch, None)
        except SipError:
            pass
        if not tx.future.done():
            if exc is not None:
                tx.future.set_exception(exc)
            else:
                tx.future.set_result(result)  # type: ignore[arg-type]

    def _send_ack_for_failure(self, invite: SipMessage, response: SipMessage, peer: Peer) -> None:
        ack = SipMessage(method="ACK", uri=invite.uri)
        ack.add("Via", invite.top_via)
        ack.add("From", invite.get("From") or "")
        ack.add("To", response.get("To") or invite.get("To") or "")
        ack.add("Call-ID", invite.call_id)
        ack.add("CSeq", f"{invite.cseq[0]} ACK")
        ack.add("Max-Forwards", "70")
        self.transports.send(ack.to_bytes(), peer)

    def send(self, msg: SipMessage, peer: Peer) -> bool:
        """Send outside any transaction (ACK for 2xx, stateless answers)."""
        return self.transports.send(msg.to_bytes(), peer)


def make_response(
    request: SipMessage, status: int, reason: str | None = None, *, headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"", to_tag: str | None = None, server: str | None = None,
) -> SipMessage:
    # RFC 3261 8.2.6.2: Via and Record-Route in order, then From, To (with our tag), Call-ID, CSeq.
    copied = [(k, v) for k, v in request.headers if k in ("Via", "Record-Route")]
    first: dict[str, str] = {}
    for k, v in request.headers:
        if k in _ECHOED and k not in first:
            first[k] = v
    to = first.get("To", "")
    if status > 100 and "tag=" not in to:
        to = f"{to};tag={to_tag or new_tag()}"
    copied += [("From", first.get("From", "")), ("To", to), ("Call-ID", first.get("Call-ID", "")),
               ("CSeq", first.get("CSeq", ""))]
    if server:
        copied.append(("Server", server))
    copied += [(canonical_name(k), v) for k, v in headers]
    return SipMessage(status=status, reason=reason or REASONS.get(status, ""), headers=copied, body=body)


_ECHOED = frozenset(("From", "To", "Call-ID", "CSeq"))


def tag_of(header_value: str | None) -> str | None:
    if not header_value:
        return None
    try:
        return NameAddr.parse(header_value).tag
    except SipError:
        return None


_LOCAL_IP_CACHE: dict[str, str] = {}


def _guess_local_ip(remote: str) -> str:
    """The local address the kernel would use to reach `remote` (no packet is sent)."""
    if remote in _LOCAL_IP_CACHE:
        return _LOCAL_IP_CACHE[remote]
    import socket

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((remote, 9))
            ip = s.getsockname()[0]
    except OSError:
        ip = "127.0.0.1"
    if len(_LOCAL_IP_CACHE) < 1024:
        _LOCAL_IP_CACHE[remote] = ip
    return ip


def _server_key(msg: SipMessage, branch: str | None) -> tuple[str, str, str]:
    """Server transaction key. RFC 3261 matches on branch and method only; the CSeq number joins
    the key because some devices reuse one branch for every keepalive, and those are new requests,
    not retransmissions. ACK matches the INVITE it acknowledges."""
    method = "INVITE" if msg.method == "ACK" else (msg.method or "")
    cseq_number = (msg.get("CSeq") or "").split(" ", 1)[0]
    return (branch or msg.call_id or "", method, cseq_number)
