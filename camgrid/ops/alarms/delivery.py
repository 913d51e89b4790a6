"""Sending one notification: webhook (HTTP POST, HMAC-SHA256 signed) and MQTT (QoS 1).

Each sender raises DeliveryError when the receiver did not take the notification; the notifier
then retries with backoff. Nothing here blocks the event loop: HTTP is asynchronous (httpx), and
the MQTT client (paho-mqtt, a blocking library with its own network thread) is only called
through asyncio.to_thread.

Why paho-mqtt: it is the reference Python client (Eclipse), speaks MQTT 3.1.1 and 5, TLS and
authentication, and handles the QoS 1 handshake (PUBLISH, PUBACK, re-sending on reconnect)
that a hand-written publisher would have to get right again.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
import time
import uuid
from typing import Any

import httpx

SIGNATURE_HEADER = "X-Camgrid-Signature"
TIMESTAMP_HEADER = "X-Camgrid-Timestamp"


class DeliveryError(Exception):
    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value: sha256=<hex HMAC-SHA256 of "<timestamp>." + body>."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, max_age_s: float = 300,
           now: float | None = None) -> bool:
    """What a receiver does (and the tests): check the signature and that it is recent."""
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except ValueError:
        return False
    return age <= max_age_s and hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookSender:
    def __init__(self, user_agent: str = "camgrid") -> None:
        self.user_agent = user_agent
        self._client: httpx.AsyncClient | None = None

    async def send(self, hook: Any, body: bytes, event: str, event_id: str) -> None:  # hook: AlarmWebhook
        if self._client is None:
            self._client = httpx.AsyncClient(follow_redirects=False)
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "User-Agent": self.user_agent, "X-Camgrid-Event": event,
                   "X-Camgrid-Delivery": event_id, TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: sign(hook.secret, timestamp, body)}
        try:
            response = await self._client.post(hook.url, content=body, headers=headers, timeout=hook.timeout_s)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
        if not 200 <= response.status_code < 300:
            retry_after = response.headers.get("Retry-After", "")
            raise DeliveryError(f"HTTP {response.status_code} from {hook.url}",
                                retry_after_s=float(retry_after) if retry_after.isdigit() else None)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class MqttSender:
    """One connection to the broker, opened on first use and dropped after any failure (so a
    message paho queued while disconnected is not sent again behind our retry)."""

    def __init__(self, settings: Any) -> None:  # settings: AlarmMqtt
        self.s = settings
        self._client: Any = None
        self._lock = threading.Lock()

    def _connect(self) -> Any:
        import paho.mqtt.client as mqtt

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.s.client_id or f"camgrid-{uuid.uuid4().hex[:12]}",
                             protocol=mqtt.MQTTv311, clean_session=True)
        client.connect_timeout = self.s.timeout_s
        if self.s.username:
            client.username_pw_set(self.s.username, self.s.password)
        if self.s.tls:
            client.tls_set()
        connected = threading.Event()
        result: dict[str, Any] = {}

        def on_connect(_c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
            result["reason"] = reason
            connected.set()

        client.on_connect = on_connect
        try:
            client.connect(self.s.host, self.s.port, keepalive=self.s.keepalive_s)
        except OSError as exc:
            raise DeliveryError(f"cannot reach MQTT broker {self.s.host}:{self.s.port}: {exc}") from None
        client.loop_start()
        if not connected.wait(self.s.timeout_s) or getattr(result.get("reason"), "is_failure", True):
            client.loop_stop()
            client.disconnect()
            raise DeliveryError(f"MQTT broker {self.s.host}:{self.s.port} refused or did not answer the connection "
                                f"({result.get('reason', 'no CONNACK')})")
        return client

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.disconnect()
                client.loop_stop()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass

    def publish_blocking(self, topic: str, body: bytes) -> None:
        with self._lock:
            if self._client is None or not self._client.is_connected():
                self._drop()
                self._client = self._connect()
            client = self._client
        info = client.publish(topic, body, qos=1, retain=False)
        try:
            info.wait_for_publish(self.s.timeout_s)
        except (RuntimeError, ValueError) as exc:
            with self._lock:
                self._drop()
            raise DeliveryError(f"MQTT publish to {topic} failed: {exc}") from None
        if not info.is_published():
            with self._lock:
                self._drop()
            raise DeliveryError(f"MQTT broker {self.s.host}:{self.s.port} did not acknowledge (PUBACK) within "
                                f"{self.s.timeout_s:.0f} s")

    async def send(self, topic: str, body: bytes) -> None:
        await asyncio.to_thread(self.publish_blocking, topic, body)

    async def close(self) -> None:
        await asyncio.to_thread(self._drop)
