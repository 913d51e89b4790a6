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
import json
import logging
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from camgrid.asgi import AsgiServer
from camgrid.config import MediaSettings, RetentionSettings
from camgrid.media import fastpath
from camgrid.media.export import MANIFEST, write_bundle
from camgrid.media.ingest import PortRange, SharedUdpPort, StreamSocket
from camgrid.media.recorder import Recorder, announced_audio_of
from camgrid.media.recording_index import RecordingIndex
from camgrid.media.recovery import recover_segments
from camgrid.media.retention_worker import RetentionWorker
from camgrid.media.stream import MediaStream, StreamSpec

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.05  # how often reorder buffers release packets whose wait is over


class StreamExists(ValueError):
    pass


class UnknownStream(KeyError):
    pass


class RecordingUnavailable(RuntimeError):
    pass


class MediaNode:
    def __init__(self, settings: MediaSettings, secret: str, *, node_id: str = "local", engine: Engine | None = None,
                 recordings_dir: Path | None = None, export_key: bytes | None = None,
                 retention: RetentionSettings | None = None) -> None:
        if len(secret) < 16:
            raise ValueError("the media node secret must be at least 16 characters")
        self.settings = settings
        self.secret = secret
        self.node_id = node_id
        self.engine = engine  # None: this node does not record
        self.recordings_dir = recordings_dir or settings.recordings_dir or Path("./data/recordings")
        self.index: RecordingIndex | None = RecordingIndex(engine) if engine is not None else None
        self.recorders: dict[str, Recorder] = {}  # stream id → its recorder
        self.retention: RetentionWorker | None = (
            RetentionWorker(engine, self.recordings_dir, node_id, retention or RetentionSettings()) if engine is not None else None)
        self.export_key = export_key  # None: this node does not export
        self.exports_dir = self.recordings_dir.parent / "exports"
        self.exports: dict[str, dict[str, Any]] = {}
        self._export_tasks: set[asyncio.Task] = set()
        self.recovered: list[dict[str, Any]] | None = None
        self._recovery: asyncio.Task | None = None
        self._started_wall = time.time()
        self.ports = PortRange(*settings.rtp_ports)
        self.shared_port: SharedUdpPort | None = (
            SharedUdpPort(settings.host, settings.single_port) if settings.single_port is not None else None)
        self.streams: dict[str, tuple[MediaStream, StreamSocket]] = {}
        self.closed_streams = 0
        self.http: AsgiServer | None = None
        self._poller: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        self._stream_opened = asyncio.Event()

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self, *, serve_http: bool = True) -> None:
        log.debug("media node %s: %s", self.node_id, fastpath.describe())
        if self.shared_port is not None:
            await self.shared_port.start()
        self._poller = asyncio.get_running_loop().create_task(self._poll_loop())
        if self.index is not None:
            self.recordings_dir.mkdir(parents=True, exist_ok=True)
            await self.index.start()
            self._recovery = asyncio.get_running_loop().create_task(self._recover())
            if self.retention is not None:
                await self.retention.start()
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
        for task in list(self._export_tasks):
            task.cancel()
        await asyncio.gather(*self._export_tasks, return_exceptions=True)
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery
        if self.retention is not None:
            await self.retention.stop()
        if self.index is not None:
            await self.index.stop()
        if self.shared_port is not None:
            self.shared_port.stop()

    async def _recover(self) -> None:
        """Repair what the last run of this node left open; retried while the database is away."""
        assert self.index is not None
        started = datetime.fromtimestamp(self._started_wall, timezone.utc)
        while True:
            try:
                rows = await asyncio.to_thread(self.index.open_segments, self.node_id, started)
                self.recovered = await asyncio.to_thread(recover_segments, self.index.engine, self.recordings_dir,
                                                         self.node_id, rows)
                return
            except Exception as exc:  # the database is not reachable yet
                log.error("recovery of open segments failed (%s); retrying in 10 s", exc)
                await asyncio.sleep(10)

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
            if not self.streams:  # nothing to poll: sleep until a stream opens, not 20 times a second
                self._stream_opened.clear()
                await self._stream_opened.wait()
            await asyncio.sleep(POLL_INTERVAL_S)
            now = time.monotonic()
            for stream, _ in list(self.streams.values()):
                stream.poll(now)

    # -- streams ----------------------------------------------------------------------------------
    async def open_stream(self, spec: StreamSpec) -> dict[str, Any]:
        async with self._lock:
            if spec.stream_id in self.streams:
                raise StreamExists(f"stream {spec.stream_id} is already open on node {self.node_id}")
            stream = MediaStream(spec, created_at=time.monotonic(), latency_s=self.settings.jitter_latency_s,
                                 audio_transcode=self.settings.audio_transcode)
            sock = StreamSocket(stream, self.ports, self.settings.host, self.shared_port)
            port = await sock.open()
            self.streams[spec.stream_id] = (stream, sock)
            self._stream_opened.set()
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
            sock.follow_ssrc(ssrc)
        if stream.spec.transport == "tcp-active":
            if not host or not port:
                raise ValueError("TCP active needs the device's media host and port from its SDP answer")
            sock.connect(host, port)

    def stream(self, stream_id: str) -> MediaStream:
        return self._get(stream_id)[0]

    # -- recording ------------------------------------------------------------------------------
    def start_recording(self, stream_id: str, *, channel_id: str, device_id: str, event_mode: bool = False,
                        pre_s: float | None = None, post_s: float | None = None,
                        media_origin: float | None = None) -> dict[str, Any]:
        stream = self._get(stream_id)[0]
        if self.index is None:
            raise RecordingUnavailable(f"media node {self.node_id} has no database and cannot record")
        if stream_id in self.recorders:
            raise RecordingUnavailable(f"stream {stream_id} is already being recorded")
        recorder = Recorder(channel_id=channel_id, device_id=device_id, root=self.recordings_dir, index=self.index,
                            node_id=self.node_id, part_s=self.settings.part_s, segment_s=self.settings.segment_s,
                            event_mode=event_mode, pre_s=self.settings.event_pre_s if pre_s is None else pre_s,
                            post_s=self.settings.event_post_s if post_s is None else post_s, media_origin=media_origin,
                            announced_audio=lambda: announced_audio_of(stream.demuxer.codecs))
        recorder.start()
        self.recorders[stream_id] = recorder
        stream.consumers.append(recorder.push)
        return recorder.stats()

    def trigger(self, stream_id: str) -> dict[str, Any]:
        recorder = self.recorders.get(stream_id)
        if recorder is None:
            raise UnknownStream(stream_id)
        recorder.trigger()
        return recorder.stats()

    async def stop_recording(self, stream_id: str) -> dict[str, Any] | None:
        recorder = self.recorders.pop(stream_id, None)
        if recorder is None:
            return None
        stream = self.streams.get(stream_id)
        if stream is not None and recorder.push in stream[0].consumers:
            stream[0].consumers.remove(recorder.push)
        await recorder.stop()
        return recorder.stats()

    # -- exports --------------------------------------------------------------------------------
    def start_export(self, *, export_id: str, channel_id: str, start: datetime, end: datetime, exported_by: str,
                     reason: str) -> dict[str, Any]:
        if self.engine is None or self.export_key is None:
            raise RecordingUnavailable(f"media node {self.node_id} cannot export (no recording index or no export key)")
        if export_id in self.exports:
            raise RecordingUnavailable(f"export {export_id} exists already")
        job: dict[str, Any] = {"export_id": export_id, "channel_id": channel_id, "state": "running", "progress": 0.0,
                               "error": None, "files": []}
        self.exports[export_id] = job

        async def run() -> None:
            try:
                manifest = await write_bundle(
                    self.engine, self.recordings_dir, self.exports_dir / export_id, channel_id=channel_id, start=start,
                    end=end, exported_by=exported_by, reason=reason, export_id=export_id, key=self.export_key,
                    progress=lambda fraction: job.__setitem__("progress", round(fraction, 3)))
                job.update(state="done", files=[{"name": f["name"], "bytes": f["bytes"], "sha256": f["sha256"]}
                                                for f in manifest["files"]] + [{"name": MANIFEST}])
            except Exception as exc:  # reported to whoever asked, with the reason
                log.exception("export %s failed", export_id)
                job.update(state="failed", error=str(exc))

        task = asyncio.get_running_loop().create_task(run())
        self._export_tasks.add(task)
        task.add_done_callback(self._export_tasks.discard)
        return job

    def export_job(self, export_id: str) -> dict[str, Any] | None:
        """An export of this run, or a finished bundle on disk from an earlier run (its manifest says so)."""
        job = self.exports.get(export_id)
        if job is not None:
            return job
        manifest = self.exports_dir / export_id / MANIFEST
        if not export_id.isalnum() or not manifest.is_file():
            return None
        try:
            doc = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        job = {"export_id": export_id, "channel_id": doc.get("channel_id"), "state": "done", "progress": 1.0, "error": None,
               "files": [{"name": f["name"], "bytes": f["bytes"], "sha256": f["sha256"]} for f in doc.get("files", [])]
               + [{"name": MANIFEST}]}
        self.exports[export_id] = job
        return job

    def export_file(self, export_id: str, name: str) -> Path | None:
        job = self.export_job(export_id)
        if job is None or job["state"] != "done" or name not in {f["name"] for f in job["files"]}:
            return None
        return self.exports_dir / export_id / name

    async def close_stream(self, stream_id: str) -> dict[str, Any] | None:
        await self.stop_recording(stream_id)
        entry = self.streams.pop(stream_id, None)
        if entry is None:
            return None
        stream, sock = entry
        stream.close()
        await sock.close()
        self.closed_streams += 1
        return stream.stats()

    def stats(self) -> list[dict[str, Any]]:
        return [self._row(stream, sock) for stream, sock in self.streams.values()]

    def stats_of(self, stream_id: str) -> dict[str, Any]:
        return self._row(*self._get(stream_id))

    def _row(self, stream: MediaStream, sock: StreamSocket) -> dict[str, Any]:
        row = stream.stats()
        recorder = self.recorders.get(stream.spec.stream_id)
        row["recording"] = recorder.stats() if recorder else None
        if stream.live.init is None or stream.error:
            host = self.settings.advertised_host or sock.host
            row["diagnosis"] = stream.no_media_reason(f"{host}:{sock.port}" if sock.port else host)
            if sock.shared is not None and stream.packets == 0:
                row["diagnosis"] += sock.shared.describe_unknown()
        return row

    def load(self) -> dict[str, Any]:
        """What the platform compares to pick a node: fewer streams and viewers is better."""
        streams = list(self.streams.values())
        return {
            "node_id": self.node_id, "public_url": self.url, "streams": len(streams),
            "native": fastpath.NATIVE,  # the C fast path (camgrid.media.fastpath) runs, or pure Python
            "viewers": sum(s.live.viewers for s, _ in streams),
            "bytes_in": sum(s.bytes for s, _ in streams),
            "shared_port": self.shared_port.port if self.shared_port else None,
            "shared_port_unknown_packets": self.shared_port.unknown if self.shared_port else None,
            "ports_free": (self.ports.last - self.ports.first + 1 - len(self.ports.in_use)) if self.ports.first else None,
            "recording": len(self.recorders),
            "index_pending": self.index.pending if self.index else None,
            "index_write_failures": self.index.write_failures if self.index else None,
            "disk_free_bytes": _disk_free(self.recordings_dir) if self.index else None,
            "retention": self.retention.stats() if self.retention else None,
        }


def _disk_free(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None
