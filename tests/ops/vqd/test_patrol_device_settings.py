"""The patrol follows an operator's settings for a device (set through the API, kept in
vqd_devices) over the configuration: the sub-stream selector, PTZ check on / off, and "try the
sub-stream again"; and it keeps what it learned (the selector that worked, the last PTZ check).
Real platform, simulated cameras on loopback (a 640x480 main stream, a 320x240 sub-stream for the
selectors a camera understands), as in test_patrol_substream_ptz.py."""

from __future__ import annotations

import httpx
from camgrid.governance.users import create_user, issue_token
from camgrid.store.tables import channels, vqd_devices
from tests.ops.vqd.test_patrol_substream_ptz import (  # noqa: F401  (fixtures)
    channel,
    db_url,
    footage,
    moves,
    rows,
    running,
)
from tests.signaling.conftest import wait_for


def operator(platform) -> tuple[str, dict[str, str]]:
    token = issue_token(platform.engine, create_user(platform.engine, "op1", "a long enough password 1", "operator")["id"],
                        3600)
    return f"http://127.0.0.1:{platform.http_port}/api/v1", {"Authorization": f"Bearer {token}"}


async def idle(platform, device_id, channel_id):
    """The streams the last diagnosis opened (main or sub) have ended: the next one opens its own."""
    await wait_for(lambda: all(platform.media.running_live(device_id, channel_id, n) is None for n in (0, 1)), timeout=5)


def learned(platform, device_id):
    return rows(platform.engine, vqd_devices, vqd_devices.c.device_id == device_id)[0]


async def test_the_selector_an_operator_sets_is_the_one_asked_for(running):
    platform, sim, specs = running
    device, ch_id = specs[0].id, specs[0].channels[0].id
    sim.media.opts.substream_dialects = ("stream",)  # a Dahua-style camera
    platform.settings.vqd.substream.dialect = "streamnumber"
    ignored = await platform.patrol.diagnose_channel(await channel(platform, ch_id))
    assert ignored["stream"] == "sub" and ignored["resolution"] == [640, 480]  # it did not understand: main stream
    base, as_op = operator(platform)
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.put(f"{base}/devices/{device}/vqd/settings", json={"dialect": "stream"}, headers=as_op)
        assert r.status_code == 200, r.text
        assert (r.json()["dialect"], r.json()["dialect_source"]) == ("stream", "override")
        await idle(platform, device, ch_id)
        served = await platform.patrol.diagnose_channel(await channel(platform, ch_id))
        assert served["stream"] == "sub" and served["resolution"] == [320, 240]
        assert learned(platform, device)["substream_ok_dialect"] == "stream"
        state = (await client.get(f"{base}/devices/{device}/vqd", headers=as_op)).json()
        assert state["substream"]["ok_dialect"] == "stream" and state["substream"]["ok_at"]
        # "none": the main stream only
        r = await client.put(f"{base}/devices/{device}/vqd/settings", json={"dialect": "none"}, headers=as_op)
        assert r.status_code == 200
        await idle(platform, device, ch_id)
        served_before = list(sim.media.streams_served)
        main = await platform.patrol.diagnose_channel(await channel(platform, ch_id))
        assert main["stream"] == "main" and main["resolution"] == [640, 480]
        assert sim.media.streams_served[len(served_before):] == [(ch_id, 0)]


async def test_a_refusal_is_tried_again_on_request_and_with_a_new_selector(running):
    platform, sim, specs = running
    device, ch_a = specs[0].id, specs[0].channels[0].id
    sim.media.opts.refuse_substream = True
    first = await platform.patrol.diagnose_channel(await channel(platform, ch_a))
    assert first["stream"] == "main" and "488" in first["substream_refused"]
    assert learned(platform, device)["substream_dialect"] == "all"
    base, as_op = operator(platform)
    async with httpx.AsyncClient(timeout=30) as client:
        state = (await client.get(f"{base}/devices/{device}/vqd", headers=as_op)).json()
        assert state["substream"]["main_only"] is True and state["substream"]["retry_due_at"]
        # the operator asks for another selector: the refusal of "all" does not hold it back
        await client.put(f"{base}/devices/{device}/vqd/settings", json={"dialect": "streamnumber"}, headers=as_op)
        await idle(platform, device, ch_a)
        second = await platform.patrol.diagnose_channel(await channel(platform, ch_a))
        assert "488" in second["substream_refused"] and learned(platform, device)["substream_dialect"] == "streamnumber"
        # the device learned to serve one (a firmware update); "try the sub-stream again"
        sim.media.opts.refuse_substream = False
        await idle(platform, device, ch_a)
        held = await platform.patrol.diagnose_channel(await channel(platform, ch_a))
        assert held["stream"] == "main" and held["substream_refused"] is None  # still remembered: not asked
        r = await client.post(f"{base}/devices/{device}/vqd/substream/retry", headers=as_op)
        assert r.status_code == 200 and r.json()["substream"]["refused_at"] is None
        await idle(platform, device, ch_a)
        again = await platform.patrol.diagnose_channel(await channel(platform, ch_a))
        assert again["stream"] == "sub" and again["resolution"] == [320, 240]
        assert learned(platform, device)["substream_ok_dialect"] == "streamnumber"


async def test_ptz_check_on_and_off_per_device(running):
    platform, sim, specs = running
    device, ch_id = specs[0].id, specs[0].channels[0].id
    base, as_op = operator(platform)
    specs[0].channels[0].ptz_type = 1  # the camera's catalog says: a dome
    await platform.signaling.catalog_refresh(device)
    await wait_for(lambda: rows(platform.engine, channels, channels.c.id == ch_id)[0]["ptz_type"] == 1, timeout=5)
    platform.settings.vqd.ptz_check.move_s = 0.3
    assert platform.settings.vqd.ptz_check.channels == []  # not opted in by the configuration
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.put(f"{base}/devices/{device}/vqd/settings", json={"ptz_check": True}, headers=as_op)
        assert r.status_code == 200 and r.json()["ptz"]["checked"] == [ch_id], r.text
        result = await platform.patrol.diagnose_channel(await channel(platform, ch_id))
        assert result["ptz_check"]["checked"] is True  # the simulator's picture does not follow: unresponsive
        assert [f["type"] for f in result["faults"]] == ["ptz_unresponsive"]
        last = learned(platform, device)
        assert last["ptz_result"] == {"channel_id": ch_id, "unresponsive": True, "checked": True, "moved": False}
        state = (await client.get(f"{base}/devices/{device}/vqd", headers=as_op)).json()
        assert state["ptz"]["last"]["unresponsive"] is True and state["ptz"]["last_at"]
        await wait_for(lambda: len(moves(sim, ch_id)) == 4, timeout=5)

        platform.settings.vqd.ptz_check.channels = ["*"]  # the configuration opts every channel in...
        r = await client.put(f"{base}/devices/{device}/vqd/settings", json={"ptz_check": False}, headers=as_op)
        assert r.status_code == 200 and r.json()["ptz"]["checked"] == [] and r.json()["ptz"]["configured"] == [ch_id]
        await idle(platform, device, ch_id)
        off = await platform.patrol.diagnose_channel(await channel(platform, ch_id))  # ...the operator turned it off
        assert off["diagnosed"] and off["ptz_check"] is None and len(moves(sim, ch_id)) == 4
