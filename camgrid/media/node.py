"""A media node: receives streams from devices and serves them to viewers.

It knows nothing of SIP or the registry. The signaling side drives it through its API
(camgrid.media.node_api, documented in docs/media-node.md): open a stream (get a port for the
SDP offer), pass on the device's answer (its SSRC, its address for TCP active), read the
streams' counters, close a stream. It reports its load so that each new stream goes to the
least loaded node. Several nodes can serve one platform; `camgrid media` runs one alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from camgrid.asgi import AsgiServer
from camgrid.config import MediaSettings
from camgrid.media.ingest import PortRange, StreamSocket
from camgrid.media.stream import MediaStream, StreamSpec

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.05  # how often reorder buffers release packets whose wait is over


class StreamExists(ValueError):
    pass


class UnknownStream(KeyError):
    pass


class MediaNode:
    def __init__(self, settings: MediaSettings, secret: str, *, node_id: str = "local") -> None:
        if len(secret) < 16:
            raise ValueError("the media node secret must be at least 16 characters")
        self.settings = settings
        self.secret = secret
        self.node_id = node_id
        self.ports = PortRange(*settings.rtp_ports)
        self.streams: dict[str, tuple[MediaStream, StreamSocket]] = {}
        self.closed_streams = 0
        self.http: AsgiServer | None = None
        self._poller: asyncio.Task | None = None
        self._lock = asyncio.Lock()

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self, *, serve_http: bool = True) -> None:
        self._poller = asyncio.get_running_loop().create_task(self._poll_loop())
        if serve_http:
            from camgrid.media.node_api import create_node_api

            self.http = AsgiServer(create_node_api(self), self.settings.http_host, self.settings.http_port)
            await self.http.start()
            log.info("media node %s listening on %s:%s", self.node_id, self.settings.http_host, self.http.port)

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.stop()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        for stream_id in list(self.streams):
            await self.close_stream(stream_id)

    @property
    def url(self) -> str:
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        host = self.settings.http_host
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"http://{host}:{self.http.port if self.http else self.settings.http_port}"

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL_S)
            now = time.monotonic()
            for stream, _ in list(self.streams.values()):
                stream.poll(now)

    # -- streams ----------------------------------------------------------------------------------
    async def open_stream(self, spec: StreamSpec) -> dict[str, Any]:
        async with self._lock:
            if spec.stream_id in self.streams:
                raise StreamExists(f"stream {spec.stream_id} is already open on node {self.node_id}")
            stream = MediaStream(spec, created_at=time.monotonic(), latency_s=self.settings.jitter_latency_s)
            sock = StreamSocket(stream, self.ports, self.settings.host)
            port = await sock.open()
            self.streams[spec.stream_id] = (stream, sock)
        return {"stream_id": spec.stream_id, "port": port, "host": self.settings.advertised_host}

    def _get(self, stream_id: str) -> tuple[MediaStream, StreamSocket]:
        try:
            return self.streams[stream_id]
        except KeyError:
            raise UnknownStream(stream_id) from None

    def answer(self, stream_id: str, *, ssrc: int | None = None, host: str | None = None, port: int | None = None) -> None:
        """The device accepted: follow the SSRC it announced (unless the check is strict) and,
        for TCP active, connect to its media address."""
        stream, sock = self._get(stream_id)
        if ssrc is not None and not stream.spec.ssrc_strict:
            stream.spec.ssrc = ssrc
        if stream.spec.transport == "tcp-active":
            if not host or not port:
                raise ValueError("TCP active needs the device's media host and port from its SDP answer")
            sock.connect(host, port)

    def stream(self, stream_id: str) -> MediaStream:
        return self._get(stream_id)[0]

    async def close_stream(self, stream_id: str) -> dict[str, Any] | None:
        entry = self.streams.pop(stream_id, None)
        if entry is None:
            return None
        stream, sock = entry
        stream.close()
        await sock.close()
        self.closed_streams += 1
        return stream.stats()

    def stats(self) -> list[dict[str, Any]]:
        out = []
        for stream, sock in self.streams.values():
            row = stream.stats()
            if stream.live.init is None or stream.error:
                host = self.settings.advertised_host or sock.host
                row["diagnosis"] = stream.no_media_reason(f"{host}:{sock.port}" if sock.port else host)
            out.append(row)
        return out

    def load(self) -> dict[str, Any]:
        """What the platform compares to pick a node: fewer streams and viewers is better."""
        streams = list(self.streams.values())
        return {
            "node_id": self.node_id, "public_url": self.url, "streams": len(streams),
            "viewers": sum(s.live.viewers for s, _ in streams),
            "bytes_in": sum(s.bytes for s, _ in streams),
            "ports_free": (self.ports.last - self.ports.first + 1 - len(self.ports.in_use)) if self.ports.first else None,
        }
