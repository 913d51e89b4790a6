"""Wiring: builds the platform's components and starts and stops them in order."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from camgrid.api.app import ApiContext, create_api
from camgrid.asgi import AsgiServer
from camgrid.ports import bind_error
from camgrid.bus import MemoryBus
from camgrid.config import Settings
from camgrid.governance.event_log import EventRecorder
from camgrid.governance.users import first_run_bootstrap
from camgrid.media.client import NodeClient
from camgrid.media.embedded import EmbeddedNode
from camgrid.ops.alarms.centre import AlarmCentre
from camgrid.ops.maintenance.worker import MaintenanceWorker
from camgrid.ops.rates.service import RatesService
from camgrid.ops.vqd.patrol import Patrol
from camgrid.registry.health import HealthTracker
from camgrid.signaling.media_sessions import MediaSessions
from camgrid.signaling.recording_plans import RecordingPlans
from camgrid.signaling.server import SignalingServer
from camgrid.store.engine import open_store

log = logging.getLogger(__name__)


def run_async(main: Callable[[], object]) -> object:
    """Run a coroutine function on uvloop when it is installed, else on asyncio's loop."""
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main())  # type: ignore[arg-type]


def write_control_file(data_dir: Path, host: str, port: int, secret: str) -> Path:
    """<data-dir>/run/control.json: where the running platform answers this machine's command line
    (`camgrid vqd patrol`), and the secret it asks for; owner-only, removed at stop."""
    run = Path(data_dir) / "run"
    run.mkdir(parents=True, exist_ok=True)
    path = run / "control.json"
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"url": f"http://{local}:{port}", "secret": secret, "pid": os.getpid()}, handle)
    return path


class Platform:
    """The embedded default: signaling, registry, health and the HTTP API in one process, and a media node."""

    def __init__(self, settings: Settings, *, serve_http: bool = True,
                 announce: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.serve_http = serve_http
        self.announce = announce
        self.engine = None
        self.bus = MemoryBus()
        self.health: HealthTracker | None = None
        self.signaling: SignalingServer | None = None
        self.recorder: EventRecorder | None = None
        self.api = None
        self._http: AsgiServer | None = None
        self.media: MediaSessions | None = None
        self.recording_plans: RecordingPlans | None = None
        self.alarms: AlarmCentre | None = None
        self.rates: RatesService | None = None
        self.maintenance: MaintenanceWorker | None = None
        self.patrol: Patrol | None = None
        self._control_file: Path | None = None
        self.media_node: EmbeddedNode | None = None
        self._node_clients: list[NodeClient] = []
        self.http_port: int | None = None

    async def start(self) -> None:
        s = self.settings
        if self.serve_http:  # the HTTP port first: the media node and its client open sockets before we serve
            self._http = AsgiServer(None, s.http.host, s.http.port)
            try:
                self._http.bind()
            except OSError as exc:
                raise bind_error("HTTP", s.http.host, s.http.port, exc, setting="http.port, --http-port") from exc
        s.data_dir.mkdir(parents=True, exist_ok=True)
        self.engine = await asyncio.to_thread(open_store, s.database_url)
        one_time = await asyncio.to_thread(first_run_bootstrap, self.engine)
        if one_time:
            self.announce(
                "No user existed, so an administrator was created.\n"
                f"  username: admin\n  one-time password: {one_time}\n"
                "  This password is shown once; change it after the first login."
            )
        self.recorder = EventRecorder(self.engine, self.bus)
        self.health = HealthTracker(self.engine, self.bus, s.health)
        self.signaling = SignalingServer(s, self.engine, self.bus, self.health)
        await self.recorder.start()
        await self.bus.start()
        if s.alarms.enabled:  # right after the bus: every fact from here on can become an alarm
            self.alarms = AlarmCentre(s, self.engine, self.bus)
            await self.alarms.start()
        # Before anything that publishes device facts: the rates replay the stored events, then follow the bus.
        self.rates = RatesService(self.engine, self.bus, s.rates)
        await self.rates.start()
        self.maintenance = MaintenanceWorker(self.engine, self.bus, s)
        await self.maintenance.start()
        await self.health.start()
        await self.signaling.start()
        await self._start_media()
        if self.serve_http:
            await self._start_http()

    async def _start_media(self) -> None:
        s = self.settings
        nodes: list[NodeClient] = []
        if s.media.embedded != "off":
            self.media_node = EmbeddedNode(s, s.media.embedded, engine=self.engine)
            nodes.append(await self.media_node.start())
        nodes += [NodeClient(ref.url, ref.secret) for ref in s.media.nodes]
        self._node_clients = nodes
        self.media = MediaSessions(s, self.signaling.stack, self.signaling.registrations, self.bus, nodes)
        self.signaling.media = self.media
        await self.media.start()
        self.recording_plans = RecordingPlans(s, self.engine, self.media, self.bus, is_online=self.health.is_online)
        await self.recording_plans.start()
        if self.alarms:
            self.alarms.recording_plans = self.recording_plans  # linkage rules trigger event recording
        self.patrol = Patrol(self.engine, self.bus, s, self.media, self.health.is_online, ptz=self.signaling.ptz)
        await self.patrol.start()

    async def _start_http(self) -> None:
        s = self.settings
        ctx = ApiContext(engine=self.engine, settings=s, bus=self.bus, health=self.health,
                         commands=self.signaling, metrics=self, media=self.media,
                         recording_plans=self.recording_plans, alarms=self.alarms, rates=self.rates,
                         patrol=self.patrol, control_secret=secrets.token_urlsafe(32))
        self.api = create_api(ctx)
        self._http.app = self.api
        await self._http.start()
        self.http_port = self._http.port
        self._control_file = await asyncio.to_thread(write_control_file, s.data_dir, s.http.host, self.http_port,
                                                     ctx.control_secret)

    def collect(self) -> dict[str, Any]:
        """What /metrics shows beyond the store's counts: signaling, and the write-back queues."""
        data: dict[str, Any] = dict(self.signaling.collect()) if self.signaling else {}
        if self.media:
            data.update(self.media.collect())
        if self.alarms:
            data.update(self.alarms.collect())
        if self.rates:
            data.update(self.rates.collect())
        if self.maintenance:
            data.update(self.maintenance.collect())
        if self.patrol:
            data.update(self.patrol.collect())
        if self.recorder:
            data.update(events_written_total=self.recorder.written, events_buffered=self.recorder.buffered,
                        events_dropped_total=self.recorder.dropped, event_write_failures_total=self.recorder.write_failures)
        if self.health:
            data.update(health_pending_writes=self.health.pending_writes,
                        health_write_failures_total=self.health.write_failures)
        return data

    async def stop(self) -> None:
        if self._control_file is not None:
            self._control_file.unlink(missing_ok=True)
        if self._http is not None:
            await self._http.stop()
        if self.patrol:
            await self.patrol.stop()
        if self.recording_plans:
            await self.recording_plans.stop()
        if self.media:
            await self.media.stop()
        for client in self._node_clients:
            if self.media_node is None or client is not self.media_node.client:
                await client.close()
        if self.media_node:
            await self.media_node.stop()
        if self.signaling:
            await self.signaling.stop()
        if self.health:
            await self.health.stop()
        if self.maintenance:
            await self.maintenance.stop()
        if self.rates:
            await self.rates.stop()
        if self.alarms:
            await self.alarms.stop()
        await self.bus.stop()
        if self.recorder:
            await self.recorder.stop()
        if self.engine is not None:
            self.engine.dispose()

    async def __aenter__(self) -> Platform:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
