"""The patrol in the real platform: simulated cameras stream a test pattern as PS over RTP on
loopback; a round diagnoses every channel from its live stream; cameras that stop sending
video become signal_loss findings and alarms, which clear when video is back; offline devices
are skipped; the API and `camgrid vqd patrol --once` drive and show it."""

from __future__ import annotations

import asyncio
import json
import sys

import httpx
import pytest
from sqlalchemy import select

from camgrid.app import Platform
from camgrid.governance.users import create_user, issue_token
from camgrid.sim.devices import generate
from camgrid.sim.media import SimMediaOptions
from camgrid.sim.video import synthetic_footage
from camgrid.store.tables import alarms, vqd_results, vqd_rounds
from tests.signaling.conftest import make_settings, provision, sim_for, wait_for


@pytest.fixture
def db_url(tmp_path):
    """The store is tested on both databases elsewhere: SQLite here."""
    return f"sqlite:///{tmp_path / 'camgrid.db'}"


@pytest.fixture(scope="module")
def footage():
    return synthetic_footage("h264", 320, 240, 25, 3, gop_s=1.0)


@pytest.fixture
async def running(tmp_path, db_url, footage):
    specs = generate(2, 2, seed="vqd-patrol", mix=False)
    provision(db_url, specs)
    settings = make_settings(tmp_path, db_url, media={"linger_s": 0.2})
    settings.vqd.first_round_after_s = 3600  # rounds are started by the test
    settings.vqd.sample_s = 2.0
    settings.vqd.first_frame_s = 3.0
    platform = Platform(settings, announce=lambda text: None)
    await platform.start()
    sim = sim_for(platform, specs, media=SimMediaOptions(bind_host="127.0.0.1"))
    sim.media.use_footage(footage)
    await sim.start()
    assert await sim.wait_registered(10)
    for spec in specs:
        await platform.signaling.catalog_refresh(spec.id)
    try:
        yield platform, sim, specs
    finally:
        await platform.stop()
        await sim.stop()


def rows(engine, table, *where):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(table).where(*where)).mappings()]


async def test_rounds_diagnose_every_channel_and_signal_loss_comes_and_goes(running):
    platform, sim, specs = running
    channels = {c.id for s in specs for c in s.channels}
    first = await platform.patrol.run_round("api", "tester")
    assert first["total"] == len(channels) == 4 and first["diagnosed"] == 4 and first["skipped"] == 0
    results = rows(platform.engine, vqd_results, vqd_results.c.round_id == first["round_id"])
    assert {r["channel_id"] for r in results} == channels
    # the patrol opened the streams itself: the simulator's sub-stream (320x180; its main one is 320x240)
    assert all(r["diagnosed"] and r["stream"] == "sub" and (r["width"], r["height"]) == (320, 180) and r["codec"] == "h264"
               and r["frames"] >= 3 for r in results)
    assert not any(f["type"] == "signal_loss" for r in results for f in r["faults"])

    sim.media.opts.mode = "silent"  # the cameras accept the INVITE and send nothing
    second = await platform.patrol.run_round("api", "tester")
    assert second["failed"] == 4 and second["with_faults"] == 4
    lost = rows(platform.engine, vqd_results, vqd_results.c.round_id == second["round_id"])
    assert all(r["faults"][0]["type"] == "signal_loss" and r["faults"][0]["reason"] for r in lost)
    await wait_for(lambda: len(rows(platform.engine, alarms, alarms.c.type == "vqd.signal_loss")) == 4, timeout=15)

    sim.media.opts.mode = "normal"
    third = await platform.patrol.run_round("api", "tester")
    assert third["diagnosed"] == 4
    await wait_for(lambda: all(a["state"] == "resolved" and a["cleared_at"] is not None
                               for a in rows(platform.engine, alarms, alarms.c.type == "vqd.signal_loss")), timeout=15)
    assert len(rows(platform.engine, vqd_rounds)) == 3


async def test_offline_devices_are_skipped_and_per_device_limits_hold(running):
    platform, sim, specs = running
    await sim.stop()  # both devices fall silent and go offline
    await wait_for(lambda: not any(platform.health.is_online(s.id) for s in specs), timeout=20)
    result = await platform.patrol.run_round("api", "tester")
    assert result["skipped"] == 4 and result["diagnosed"] == result["failed"] == 0


async def test_the_api_and_the_command_line(running, tmp_path):
    platform, sim, specs = running
    engine = platform.engine
    op = issue_token(engine, create_user(engine, "op1", "a long enough password 1", "operator")["id"], 3600)
    viewer = issue_token(engine, create_user(engine, "viewer1", "a long enough password 1", "viewer")["id"], 3600)
    channel = specs[0].channels[0].id
    base = f"http://127.0.0.1:{platform.http_port}/api/v1"
    async with httpx.AsyncClient(timeout=60) as client:
        as_op = {"Authorization": f"Bearer {op}"}
        now = await client.post(f"{base}/channels/{channel}/vqd/diagnose", params={"reference": "true"}, headers=as_op)
        assert now.status_code == 200, now.text
        assert now.json()["diagnosed"] and now.json()["reference_made"]
        state = (await client.get(f"{base}/channels/{channel}/vqd", headers={"Authorization": f"Bearer {viewer}"})).json()
        assert state["has_reference"] and state["reference_by"] == "op1" and len(state["history"]) == 1
        refused = await client.post(f"{base}/vqd/patrol/run", headers={"Authorization": f"Bearer {viewer}"})
        assert refused.status_code == 403
        bad = await client.put(f"{base}/channels/{channel}/vqd/thresholds", json={"no_such_knob": 1}, headers=as_op)
        assert bad.status_code == 422 and "no_such_knob" in bad.json()["error"]["message"]
        good = await client.put(f"{base}/channels/{channel}/vqd/thresholds", json={"disabled": ["noise"]}, headers=as_op)
        assert good.status_code == 200 and good.json()["thresholds"] == {"disabled": ["noise"]}
        forged = await client.get(f"{base}/local/vqd/patrol", headers={"X-Camgrid-Control": "guess"})
        assert forged.status_code == 403
    # the command line on this machine, through <data-dir>/run/control.json
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "camgrid", "vqd", "patrol", "--once", "--json", "--data-dir",
        str(platform.settings.data_dir), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    summary = json.loads(out)
    assert summary["total"] == 4 and summary["diagnosed"] == 4 and summary["trigger"] == "cli"
    progress = platform.patrol.progress()
    assert progress["running"] is False and progress["last_round"]["round_id"] == summary["round_id"]
