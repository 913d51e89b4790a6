"""Helpers for the alarm tests: a clock to move by hand, a real webhook receiver on loopback,
polling with a deadline, and event builders."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from camgrid.bus import Event
from camgrid.config import Settings

DEVICE = "34020000001180000001"
CHANNEL = "34020000001310000001"
SECRET = "0123456789abcdef-secret"


def alarm_settings(**alarms: Any) -> Settings:
    return Settings.model_validate({"sip": {"id": "34020000002000000001"}, "alarms": alarms})


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def until(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition",
                state: Callable[[], Any] | None = None) -> Any:
    """Poll (generous deadline, no timing assertion) until predicate() is truthy; its value. On a
    timeout the message shows `state()` (what was there instead), for a failure seen only in CI."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}" + (f"; state: {state()!r}" if state else ""))
        await asyncio.sleep(0.05)


def device_alarm(channel: str = CHANNEL, *, priority: str = "2", method: str = "5", kind: str | None = "2",
                 device: str = DEVICE, **extra: str) -> Event:
    data = {"device_id": device, "AlarmPriority": priority, "AlarmMethod": method, "AlarmTime": "2026-12-01T10:00:00",
            "AlarmDescription": "motion", **extra}
    if kind is not None:
        data["Info.AlarmType"] = kind
    return Event("alarm.device", channel, data)


class WebhookReceiver:
    """A small real HTTP/1.1 server on 127.0.0.1: records each POST (headers, body); answers
    `status` (change it to make the receiver fail) or refuses connections while `down`."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        self.port: int | None = None
        self._server: asyncio.base_events.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status = self.status
                if status == 200:
                    self.received.append({"method": method, "path": path, "headers": headers, "body": body,
                                          "json": json.loads(body)})
                reply = b"ok" if status == 200 else b"down"
                writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: {len(reply)}\r\n\r\n".encode() + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
