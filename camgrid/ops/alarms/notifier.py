"""The notifier: takes due deliveries out of the outbox, sends them, and writes back what became
of each — delivered, retried later (exponential backoff with jitter, capped), or given up after
`give_up_after_s`. It runs as its own task: a receiver that is down or slow delays only its own
deliveries, never the alarm centre's bus subscriber or signaling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from camgrid.ops.alarms import outbox
from camgrid.ops.alarms.delivery import DeliveryError, MqttSender, WebhookSender

log = logging.getLogger(__name__)
IDLE_POLL_S = 2.0
PRUNE_EVERY_S = 600.0


class Notifier:
    def __init__(self, engine: Engine, settings: Any, *, rand: Callable[[], float] = random.random) -> None:
        self.engine = engine
        self.s = settings  # camgrid.config.AlarmSettings
        self.rand = rand
        self.webhooks = WebhookSender()
        self.mqtt = MqttSender(settings.mqtt) if settings.mqtt is not None else None
        self.enqueued: Counter[str] = Counter()
        self.delivered: Counter[str] = Counter()
        self.attempt_failures: Counter[str] = Counter()
        self.given_up: Counter[str] = Counter()
        self.store_failures = 0
        self.last_error: str | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sem = asyncio.Semaphore(settings.delivery_concurrency)
        timeouts = [h.timeout_s for h in settings.webhooks] + ([settings.mqtt.timeout_s * 2] if settings.mqtt else [])
        self.lease_s = max(timeouts, default=10.0) + 30.0

    @property
    def enabled(self) -> bool:
        return bool(self.s.webhooks) or self.s.mqtt is not None

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        """Start delivering; with no receiver configured nothing is ever due, so nothing polls."""
        if self._task is None and self.enabled:
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="alarm-notifier")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.webhooks.close()
        if self.mqtt is not None:
            await self.mqtt.close()

    async def _run(self) -> None:
        failures = 0
        last_prune = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                sent = await self.round()
                if loop.time() - last_prune > PRUNE_EVERY_S:
                    last_prune = loop.time()
                    await asyncio.to_thread(outbox.prune, self.engine,
                                            datetime.now(UTC) - timedelta(seconds=self.s.keep_delivered_s))
                failures = 0
                if sent:
                    continue
                due = await asyncio.to_thread(outbox.next_due, self.engine)
                wait = IDLE_POLL_S if due is None else (due - datetime.now(UTC)).total_seconds()
            except Exception as exc:  # the database is away: keep trying, the outbox keeps the rest
                failures += 1
                self.store_failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                if failures == 1 or failures % 100 == 0:
                    log.warning("alarm notifier: outbox unavailable (%s); retrying", self.last_error)
                wait = min(30.0, 0.5 * 2 ** failures)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.01, min(wait, IDLE_POLL_S)))

    async def round(self) -> int:
        """Send what is due now; the number of deliveries attempted."""
        if not self.enabled:
            return 0
        rows = await asyncio.to_thread(outbox.claim, self.engine, datetime.now(UTC),
                                       self.s.delivery_concurrency * 4, self.lease_s)
        if not rows:
            return 0
        outcomes = await asyncio.gather(*(self._attempt(row) for row in rows))
        await asyncio.to_thread(outbox.settle, self.engine, list(outcomes))
        return len(rows)

    async def _attempt(self, row: dict[str, Any]) -> dict[str, Any]:
        kind = row["kind"]
        attempts = row["attempts"] + 1
        async with self._sem:
            try:
                await asyncio.wait_for(self._send(row), self.lease_s - 15.0)
            except (DeliveryError, TimeoutError) as exc:
                error = str(exc) or "timed out"
                retry_after = getattr(exc, "retry_after_s", None)
            except Exception as exc:  # noqa: BLE001 - a sender bug is one failed attempt, not a dead notifier
                log.exception("alarm notifier: %s delivery %s failed unexpectedly", kind, row["id"])
                error, retry_after = f"{type(exc).__name__}: {exc}", None
            else:
                self.delivered[kind] += 1
                return {"id": row["id"], "state": outbox.DELIVERED, "attempts": attempts,
                        "delivered_at": datetime.now(UTC), "last_error": None}
        self.attempt_failures[kind] += 1
        self.last_error = error[:300]
        now = datetime.now(UTC)
        if (now - row["created_at"]).total_seconds() >= self.s.give_up_after_s:
            self.given_up[kind] += 1
            log.error("alarm notification %s (%s to %s) given up after %d attempts: %s", row["id"], kind,
                      row["target"], attempts, error)
            return {"id": row["id"], "state": outbox.FAILED, "attempts": attempts, "last_error": error[:500]}
        delay = outbox.backoff_s(attempts, self.s.retry_base_s, self.s.retry_max_s, self.rand)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.s.retry_max_s))
        if attempts == 1:
            log.warning("alarm notification %s (%s to %s) failed, retried with backoff: %s", row["id"], kind,
                        row["target"], error)
        return {"id": row["id"], "state": outbox.PENDING, "attempts": attempts, "last_error": error[:500],
                "next_attempt_at": now + timedelta(seconds=delay)}

    async def _send(self, row: dict[str, Any]) -> None:
        document = row["payload"]
        data = outbox.body(document)
        if row["kind"] == "webhook":
            hook = next((h for h in self.s.webhooks if h.url == row["target"]), None)
            if hook is None:
                raise DeliveryError(f"webhook {row['target']} is no longer configured")
            await self.webhooks.send(hook, data, str(document.get("event", "")), str(document.get("event_id", "")))
        elif row["kind"] == "mqtt":
            if self.mqtt is None:
                raise DeliveryError("MQTT is no longer configured")
            await self.mqtt.send(row["target"], data)
        else:
            raise DeliveryError(f"unknown delivery kind {row['kind']!r}")

    async def send_test(self, kind: str, target: str, *, actor: str, platform_id: str) -> dict[str, Any]:
        """Send a clearly marked test notification to one configured receiver now, through the
        same senders, signature, body and topic as alarms, but not through the outbox (nothing
        is retried or kept). Fresh senders, so the live MQTT connection and HTTP pool are left as
        they are. Returns {ok, error, ...}."""
        document = marked_test_document(actor, platform_id)
        if kind == "webhook":
            hook = next((h for h in self.s.webhooks if h.url == target), None)
            if hook is None:
                raise DeliveryError(f"no webhook {target} is configured")
            sender: Any = WebhookSender()
            call = sender.send(hook, outbox.body(document), "test", document["event_id"])
            timeout = hook.timeout_s + 5.0
        elif kind == "mqtt":
            if self.s.mqtt is None:
                raise DeliveryError("MQTT is not configured (alarms.mqtt)")
            sender = MqttSender(self.s.mqtt)
            target = outbox.topic(self.s.mqtt.topic_prefix, document["alarm"])
            call = sender.send(target, outbox.body(document))
            timeout = self.s.mqtt.timeout_s * 2 + 5.0
        else:
            raise DeliveryError(f"unknown receiver kind {kind!r}: webhook or mqtt")
        started = time.monotonic()
        error = None
        try:
            await asyncio.wait_for(call, timeout)
        except (DeliveryError, TimeoutError) as exc:
            error = str(exc) or f"no answer within {timeout:.0f} s"
        except Exception as exc:  # noqa: BLE001 - reported to the admin, who asked
            error = f"{type(exc).__name__}: {exc}"
        finally:
            await sender.close()
        return {"kind": kind, "target": target, "ok": error is None, "error": error,
                "event_id": document["event_id"], "elapsed_ms": round((time.monotonic() - started) * 1000)}

    def collect(self) -> dict[str, Any]:
        return {"alarm_notifications_enqueued_total": dict(self.enqueued),
                "alarm_notifications_delivered_total": dict(self.delivered),
                "alarm_notification_attempt_failures_total": dict(self.attempt_failures),
                "alarm_notifications_given_up_total": dict(self.given_up),
                "alarm_notifier_store_failures_total": self.store_failures}


TEST_TYPE = "test.notification"


def marked_test_document(actor: str, platform_id: str) -> dict[str, Any]:
    """A notification that says everywhere that it is a test: event "test", alarm type
    test.notification, id 0, `"test": true`."""
    now = datetime.now(UTC)
    return outbox.jsonable({
        "schema": outbox.SCHEMA, "event": "test", "event_id": uuid.uuid4().hex, "at": now, "platform": platform_id,
        "actor": actor, "note": "TEST notification sent by hand from camgrid: not an alarm, nothing to do",
        "test": True, "data": {"test": True},
        "alarm": {"id": 0, "type": TEST_TYPE, "priority": 4, "state": "open", "source": "test",
                  "title": "TEST - camgrid notification test (not an alarm)", "first_at": now, "last_at": now,
                  "device_id": None, "channel_id": None, "count": 1},
    })
