"""Sockets that feed a MediaStream: RTP over UDP, and RTP over TCP (RFC 4571) either way round.

- udp: one port per stream; every datagram is an RTP packet.
- tcp-passive: we listen, the device connects (the SDP offered a=setup:passive).
- tcp-active: we connect to the address in the device's answer (a=setup:active).

Ports come from a configured range; a port that the OS refuses (taken by another program) is
skipped. The hot path hands each socket read's packets to the stream as one batch
(MediaStream.on_datagrams). With the native module, the UDP stream sockets of an event loop sit in
one native epoll set (UdpDrain): one callback per wake-up reads every ready socket and demuxes
the in-order runs in C, so Python runs per finished frame, not per socket read or per packet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import weakref

from camgrid.media import fastpath
from camgrid.media.fastpath import recv_many, recv_many_from
from camgrid.media.rtp import TcpDeframer
from camgrid.media.stream import MediaStream

log = logging.getLogger(__name__)

UDP_RECEIVE_BUFFER = 4 << 20  # room for a few hundred ms of a busy node's packets
READ_BATCH = 64  # datagrams read per readiness callback at most (fairness between sockets)


class PortExhausted(RuntimeError):
    """No free port in the configured RTP range."""


class PortRange:
    def __init__(self, first: int, last: int) -> None:
        if not 0 <= first <= last <= 65535:
            raise ValueError(f"bad RTP port range {first}-{last}")
        self.first, self.last = first, last
        self._next = first
        self.in_use: set[int] = set()

    def candidates(self):  # noqa: ANN201
        """Ports to try, round-robin from after the last one handed out (0 = let the OS pick)."""
        if self.first == 0:
            yield 0
            return
        size = self.last - self.first + 1
        for i in range(size):
            port = self.first + (self._next - self.first + i) % size
            if port not in self.in_use:
                yield port

    def taken(self, port: int) -> None:
        self.in_use.add(port)
        if self.first:
            self._next = port + 1 if port < self.last else self.first

    def release(self, port: int) -> None:
        self.in_use.discard(port)


class _UdpReader:
    """A stream's UDP socket drained in a loop on each readiness event: under load many datagrams
    wait, and reading them in one callback saves the per-datagram protocol dispatch. With the
    native module (camgrid.media.fastpath) the batch is one recvmmsg system call."""

    def __init__(self, sock: socket.socket, stream: MediaStream) -> None:
        self.sock = sock
        self._fd = sock.fileno()
        self.stream = stream
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._ready)

    def _ready(self) -> None:
        if recv_many is not None:  # the native module: one recvmmsg call for the whole batch
            try:
                datagrams = recv_many(self._fd, READ_BATCH, 65536)
            except OSError:  # ICMP errors surface here on some kernels; the next read goes on
                return
            if datagrams:
                self.stream.on_datagrams(datagrams, time.monotonic())
            return
        recv, on_packet = self.sock.recv, self.stream.on_packet
        now = time.monotonic()
        for _ in range(READ_BATCH):
            try:
                data = recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ICMP errors surface here on some kernels; the next read goes on
                return
            on_packet(data, now)

    def close(self) -> None:
        self._loop.remove_reader(self.sock.fileno())
        self.sock.close()


class UdpDrain:
    """The UDP stream sockets of one event loop, read in one native call per wake-up
    (camgrid.media._native.UdpDrain, an epoll set whose fd the loop watches): each ready socket
    gives up to READ_BATCH datagrams (one recvmmsg), the in-order run at the head of each batch is
    checked and demuxed in C straight from the receive buffer (as NativePsDemuxer.feed_rtp does),
    and Python gets one row per socket: the run's units and counts (MediaStream.on_run) and any
    datagrams the run did not take, as bytes (MediaStream.on_datagrams, which judges them exactly
    as before). One per loop, made by the first socket and closed with the last (`for_loop`);
    tests/media/test_udp_drain_native.py holds it to the per-socket Python path."""

    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, UdpDrain] = weakref.WeakKeyDictionary()

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        assert fastpath.UdpDrain is not None
        # Frames are allocated and freed all the time: keep freed heap for reuse rather than fault
        # fresh pages in (process-wide; see keep_freed_heap in _native.c and docs/benchmarks.md).
        fastpath.native.keep_freed_heap()
        self._native = fastpath.UdpDrain(READ_BATCH)
        self._loop = weakref.ref(loop) if loop is not None else None  # the loop's reader holds this object
        self.sockets: dict[int, socket.socket] = {}
        if loop is not None:
            loop.add_reader(self._native.fileno(), self._ready)

    @classmethod
    def for_loop(cls, loop: asyncio.AbstractEventLoop) -> UdpDrain:
        drain = cls._by_loop.get(loop)
        if drain is None:
            drain = cls._by_loop[loop] = cls(loop)
        return drain

    def add(self, sock: socket.socket, stream: MediaStream) -> None:
        self._native.add(sock.fileno(), stream)
        self.sockets[sock.fileno()] = sock

    def remove(self, sock: socket.socket) -> None:
        """Before the socket closes. The last one out closes the set."""
        fd = sock.fileno()
        if fd >= 0 and self.sockets.get(fd) is sock:
            del self.sockets[fd]
            self._native.remove(fd)
        if not self.sockets and self._loop is not None:
            self.close()

    @property
    def errors(self) -> int:
        return self._native.errors

    def _ready(self) -> None:
        self.drain(time.monotonic())

    def drain(self, now: float) -> int:
        """Read every ready socket once; the number of sockets that gave datagrams. A stream whose
        handling raises (a consumer's bug) is logged and the other streams' rows still go through,
        as when each socket had its own callback."""
        rows = self._native.drain()
        for stream, units, count, payload_type, ssrc, wire, rest in rows:
            try:
                if count:
                    stream.on_run(units, count, payload_type, ssrc, wire, now)
                if rest is not None:
                    stream.on_datagrams(rest, now)
            except Exception:
                log.exception("stream %s: handling its packets failed", stream.spec.stream_id)
        return len(rows)

    def close(self) -> None:
        """Every socket forgotten (not closed: their StreamSockets close them) and the set closed."""
        self.sockets.clear()
        loop = self._loop() if self._loop is not None else None
        if loop is not None:
            if self._by_loop.get(loop) is self:
                del self._by_loop[loop]
            if not loop.is_closed():
                loop.remove_reader(self._native.fileno())
            self._loop = None
        self._native.close()


class _TcpProtocol(asyncio.Protocol):
    def __init__(self, stream: MediaStream, on_close=None) -> None:  # noqa: ANN001
        self.stream = stream
        self.deframer = TcpDeframer()
        self.transport: asyncio.Transport | None = None
        self.on_close = on_close

    def connection_made(self, transport) -> None:  # noqa: ANN001
        self.transport = transport
        self.stream.connected = True
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)

    def data_received(self, data: bytes) -> None:
        frames = self.deframer.feed(data)
        if frames:
            self.stream.on_datagrams(frames, time.monotonic())

    def connection_lost(self, exc: Exception | None) -> None:
        self.stream.connected = False
        if self.on_close:
            self.on_close(self)


class SharedUdpPort:
    """Single-port mode: one UDP port for every stream, each packet routed by its SSRC (bytes
    8-11 of the RTP header). One port to open in a firewall, one socket for the node; the price
    is that a device must send the SSRC it offered or answered (the node learns the answer's).
    Like _UdpReader, the socket is drained in batches (one recvmmsg call with the native module);
    each stream gets its datagrams of the batch, in order, in one `on_datagrams` call."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.requested_port = host, port
        self.port = 0
        self.routes: dict[int, MediaStream] = {}
        self.unknown = 0  # packets whose SSRC belongs to no stream
        self.collisions = 0
        self.unknown_ssrcs: dict[int, str] = {}  # a few recent ones, with their source, for diagnosis
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER * 4)
        try:
            sock.bind((self.host, self.requested_port))
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"cannot bind the shared RTP port {self.host}:{self.requested_port}: {exc.strerror}") from None
        sock.setblocking(False)
        self._sock, self._loop = sock, asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._ready)
        self.port = sock.getsockname()[1]

    def route(self, ssrc: int, stream: MediaStream) -> None:
        if self.routes.get(ssrc, stream) is not stream:
            self.collisions += 1  # two streams claim one SSRC: the later wins; the other shows no media
        self.routes[ssrc] = stream

    def unroute(self, stream: MediaStream) -> None:
        for ssrc in [k for k, v in self.routes.items() if v is stream]:
            del self.routes[ssrc]

    def stop(self) -> None:
        if self._sock is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    def describe_unknown(self) -> str:
        if not self.unknown:
            return ""
        seen = ", ".join(f"{ssrc} from {src}" for ssrc, src in list(self.unknown_ssrcs.items())[-3:])
        return f"; the shared RTP port got {self.unknown} packets with SSRCs of no stream ({seen})"

    def _ready(self) -> None:
        sock = self._sock
        if sock is None:
            return
        addrs: list[tuple[str, int]] | None = None
        if recv_many_from is not None:
            try:
                datagrams, sources = recv_many_from(sock.fileno(), READ_BATCH, 65536)
            except OSError:  # ICMP errors surface here on some kernels; the next read goes on
                return
        else:
            datagrams, addrs = [], []
            for _ in range(READ_BATCH):
                try:
                    data, addr = sock.recvfrom(65536)
                except OSError:  # nothing more waits (BlockingIOError), or an ICMP error: keep what was read
                    break
                datagrams.append(data)
                addrs.append(addr)
        routes, batches = self.routes, {}
        for i, data in enumerate(datagrams):
            stream = routes.get(int.from_bytes(data[8:12], "big")) if len(data) >= 12 else None
            if stream is None:
                self._unknown(data, addrs[i] if addrs is not None else (
                    socket.inet_ntoa(sources[6 * i:6 * i + 4]), int.from_bytes(sources[6 * i + 4:6 * i + 6], "big")))
                continue
            batch = batches.get(stream)
            if batch is None:
                batches[stream] = [data]
            else:
                batch.append(data)
        now = time.monotonic()
        for stream, batch in batches.items():
            stream.on_datagrams(batch, now)

    def _unknown(self, data: bytes, addr: tuple[str, int]) -> None:
        self.unknown += 1
        if len(data) >= 12 and len(self.unknown_ssrcs) < 16:
            self.unknown_ssrcs[int.from_bytes(data[8:12], "big")] = f"{addr[0]}:{addr[1]}"


