"""POST /alarms/notifications/test: an admin sends a clearly marked test notification to the
configured receivers through the real senders — a loopback webhook (signed, checked here with
the shared key) and Mosquitto on 127.0.0.1:1883 (a real subscriber) — and reads, per receiver,
whether it took it or what went wrong. Refused to non-admins; audited; nothing enters the outbox."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from alarm_helpers import alarm_settings
from sqlalchemy import func, select

from camgrid.bus.memory import MemoryBus
from camgrid.ops.alarms.centre import AlarmCentre
from camgrid.ops.alarms.delivery import verify
from camgrid.store.tables import alarm_outbox, audit_log

SECRET = "a test secret of some length"
URL = "/api/v1/alarms/notifications/test"


def broker_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 1883), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def hook():
    """A loopback webhook receiver in its own thread (the API client is synchronous)."""
    got: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        status = 200

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
            self.send_response(Handler.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", got, Handler
    server.shutdown()
    server.server_close()


def api_with(make_api, engine, **alarms):
    settings = alarm_settings(**alarms)
    return make_api(settings=settings, alarms=AlarmCentre(settings, engine, MemoryBus()))


def test_a_webhook_gets_a_signed_marked_test_and_failures_say_why(make_api, engine, hook):
    url, got, handler = hook
    dead = "http://127.0.0.1:9/nobody"  # port 9 (discard): refused
    api = api_with(make_api, engine, webhooks=[{"url": url, "secret": SECRET}, {"url": dead, "secret": SECRET, "timeout_s": 2}])
    assert api.post(URL, "operator", json={}).status_code == 403
    r = api.post(URL, "admin", json={"kind": "webhook"})
    assert r.status_code == 200, r.text
    results = {x["target"]: x for x in r.json()["results"]}
    assert r.json()["ok"] is False
    assert results[url]["ok"] is True and results[url]["error"] is None
    assert results[dead]["ok"] is False and results[dead]["error"]  # the connection error, in words
    (delivery,) = got
    document = json.loads(delivery["body"])
    assert document["event"] == "test" and document["test"] is True and document["alarm"]["type"] == "test.notification"
    assert "TEST" in document["alarm"]["title"] and delivery["headers"]["x-camgrid-event"] == "test"
    assert verify(SECRET, delivery["headers"]["x-camgrid-timestamp"], delivery["body"], delivery["headers"]["x-camgrid-signature"])
    handler.status = 500
    one = api.post(URL, "admin", json={"url": url}).json()
    assert one["results"] == [{**one["results"][0], "ok": False, "error": f"HTTP 500 from {url}"}]
    assert api.post(URL, "admin", json={"url": "http://example.invalid/x"}).status_code == 404  # configured ones only
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(alarm_outbox)).scalar() == 0
        audited = conn.execute(select(audit_log.c.actor, audit_log.c.detail)
                               .where(audit_log.c.action == "alarm.notifications.test")).all()
    assert len(audited) == 2 and audited[0].actor == "admin1"
    assert {(x["target"], x["ok"]) for x in audited[0].detail["results"]} == {(url, True), (dead, False)}


@pytest.mark.skipif(not broker_up(), reason="Mosquitto is not listening on 127.0.0.1:1883")
def test_mqtt_test_reaches_a_subscriber_and_a_dead_broker_is_reported(make_api, engine):
    import paho.mqtt.client as mqtt

    prefix = f"camgrid-test/{uuid.uuid4().hex[:8]}"
    seen: list[tuple[str, bytes]] = []
    ready = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_message = lambda c, u, m: seen.append((m.topic, m.payload))
    sub.on_subscribe = lambda *a: ready.set()
    sub.connect("127.0.0.1", 1883)
    sub.loop_start()
    try:
        sub.subscribe(f"{prefix}/#", qos=1)
        assert ready.wait(5)
        api = api_with(make_api, engine, mqtt={"host": "127.0.0.1", "port": 1883, "topic_prefix": prefix})
        r = api.post(URL, "admin", json={"kind": "mqtt"})
        assert r.status_code == 200 and r.json()["ok"] is True, r.text
        deadline = time.monotonic() + 5
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
        (topic, payload), = seen
        assert topic == f"{prefix}/4/test.notification" and json.loads(payload)["event"] == "test"
    finally:
        sub.loop_stop()
        sub.disconnect()
    api = api_with(make_api, engine, mqtt={"host": "127.0.0.1", "port": 9, "timeout_s": 2})
    r = api.post(URL, "admin", json={"kind": "mqtt"})
    assert r.status_code == 200 and r.json()["ok"] is False
    assert "cannot reach MQTT broker 127.0.0.1:9" in r.json()["results"][0]["error"]
