"""End to end in the real platform: simulated devices register over SIP on loopback, send a
GB/T 28181 Alarm NOTIFY and unregister; the alarm centre (wired in camgrid.app) raises the
device alarm and the offline alarm, and GET /api/v1/alarms shows them."""

from __future__ import annotations

import httpx
from alarm_helpers import until

from camgrid.app import Platform
from camgrid.config import load_settings
from camgrid.governance.users import create_user, issue_token
from camgrid.registry.devices import add_device
from camgrid.sim.agent import SimOptions, Simulator
from camgrid.sim.devices import generate
from camgrid.store.engine import open_store

PLATFORM_ID = "34020000002000000001"


async def test_sip_alarm_and_offline_reach_the_alarm_list(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'camgrid.db'}"
    specs = generate(2, 1, seed="alarm-e2e", mix=False)
    engine = open_store(db_url)
    for spec in specs:
        add_device(engine, spec.id, spec.password, PLATFORM_ID[:10], name=spec.name)
    token = issue_token(engine, create_user(engine, "viewer1", "Correct-Horse-42", "viewer")["id"], 3600)
    engine.dispose()
    settings = load_settings(data_dir=tmp_path / "data", environ={}, overrides={
        "sip": {"host": "127.0.0.1", "port": 0, "id": PLATFORM_ID, "overload_lag_s": 0},
        "http": {"host": "127.0.0.1", "port": 0}, "store": {"database_url": db_url},
        "health": {"keepalive_interval_s": 2, "keepalive_count": 2, "sweep_interval_s": 0.2},
        "catalog": {"query_on_register": False}, "media": {"embedded": "off"}})
    platform = Platform(settings, announce=lambda text: None)
    await platform.start()
    sim = Simulator(specs, SimOptions(PLATFORM_ID, "127.0.0.1", platform.signaling.port, "udp", keepalive_s=0.5),
                    bind_host="127.0.0.1")
    try:
        await sim.start()
        assert await sim.wait_registered(20)
        device = sim.devices[specs[0].id]
        await device.send_alarm(priority=1, method=5, description="Simulated motion alarm")
        await sim.stop(unregister=True)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{platform.http_port}", timeout=30,
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            async def listed():
                items = (await client.get("/api/v1/alarms")).json()["items"]
                return items if {"alarm.video", "health.offline"} <= {a["type"] for a in items} else None

            items = await until(listed, timeout=30, what="the device alarm and the offline alarms")
        motion = next(a for a in items if a["type"] == "alarm.video")
        assert motion["device_id"] == specs[0].id and motion["priority"] == 1
        assert motion["channel_id"] == specs[0].channels[0].id and "Simulated motion alarm" in motion["title"]
        offline = [a for a in items if a["type"] == "health.offline"]
        assert {a["device_id"] for a in offline} == {s.id for s in specs}
        assert all("unregistered" in a["title"] for a in offline)
        assert platform.collect()["alarm_events_total"] >= 3
    finally:
        await platform.stop()