class StreamSocket:
    """The socket(s) of one stream; `port` is what goes into the SDP offer."""

    def __init__(self, stream: MediaStream, ports: PortRange, host: str, shared: SharedUdpPort | None = None) -> None:
        self.stream = stream
        self.ports = ports
        self.host = host
        self.shared = shared if stream.spec.transport == "udp" else None
        self.port = 0
        self._transport: asyncio.BaseTransport | None = None
        self._reader: _UdpReader | None = None
        self._drain: UdpDrain | None = None
        self._udp: socket.socket | None = None
        self._server: asyncio.base_events.Server | None = None
        self._connection: _TcpProtocol | None = None
        self._connect_task: asyncio.Task | None = None

    async def open(self) -> int:
        kind = self.stream.spec.transport
        if kind == "tcp-active":
            return 0  # we connect out once the device's answer names its address
        if self.shared is not None:
            if self.stream.spec.ssrc is None:
                raise ValueError("single-port mode routes packets by SSRC: the stream needs one")
            self.shared.route(self.stream.spec.ssrc, self.stream)
            return self.shared.port
        loop = asyncio.get_running_loop()
        last_error: OSError | None = None
        for port in self.ports.candidates():
            try:
                if kind == "udp":
                    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
                    try:
                        sock.bind((self.host, port))
                    except OSError:
                        sock.close()
                        raise
                    sock.setblocking(False)
                    if fastpath.UdpDrain is not None:
                        self._drain = UdpDrain.for_loop(loop)
                        self._drain.add(sock, self.stream)
                        self._udp = sock
                    else:
                        self._reader = _UdpReader(sock, self.stream)
                    self.port = sock.getsockname()[1]
                else:
                    self._server = await loop.create_server(self._accept, self.host, port, reuse_address=True, backlog=4)
                    self.port = self._server.sockets[0].getsockname()[1]
            except OSError as exc:
                last_error = exc
                continue
            self.ports.taken(self.port)
            return self.port
        raise PortExhausted(f"no free {kind} port in {self.ports.first}-{self.ports.last}: {last_error}")

    def _accept(self) -> _TcpProtocol:
        # One device connection per stream; a reconnect replaces the old one.
        if self._connection is not None and self._connection.transport is not None:
            self._connection.transport.close()
        self._connection = _TcpProtocol(self.stream)
        return self._connection

    def connect(self, host: str, port: int, *, timeout_s: float = 5.0) -> None:
        """tcp-active: connect to the device's media address (from its SDP answer) in the background."""
        self._connect_task = asyncio.get_running_loop().create_task(self._connect(host, port, timeout_s))

    async def _connect(self, host: str, port: int, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(lambda: _TcpProtocol(self.stream), host, port), timeout_s)
            self._connection = protocol
        except (OSError, asyncio.TimeoutError) as exc:
            self.stream.error = f"could not connect to the device's media address {host}:{port} (TCP active): {exc or 'timeout'}"

    def follow_ssrc(self, ssrc: int) -> None:
        """The device answered with its own SSRC: route that one too (single-port mode)."""
        if self.shared is not None:
            self.shared.route(ssrc, self.stream)

    async def close(self) -> None:
        if self.shared is not None:
            self.shared.unroute(self.stream)
            return
        if self._connect_task is not None:
            self._connect_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._connect_task
        if self._connection is not None and self._connection.transport is not None:
            self._connection.transport.close()
        if self._transport is not None:
            self._transport.close()
        if self._reader is not None:
            self._reader.close()
        if self._drain is not None and self._udp is not None:
            self._drain.remove(self._udp)
            self._udp.close()
            self._drain = self._udp = None
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        if self.port:
            self.ports.release(self.port)

