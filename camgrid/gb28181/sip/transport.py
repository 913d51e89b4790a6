"""SIP transports on asyncio: UDP datagrams and TCP streams framed by Content-Length.

Transports only move bytes. Each received message goes to a callback with the Peer it came
from; nothing raised by the callback escapes into the event loop's transport machinery. UDP
datagrams may first meet a fast handler (see FastHandler), whose answers leave in batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from camgrid.gb28181.sip import fastpath
from camgrid.gb28181.sip.message import MessageTooLarge, SipError, frame_stream
from camgrid.ports import bind_error

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Peer:
    transport: str  # "udp" | "tcp"
    host: str
    port: int
    conn: TcpConnection | None = field(default=None, compare=False, hash=False)

    @property
    def addr(self) -> str:
        return f"{self.host}:{self.port}"


Receiver = Callable[[bytes, Peer], None]


# A handler for the hottest request shape, tried before the general path: given a datagram and
# its source, it returns (answer, port to answer to) when it has handled the request whole, else
# None. Answers it gives are sent in one batch per wake-up; an empty answer means handled, with
# the answer sent later by the handler itself.
FastHandler = Callable[[bytes, str, int], "tuple[bytes, int] | None"]
_PINGS = (b"\r\n\r\n", b"\r\n", b"\x00\x00\x00\x00")  # NAT keep-alives
_BATCH = 64  # datagrams read per system call and per wake-up


# Room for a registration storm's burst. The kernel silently caps it at net.core.rmem_max
# (208 KiB on many systems): `camgrid doctor` says so.
UDP_RECEIVE_BUFFER = 8 << 20


class UdpTransport:
    """One UDP socket read when the loop says it is readable: up to 64 datagrams per wake-up,
    in one recvmmsg call with the native module, else a recvfrom loop."""

    def __init__(self, receiver: Receiver, max_size: int) -> None:
        self._receiver = receiver
        self._max_size = max_size
        self.fast: FastHandler | None = None
        self.sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.dropped_oversize = 0
        self.send_failures = 0

    def open(self, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((host, port))
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(sock.fileno(), self._readable)
        except BaseException:
            sock.close()
            raise
        self.sock = sock

    def close(self) -> None:
        if self.sock is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None

    def _read(self) -> list[tuple[bytes, str, int]]:
        assert self.sock is not None
        if fastpath.recv_batch is not None:
            return fastpath.recv_batch(self.sock.fileno(), _BATCH, self._max_size + 1)
        batch = []
        for _ in range(_BATCH):
            try:
                data, addr = self.sock.recvfrom(self._max_size + 1)
            except (BlockingIOError, InterruptedError):
                break
            batch.append((data, addr[0], addr[1]))
        return batch

    def _readable(self) -> None:
        try:
            batch = self._read()
        except OSError as exc:  # e.g. an ICMP port unreachable for an earlier send
            log.debug("udp receive: %s", exc)
            return
        fast, answers = self.fast, []
        for data, host, port in batch:
            if len(data) > self._max_size:
                self.dropped_oversize += 1
                continue
            if data in _PINGS:
                continue
            try:
                if fast is not None:
                    answer = fast(data, host, port)
                    if answer is not None:
                        if answer[0]:  # b"": taken, answered later
                            answers.append((answer[0], host, answer[1]))
                        continue
                self._receiver(data, Peer("udp", host, port))
            except Exception:
                log.exception("unhandled error for a datagram from %s:%s", host, port)
        if answers:
            self._send_many(answers)

    def _send_many(self, answers: list[tuple[bytes, str, int]]) -> None:
        if fastpath.send_batch is not None and self.sock is not None:
            try:
                sent = fastpath.send_batch(self.sock.fileno(), answers)
            except (OSError, ValueError) as exc:
                log.debug("udp batch send: %s", exc)
                sent = 0
            self.send_failures += len(answers) - sent
            if sent == len(answers):
                return
            answers = answers[sent:]
        for data, host, port in answers:
            self.send(data, host, port)

    def send(self, data: bytes, host: str, port: int) -> None:
        if self.sock is None:
            return
        try:
            self.sock.sendto(data, (host, port))
        except OSError as exc:  # a full send queue or an unreachable peer: SIP retransmits
            self.send_failures += 1
            log.debug("udp send to %s:%s: %s", host, port, exc)

    @property
    def local_address(self) -> tuple[str, int]:
        assert self.sock is not None
        return self.sock.getsockname()[:2]

    def receive_backlog(self) -> tuple[int, int] | None:
        """(bytes waiting in the socket's receive queue, the queue's size); None where that cannot
        be read. Datagrams that wait here are the ones the loop has not caught up with: the
        earliest sign of a registration storm. Read by one getsockopt (Linux SO_MEMINFO); the
        /proc/net/udp scan it replaced cost ~10 ms of CPU per second at 20 reads a second."""
        sock = self.sock
        if sock is None:
            return None
        try:
            info = sock.getsockopt(socket.SOL_SOCKET, _SO_MEMINFO, 8)
        except OSError:
            return None
        return struct.unpack("=II", info)  # SK_MEMINFO_RMEM_ALLOC, SK_MEMINFO_RCVBUF


_SO_MEMINFO = getattr(socket, "SO_MEMINFO", 55)  # Linux >= 4.6


class TcpConnection(asyncio.Protocol):
    def __init__(self, receiver: Receiver, max_size: int, registry: dict[tuple[str, int], TcpConnection]) -> None:
        self._receiver = receiver
        self._max_size = max_size
        self._registry = registry
        self._buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.peer: Peer | None = None
        self.closed = asyncio.get_event_loop().create_future()

    def connection_made(self, transport) -> None:  # noqa: ANN001
        self.transport = transport
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = Peer("tcp", host, port, self)
        self._registry[(host, port)] = self

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            try:
                message = frame_stream(self._buffer, max_size=self._max_size)
            except MessageTooLarge:
                self._reject(413, "Request Entity Too Large")
                return
            except SipError:
                self._reject(400, "Bad Request")
                return
            if message is None:
                return
            try:
                assert self.peer is not None
                self._receiver(message, self.peer)
            except Exception:
                log.exception("unhandled error for a message from %s", self.peer)

    def _reject(self, status: int, reason: str) -> None:
        # The stream cannot be re-synchronised after a framing error: answer and close.
        if self.transport is not None:
            self.transport.write(f"SIP/2.0 {status} {reason}\r\nContent-Length: 0\r\n\r\n".encode())
            self.transport.close()
        self._buffer.clear()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self._registry.get((self.peer.host, self.peer.port)) is self:
            del self._registry[(self.peer.host, self.peer.port)]
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Transports:
    """The UDP socket and TCP listener of one SIP endpoint, plus its TCP connections."""

    def __init__(self, receiver: Receiver, *, host: str, port: int, kinds: list[str], max_size: int) -> None:
        self._receiver = receiver
        self.host = host
        self.port = port
        self.kinds = kinds
        self.max_size = max_size
        self.udp: UdpTransport | None = None
        self.fast: FastHandler | None = None  # see FastHandler; set before start()
        self._tcp_server: asyncio.Server | None = None
        self.tcp_connections: dict[tuple[str, int], TcpConnection] = {}

    async def start(self) -> None:
        """Bind UDP and TCP on the same port. With port 0 the kernel picks the UDP port, and the
        same number may be taken for TCP (by another listener or a client connection): then
        another port is tried, a few times."""
        attempts = 20 if self.port == 0 and {"udp", "tcp"} <= set(self.kinds) else 1
        for attempt in range(attempts):
            try:
                await self._bind(self.port)
                return
            except OSError as exc:
                if self.udp is not None:
                    self.udp.close()
                    self.udp = None
                if exc.errno != errno.EADDRINUSE or attempt == attempts - 1:
                    raise

    async def _bind(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        if "udp" in self.kinds:
            udp = UdpTransport(self._receiver, self.max_size)
            udp.fast = self.fast
            try:
                udp.open(self.host, port)
            except OSError as exc:
                raise bind_error("SIP UDP", self.host, port, exc, setting="sip.port, --sip-port") from exc
            self.udp = udp
            port = udp.local_address[1]
        if "tcp" in self.kinds:
            try:
                self._tcp_server = await loop.create_server(
                    lambda: TcpConnection(self._receiver, self.max_size, self.tcp_connections),
                    self.host, port, reuse_address=True, backlog=4096,
                )
            except OSError as exc:
                raise bind_error("SIP TCP", self.host, port, exc, setting="sip.port, --sip-port") from exc
            port = self._tcp_server.sockets[0].getsockname()[1]
        self.port = port

    async def stop(self) -> None:
        if self._tcp_server is not None:
            self._tcp_server.close()
        for conn in list(self.tcp_connections.values()):
            conn.close()
        if self._tcp_server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._tcp_server.wait_closed(), 2)
        if self.udp is not None:
            self.udp.close()

    def send(self, data: bytes, peer: Peer) -> bool:
        """Send to a peer; False if there is no way to reach it right now."""
        if peer.transport == "udp":
            if self.udp is None:
                return False
            self.udp.send(data, peer.host, peer.port)
            return True
        conn = peer.conn if peer.conn is not None and not peer.conn.closed.done() else self.tcp_connections.get((peer.host, peer.port))
        if conn is None:
            return False
        conn.send(data)
        return True

    async def connect_tcp(self, host: str, port: int) -> Peer:
        """Open (or reuse) a TCP connection to host:port, for requests we originate."""
        existing = self.tcp_connections.get((host, port))
        if existing is not None and existing.peer is not None:
            return existing.peer
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(
            lambda: TcpConnection(self._receiver, self.max_size, self.tcp_connections), host, port
        )
        assert conn.peer is not None
        return conn.peer
