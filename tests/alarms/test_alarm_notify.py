"""Notifications to real receivers: a webhook server on loopback (signature checked), the
Mosquitto broker on 127.0.0.1:1883 (a real MQTT subscriber), a receiver that is down at first
(retried with backoff, nothing lost), one that never comes back (given up, counted)."""

from __future__ import annotations

import json
import queue
import socket
import uuid

import pytest
from alarm_helpers import CHANNEL, SECRET, WebhookReceiver, device_alarm, until

from camgrid.bus import Event
from camgrid.ops.alarms.delivery import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from camgrid.ops.alarms.outbox import status


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _broker_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 1883), timeout=1).close()
        return True
    except OSError:
        return False


async def test_webhook_gets_signed_json(make_centre, receiver):
    centre, bus = await make_centre(webhooks=[{"url": receiver.url, "secret": SECRET}])
    bus.publish(device_alarm(priority="1"))
    (hit,) = await until(lambda: receiver.received, what="the webhook")
    headers = hit["headers"]
    assert verify(SECRET, headers[TIMESTAMP_HEADER.lower()], hit["body"], headers[SIGNATURE_HEADER.lower()])
    assert not verify("some-other-secret-0000", headers[TIMESTAMP_HEADER.lower()], hit["body"], headers[SIGNATURE_HEADER.lower()])
    doc = hit["json"]
    assert doc["schema"] == "camgrid.alarm/1" and doc["event"] == "raised" and headers["x-camgrid-event"] == "raised"
    assert headers["x-camgrid-delivery"] == doc["event_id"] and doc["platform"] == "34020000002000000001"
    assert doc["alarm"]["type"] == "alarm.video.motion" and doc["alarm"]["channel_id"] == CHANNEL
    assert doc["alarm"]["priority"] == 1 and "open_key" not in doc["alarm"]
    await until(lambda: centre.notifier.delivered["webhook"] == 1, what="the delivery counted")


async def test_receiver_down_at_first_gets_everything_once_up(make_centre):
    port = _free_port()
    url = f"http://127.0.0.1:{port}/hook"
    centre, bus = await make_centre(webhooks=[{"url": url, "secret": SECRET, "timeout_s": 2}],
                                    retry_base_s=0.05, retry_max_s=0.5)
    for i in range(5):
        bus.publish(device_alarm(channel=f"3402000000131{i:07d}"))
    await until(lambda: centre.notifier.attempt_failures["webhook"] >= 10, what="failed attempts while down")
    assert centre.notifier.delivered["webhook"] == 0
    receiver = WebhookReceiver()
    await receiver.start(port)
    try:
        await until(lambda: len(receiver.received) == 5, timeout=30, what="every notification after the receiver came up")
        await until(lambda: centre.notifier.delivered["webhook"] == 5, what="deliveries settled")
        assert sorted(h["json"]["alarm"]["channel_id"] for h in receiver.received) == [
            f"3402000000131{i:07d}" for i in range(5)]
        await until(lambda: status(centre.engine)["counts"] == {"delivered": {"webhook": 5}}, what="the outbox settled")
    finally:
        await receiver.stop()


async def test_error_status_is_retried_and_honours_retry_after_cap(make_centre, receiver):
    receiver.status = 503
    centre, bus = await make_centre(webhooks=[{"url": receiver.url, "secret": SECRET}], retry_base_s=0.05, retry_max_s=0.2)
    bus.publish(Event("vqd.fault", CHANNEL, {"type": "blur", "severity": "critical"}))
    await until(lambda: centre.notifier.attempt_failures["webhook"] >= 3, what="retries on 503")
    receiver.status = 200
    await until(lambda: receiver.received, what="delivered after the 503s")
    assert receiver.received[0]["json"]["alarm"]["type"] == "vqd.blur"


async def test_given_up_after_the_limit_and_requeued_by_retry(make_centre):
    port = _free_port()
    centre, bus = await make_centre(webhooks=[{"url": f"http://127.0.0.1:{port}/x", "secret": SECRET, "timeout_s": 1}],
                                    retry_base_s=0.05, retry_max_s=0.1, give_up_after_s=0.5)
    bus.publish(device_alarm())
    await until(lambda: status(centre.engine)["counts"] == {"failed": {"webhook": 1}}, what="given up")
    assert centre.notifier.given_up["webhook"] == 1 and status(centre.engine)["failing"][0]["attempts"] >= 2
    from datetime import UTC, datetime

    from camgrid.ops.alarms.outbox import retry_failed
    receiver = WebhookReceiver()
    await receiver.start(port)
    try:
        assert retry_failed(centre.engine, datetime.now(UTC)) == 1
        centre.notifier.wake()
        await until(lambda: receiver.received, what="the re-queued delivery")
    finally:
        await receiver.stop()


@pytest.mark.skipif(not _broker_up(), reason="Mosquitto is not listening on 127.0.0.1:1883")
async def test_mqtt_publishes_json_to_priority_and_type_topic(make_centre):
    import paho.mqtt.client as mqtt

    prefix = f"camgrid-test/{uuid.uuid4().hex[:8]}"
    got: queue.Queue = queue.Queue()
    subscribed = queue.Queue()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:8]}")
    sub.on_message = lambda _c, _u, msg: got.put(msg)
    sub.on_subscribe = lambda *_a: subscribed.put(True)
    sub.on_connect = lambda c, *_a: c.subscribe(f"{prefix}/#", qos=1)
    sub.connect("127.0.0.1", 1883)
    sub.loop_start()
    try:
        await until(lambda: not subscribed.empty(), what="the test subscriber")
        centre, bus = await make_centre(mqtt={"host": "127.0.0.1", "port": 1883, "topic_prefix": prefix})
        bus.publish(device_alarm(priority="1"))
        bus.publish(Event("device.offline", "34020000001180000009", {"reason": "keepalive timeout"}))
        await until(lambda: got.qsize() >= 2, what="two MQTT messages")
        messages = {m.topic: m for m in (got.get() for _ in range(2))}
        assert set(messages) == {f"{prefix}/1/alarm.video.motion", f"{prefix}/2/health.offline"}
        motion = messages[f"{prefix}/1/alarm.video.motion"]
        doc = json.loads(motion.payload)
        assert motion.qos == 1 and not motion.retain
        assert doc["event"] == "raised" and doc["alarm"]["channel_id"] == CHANNEL and doc["alarm"]["priority"] == 1
        await until(lambda: centre.notifier.delivered["mqtt"] == 2, what="MQTT deliveries counted")
    finally:
        sub.loop_stop()
        sub.disconnect()


async def test_mqtt_broker_unreachable_is_retried_not_blocking(make_centre, sqlite_engine):
    port = _free_port()
    centre, bus = await make_centre(mqtt={"host": "127.0.0.1", "port": port, "timeout_s": 1}, retry_base_s=0.05,
                                    retry_max_s=0.2)
    bus.publish(device_alarm())
    await until(lambda: centre.notifier.attempt_failures["mqtt"] >= 2, what="MQTT retries")
    # the centre kept working meanwhile
    bus.publish(Event("vqd.fault", CHANNEL, {"type": "blur"}))
    from sqlalchemy import func, select

    from camgrid.store.tables import alarms
    await until(lambda: sqlite_engine.connect().execute(select(func.count()).select_from(alarms)).scalar() == 2,
                what="the second alarm while MQTT is down")
    assert "cannot reach MQTT broker" in (centre.notifier.last_error or "")
