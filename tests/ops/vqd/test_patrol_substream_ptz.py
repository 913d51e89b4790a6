"""The patrol in the real platform, on the sub-stream and with PTZ checks: simulated cameras on
loopback send a 640x480 main stream and a 320x240 sub-stream (when the INVITE's SDP asks for it
in a dialect they know); the patrol prefers the sub-stream, falls back to the main stream when a
device refuses it and remembers that, joins a main stream someone watches, and never lets a
sub-stream's resolution reach the HD rate. PTZ: commands really go to the simulator; the
simulator's picture does not follow PTZ (an unresponsive camera), and `PanningCameraFake` below
is a test double that makes the pictures after a move pan, for the responsive case."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select, update

from camgrid.app import Platform
from camgrid.gb28181.ptz import PtzAction, decode
from camgrid.governance.audit import audit
from camgrid.ops.vqd import patrol_ptz
from camgrid.ops.vqd import patrol_store as store
from camgrid.ops.vqd.capture import capture as real_capture
from camgrid.ops.vqd.frames import Picture
from camgrid.sim.devices import generate
from camgrid.sim.media import SimMediaOptions
from camgrid.sim.video import synthetic_footage
from camgrid.store.tables import audit_log, channels, vqd_devices, vqd_results
from tests.signaling.conftest import make_settings, provision, sim_for, wait_for


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path / 'camgrid.db'}"


@pytest.fixture(scope="module")
def footage():
    return synthetic_footage("h264", 640, 480, 25, 3, gop_s=1.0), synthetic_footage("h264", 320, 240, 25, 3, gop_s=1.0)


@pytest.fixture
async def running(tmp_path, db_url, footage):
    specs = generate(1, 2, seed="vqd-substream", mix=False)
    provision(db_url, specs)
    settings = make_settings(tmp_path, db_url, media={"linger_s": 0.2})
    settings.vqd.first_round_after_s = 3600
    settings.vqd.sample_s = 2.0
    settings.vqd.first_frame_s = 3.0
    platform = Platform(settings, announce=lambda text: None)
    await platform.start()
    sim = sim_for(platform, specs, media=SimMediaOptions(bind_host="127.0.0.1"))
    sim.media.use_footage(footage[0])
    sim.media.use_sub_footage(footage[1])
    await sim.start()
    assert await sim.wait_registered(10)
    await platform.signaling.catalog_refresh(specs[0].id)
    try:
        yield platform, sim, specs
    finally:
        await platform.stop()
        await sim.stop()


def rows(engine, table, *where):
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(table).where(*where)).mappings()]


async def channel(platform, channel_id):
    return store.channel(platform.engine, channel_id)


async def test_the_patrol_diagnoses_the_sub_stream_and_the_hd_rate_keeps_the_main_resolution(running):
    platform, sim, specs = running
    ch_id = specs[0].channels[0].id
    # someone watched the main stream: the HD rate knows 640x480
    session = await platform.media.live(specs[0].id, ch_id)
    assert await platform.media.wait_first_frame(session, 5)
    await platform.media.end(session, "test")
    result = await platform.patrol.diagnose_channel(await channel(platform, ch_id))
    assert result["diagnosed"] and result["stream"] == "sub" and result["resolution"] == [320, 240]
    assert (ch_id, 1) in sim.media.streams_served
    stored = rows(platform.engine, vqd_results, vqd_results.c.id == result["id"])[0]
    assert stored["stream"] == "sub" and (stored["width"], stored["height"]) == (320, 240)
    _, today = await platform.rates.today_channels()
    mine = next(r for r in today if r["channel_id"] == ch_id)
    assert (mine["width"], mine["height"]) == (640, 480)  # not overwritten by the sub-stream's 320x240


async def test_a_watched_main_stream_is_joined_not_a_sub_stream_opened(running):
    platform, sim, specs = running
    ch_id = specs[0].channels[0].id
    session = await platform.media.live(specs[0].id, ch_id)
    assert await platform.media.wait_first_frame(session, 5)
    invites = sim.media.invites
    result = await platform.patrol.diagnose_channel(await channel(platform, ch_id))
    assert result["stream"] == "main" and result["resolution"] == [640, 480]
    assert sim.media.invites == invites


async def test_a_device_that_refuses_the_sub_stream_gets_the_main_one_and_is_remembered(running):
    platform, sim, specs = running
    ch_a, ch_b = (c.id for c in specs[0].channels)
    sim.media.opts.refuse_substream = True  # 488 to an INVITE that asks for a sub-stream
    first = await platform.patrol.diagnose_channel(await channel(platform, ch_a))
    assert first["diagnosed"] and first["stream"] == "main" and first["resolution"] == [640, 480]
    assert "488" in first["substream_refused"]
    remembered = rows(platform.engine, vqd_devices)
    assert remembered[0]["device_id"] == specs[0].id and remembered[0]["substream_dialect"] == "all"
    invites = sim.media.invites
    second = await platform.patrol.diagnose_channel(await channel(platform, ch_b))  # same device: not asked again
    assert second["stream"] == "main" and second["substream_refused"] is None and sim.media.invites == invites + 1
    # after retry_after_s it is asked again; now it serves one, and the memory goes
    sim.media.opts.refuse_substream = False
    platform.settings.vqd.substream.retry_after_s = 0
    await wait_for(lambda: platform.media.running_live(specs[0].id, ch_b) is None, timeout=5)
    third = await platform.patrol.diagnose_channel(await channel(platform, ch_b))
    assert third["stream"] == "sub" and rows(platform.engine, vqd_devices)[0]["substream_refused_at"] is None


async def test_dialect_none_keeps_the_main_stream(running):
    platform, sim, specs = running
    platform.settings.vqd.substream.devices = {specs[0].id: "none"}
    result = await platform.patrol.diagnose_channel(await channel(platform, specs[0].channels[0].id))
    assert result["stream"] == "main" and result["resolution"] == [640, 480]
    assert all(stream == 0 for _, stream in sim.media.streams_served)


# -- PTZ ----------------------------------------------------------------------------------------------
class PanningCameraFake:
    """A TEST DOUBLE for a camera that obeys PTZ: the simulator's video does not follow PTZ, so
    this wraps the real capture and, once the simulator has received a pan for the channel,
    shifts every picture it returns by a fifth of the width, as a pan would."""

    def __init__(self, sim) -> None:
        self.sim = sim

    async def __call__(self, media, device_id, channel_id, **kw):
        got = await real_capture(media, device_id, channel_id, **kw)
        panned = any(ch == channel_id and decode(code).action == PtzAction.MOVE and decode(code).pan
                     for ch, code in self.sim.stats.ptz)
        if panned and got.sample is not None:
            def roll(p: Picture) -> Picture:
                dx = p.y.shape[1] // 5
                return Picture(p.t, np.roll(p.y, dx, axis=1), None if p.u is None else np.roll(p.u, dx // 2, axis=1),
                               None if p.v is None else np.roll(p.v, dx // 2, axis=1), p.detail)
            got.sample.spaced = [roll(p) for p in got.sample.spaced]
            got.sample.burst = [roll(p) for p in got.sample.burst]
        return got


def ptz_channel(platform, specs):
    ch_id = specs[0].channels[0].id
    with platform.engine.begin() as conn:  # the catalog says: a dome
        conn.execute(update(channels).where(channels.c.id == ch_id).values(ptz_type=1))
    platform.settings.vqd.ptz_check.channels = [ch_id]
    platform.settings.vqd.ptz_check.move_s = 0.3
    return ch_id


def moves(sim, ch_id):
    return [(decode(code).action, decode(code).pan) for ch, code in sim.stats.ptz if ch == ch_id]


async def test_a_camera_whose_picture_does_not_follow_is_ptz_unresponsive_and_is_returned(running):
    platform, sim, specs = running
    ch_id = ptz_channel(platform, specs)
    result = await platform.patrol.diagnose_channel(await channel(platform, ch_id))
    assert result["ptz_check"]["checked"] is True
    assert [f["type"] for f in result["faults"]] == ["ptz_unresponsive"]
    await wait_for(lambda: len(moves(sim, ch_id)) == 4, timeout=5)
    assert moves(sim, ch_id) == [(PtzAction.MOVE, 1), (PtzAction.MOVE, 0), (PtzAction.MOVE, -1), (PtzAction.MOVE, 0)]
    audited = rows(platform.engine, audit_log, audit_log.c.action == "vqd.ptz_check")
    assert audited[0]["target"] == ch_id and audited[0]["actor"] == "vqd-patrol" and len(audited[0]["detail"]["ptz"]) == 4


async def test_a_camera_that_follows_is_not_a_finding_and_a_preset_returns_it(running, monkeypatch):
    platform, sim, specs = running
    ch_id = ptz_channel(platform, specs)
    platform.settings.vqd.ptz_check.presets = {ch_id: 7}
    monkeypatch.setattr(patrol_ptz, "capture", PanningCameraFake(sim))
    result = await platform.patrol.diagnose_channel(await channel(platform, ch_id))
    assert result["ptz_check"] == {"checked": True, "commands": result["ptz_check"]["commands"], "moved": True}
    assert not any(f["type"] == "ptz_unresponsive" for f in result["faults"])
    await wait_for(lambda: len(sim.stats.ptz) == 3, timeout=5)
    assert decode(sim.stats.ptz[-1][1]).action == PtzAction.PRESET_CALL and decode(sim.stats.ptz[-1][1]).preset == 7


async def test_a_camera_an_operator_moved_lately_is_left_alone_and_fixed_cameras_never_move(running):
    platform, sim, specs = running
    ch_id = ptz_channel(platform, specs)
    audit(platform.engine, "op1", "command.ptz", ch_id, {"action": "move"})
    result = await platform.patrol.diagnose_channel(await channel(platform, ch_id))
    assert result["ptz_check"]["checked"] is False and "operator" in result["ptz_check"]["why"]
    other = specs[0].channels[1].id
    with platform.engine.begin() as conn:
        conn.execute(update(channels).where(channels.c.id == other).values(ptz_type=3))  # fixed
    platform.settings.vqd.ptz_check.channels = ["*"]
    result = await platform.patrol.diagnose_channel(await channel(platform, other))
    assert result["ptz_check"] is None
    assert sim.stats.ptz == []
