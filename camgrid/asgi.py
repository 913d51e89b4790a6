"""Serving an ASGI app (the API, a media node's API) on our own event loop with uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import socket

import uvicorn


class _QuietServer(uvicorn.Server):
    """uvicorn wakes ten times a second to look for a shutdown request (about 2 ms of CPU a
    second on an idle platform); this one wakes once a second, when its Date header changes,
    or at once when stop() asks it to end."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.stop_requested = asyncio.Event()

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000  # on_tick refreshes the Date header when counter % 10 == 0
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stop_requested.wait(), 1.0)


class AsgiServer:
    """uvicorn on a socket we bind ourselves, so port 0 works and the real port is known at once."""

    def __init__(self, app, host: str, port: int) -> None:  # noqa: ANN001
        self.app = app
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self._server: _QuietServer | None = None
        self._task: asyncio.Task | None = None
        self._sock: socket.socket | None = None

    def bind(self) -> int:
        """Take the port now (serving starts with start()): a process that opens outgoing
        connections before it serves could otherwise see the port handed to one of them."""
        if self._sock is None:
            sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.host, self.requested_port))
            except OSError as exc:
                sock.close()
                raise OSError(exc.errno, f"cannot listen on {self.host}:{self.requested_port}: {exc.strerror}") from None
            sock.listen(1024)
            sock.setblocking(False)
            self._sock = sock
            self.port = sock.getsockname()[1]
        return self.port

    async def start(self) -> None:
        self.bind()
        sock = self._sock
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off", ws_max_size=1 << 20)
        self._server = _QuietServer(config)
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[sock]))
        while not self._server.started and not self._task.done():
            await asyncio.sleep(0.01)
        if self._task.done():
            self._task.result()

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            self._server.stop_requested.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5)
        elif self._sock is not None:  # bound but never served
            self._sock.close()
