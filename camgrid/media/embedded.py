"""The embedded media node that `camgrid serve` runs: a child process by default.

In "process" mode the node is `camgrid media` started as a child with a fresh random secret
(passed in its environment, never on the command line or disk); the child prints one ready
line with its URL. If the child dies it is started again (its streams are gone: the platform's
supervisor sees that and ends them with that reason). In "inline" mode the node runs in the
platform's own event loop (tests, very small sites).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import sys

from sqlalchemy import Engine

from camgrid.config import ENV_PREFIX, Settings
from camgrid.media.client import NodeClient
from camgrid.media.export import load_or_create_key
from camgrid.media.node import MediaNode

log = logging.getLogger(__name__)

SECRET_ENV = "CAMGRID_MEDIA_SECRET"
READY_PREFIX = "media node ready: "
START_TIMEOUT_S = 30.0


class EmbeddedNode:
    def __init__(self, settings: Settings, mode: str, *, engine: Engine | None = None) -> None:
        self.settings = settings
        self.mode = mode
        self.engine = engine  # inline mode records through the platform's engine
        self.secret = secrets.token_urlsafe(32)
        self.node: MediaNode | None = None  # inline mode
        self.process: asyncio.subprocess.Process | None = None
        self.client: NodeClient | None = None
        self.restarts = 0
        self._watch: asyncio.Task | None = None
        self._stopping = False

    async def start(self) -> NodeClient:
        if self.mode == "inline":
            key = await asyncio.to_thread(load_or_create_key, self.settings.export_key_file)
            self.node = MediaNode(self.settings.media, self.secret, node_id="embedded", engine=self.engine,
                                  recordings_dir=self.settings.recordings_dir, export_key=key,
                                  retention=self.settings.retention)
            await self.node.start()
            url = self.node.url
        else:
            url = await self._spawn()
            self._watch = asyncio.get_running_loop().create_task(self._watch_loop())
        self.client = NodeClient(url, self.secret)
        return self.client

    async def _spawn(self) -> str:
        s = self.settings
        await asyncio.to_thread(load_or_create_key, s.export_key_file)
        args = [sys.executable, "-m", "camgrid", "media", "--data-dir", str(s.data_dir), "--node-id", "embedded",
                "--database-url", s.database_url, "--recordings-dir", str(s.recordings_dir),
                "--export-key-file", str(s.export_key_file),
                "--http-host", s.media.http_host, "--http-port", str(s.media.http_port)]
        env = dict(os.environ, **{SECRET_ENV: self.secret})
        # The child reads the same media settings the platform was given (file, environment or flags).
        for name, value in s.media.model_dump(mode="json", exclude={"nodes"}).items():
            env[f"{ENV_PREFIX}MEDIA__{name.upper()}"] = json.dumps(value)
        for name, value in s.retention.model_dump(mode="json").items():
            env[f"{ENV_PREFIX}RETENTION__{name.upper()}"] = json.dumps(value)
        self.process = await asyncio.create_subprocess_exec(*args, env=env, stdout=asyncio.subprocess.PIPE)
        try:
            while True:
                line = await asyncio.wait_for(self.process.stdout.readline(), START_TIMEOUT_S)
                if not line:
                    raise RuntimeError(f"the media node exited with status {await self.process.wait()} before it was ready")
                text = line.decode(errors="replace").strip()
                if text.startswith(READY_PREFIX):
                    return text[len(READY_PREFIX):].split()[0]
        except asyncio.TimeoutError:
            self.process.kill()
            raise RuntimeError(f"the media node did not start within {START_TIMEOUT_S:.0f} s") from None

    async def _watch_loop(self) -> None:
        while not self._stopping:
            assert self.process is not None
            # Keep reading its stdout so the pipe never fills and blocks the child.
            line = await self.process.stdout.readline()
            if line:
                continue
            status = await self.process.wait()
            if self._stopping:
                return
            self.restarts += 1
            log.error("the media node exited (status %s); starting it again", status)
            await asyncio.sleep(1.0)
            try:
                url = await self._spawn()
            except Exception:
                log.exception("the media node could not be restarted")
                await asyncio.sleep(5.0)
                continue
            if self.client is not None:
                self.client.moved(url)

    async def stop(self) -> None:
        self._stopping = True
        if self.client is not None:
            await self.client.close()
        if self.node is not None:
            await self.node.stop()
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except asyncio.TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
