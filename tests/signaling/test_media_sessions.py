"""Live streams end to end on loopback: platform (signaling + an inline media node) and a
simulated camera sending real H.264 as PS over RTP; the viewer's fMP4 is decoded with PyAV."""

from __future__ import annotations

import asyncio
import io
import json
import time

import av
import pytest
import websockets

from camgrid.app import Platform
from camgrid.signaling.errors import CommandError
from camgrid.sim.media import SimMediaOptions
from camgrid.sim.video import synthetic_footage
from tests.signaling.conftest import make_settings, provision, sim_for, wait_for


@pytest.fixture
def db_url(tmp_path):
    """Media sessions do not touch the database beyond registration: SQLite only (the store is tested on both elsewhere)."""
    return f"sqlite:///{tmp_path / 'camgrid.db'}"


@pytest.fixture(scope="module")
def footage():
    return synthetic_footage("h264", 320, 240, 25, 3, gop_s=1.0)


async def _platform(tmp_path, db_url, specs, **media):
    provision(db_url, specs)
    settings = make_settings(tmp_path, db_url, media=media, catalog={"query_on_register": False})
    platform = Platform(settings, announce=lambda text: None)
    await platform.start()
    return platform


async def _camera(platform, specs, footage, mode="normal"):
    sim = sim_for(platform, specs, media=SimMediaOptions(mode=mode, bind_host="127.0.0.1"))
    sim.media.use_footage(footage)
    await sim.start()
    assert await sim.wait_registered(10)
    return sim


async def watch(ws_url, seconds):
    """Collect what a viewer receives for `seconds`; returns (init messages, fMP4 bytes, time to first fragment)."""
    inits, data, first = [], [], None
    started = time.monotonic()
    async with websockets.connect(ws_url, max_size=None) as ws:
        end = started + seconds
        while time.monotonic() < end:
            try:
                msg = await asyncio.wait_for(ws.recv(), end - time.monotonic())
            except asyncio.TimeoutError:
                break
            if isinstance(msg, str):
                inits.append(json.loads(msg))
            else:
                if first is None and inits and len(data) >= 1:
                    first = time.monotonic() - started
                data.append(msg)
    return inits, b"".join(data), first


def collect(into):
    async def handler(event):
        into.append(event)
    return handler


def decode(fmp4: bytes):
    frames = []
    with av.open(io.BytesIO(fmp4)) as container:
        for frame in container.decode(video=0):
            frames.append((frame.width, frame.height, frame.pts))
    return frames


@pytest.mark.parametrize("transport", ["udp", "tcp-passive", "tcp-active"])
async def test_live_video_reaches_a_viewer_and_decodes(tmp_path, db_url, specs, footage, transport):
    platform = await _platform(tmp_path, db_url, specs[:1], transport=transport)
    sim = await _camera(platform, specs[:1], footage)
    try:
        device, channel = specs[0].id, specs[0].channels[0].id
        t0 = time.monotonic()
        session = await platform.media.live(device, channel)
        assert await platform.media.wait_first_frame(session, 10), session.end_reason
        ws_url = session.node.live_url(session.session_id, "tester", 30)
        inits, data, _ = await watch(ws_url, 1.5)
        assert inits and inits[0]["codec"] == "h264" and (inits[0]["width"], inits[0]["height"]) == (320, 240)
        assert inits[0]["codec_string"].startswith("avc1.")
        frames = decode(data)
        assert len(frames) >= 20, f"{len(frames)} frames in 1.5 s at 25 fps"
        assert {(w, h) for w, h, _ in frames} == {(320, 240)}
        assert time.monotonic() - t0 < 10
        # A second viewer joins the same stream; the device was INVITEd once.
        again = await platform.media.live(device, channel)
        assert again is session and sim.media.invites == 1
    finally:
        await platform.stop()  # first: it hangs up
        byes = sim.media.byes
        await sim.stop()
    assert byes == 1


async def test_a_silent_device_is_hung_up_with_the_reason(tmp_path, db_url, specs, footage):
    platform = await _platform(tmp_path, db_url, specs[:1], no_media_timeout_s=1.0)
    sim = await _camera(platform, specs[:1], footage, mode="silent")
    ended = []
    platform.bus.subscribe("media.stream_ended", collect(ended))
    try:
        session = await platform.media.live(specs[0].id, specs[0].channels[0].id)
        assert not await platform.media.wait_first_frame(session, 5)
        assert session.state == "ended"
        assert "no RTP packet reached 127.0.0.1:" in session.end_reason
        await wait_for(lambda: ended and sim.media.byes == 1)
        assert "no video within 1 s" in ended[0].data["reason"]
    finally:
        await sim.stop()
        await platform.stop()


async def test_a_refusing_device_gives_a_502_with_its_answer(tmp_path, db_url, specs, footage):
    platform = await _platform(tmp_path, db_url, specs[:1])
    sim = await _camera(platform, specs[:1], footage, mode="refuse")
    try:
        with pytest.raises(CommandError) as err:
            await platform.media.live(specs[0].id, specs[0].channels[0].id)
        assert err.value.status == 502 and "488" in err.value.message
        assert platform.media.sessions == {}
    finally:
        await sim.stop()
        await platform.stop()


@pytest.mark.parametrize("strict", [False, True])
async def test_a_device_answering_with_another_ssrc(tmp_path, db_url, specs, footage, strict):
    platform = await _platform(tmp_path, db_url, specs[:1], ssrc_strict=strict, no_media_timeout_s=1.5)
    sim = await _camera(platform, specs[:1], footage, mode="other-ssrc")
    try:
        session = await platform.media.live(specs[0].id, specs[0].channels[0].id)
        playing = await platform.media.wait_first_frame(session, 6)
        if strict:
            assert not playing and "SSRC mismatch" in session.end_reason
        else:
            assert playing, session.end_reason  # relaxed: the SSRC of the device's answer is followed
    finally:
        await sim.stop()
        await platform.stop()


async def test_a_stream_without_viewers_ends_after_the_linger_time(tmp_path, db_url, specs, footage):
    platform = await _platform(tmp_path, db_url, specs[:1], linger_s=1.0)
    sim = await _camera(platform, specs[:1], footage)
    try:
        session = await platform.media.live(specs[0].id, specs[0].channels[0].id)
        assert await platform.media.wait_first_frame(session, 10)
        await watch(session.node.live_url(session.session_id, "tester", 30), 0.5)
        await wait_for(lambda: session.state == "ended", timeout=8)
        assert session.end_reason == "no viewers for 1 s"
        await wait_for(lambda: sim.media.byes == 1 and not sim.media.calls)
    finally:
        await sim.stop()
        await platform.stop()


async def test_a_bye_from_the_device_ends_the_stream(tmp_path, db_url, specs, footage):
    platform = await _platform(tmp_path, db_url, specs[:1])
    sim = await _camera(platform, specs[:1], footage)
    try:
        session = await platform.media.live(specs[0].id, specs[0].channels[0].id)
        assert await platform.media.wait_first_frame(session, 10)
        await sim.media.hang_up_all()
        await wait_for(lambda: session.state == "ended")
        assert session.end_reason == "the device ended the stream (BYE)"
        await wait_for(lambda: platform.media_node.node.streams == {})
    finally:
        await sim.stop()
        await platform.stop()


async def test_a_viewer_token_is_checked(tmp_path, db_url, specs, footage):
    platform = await _platform(tmp_path, db_url, specs[:1])
    sim = await _camera(platform, specs[:1], footage)
    try:
        session = await platform.media.live(specs[0].id, specs[0].channels[0].id)
        url = session.node.live_url(session.session_id, "tester", 30)
        forged = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
        other = url.replace(session.session_id, "0" * 16)
        for bad in (forged, other):
            with pytest.raises(websockets.exceptions.ConnectionClosed) as err:
                async with websockets.connect(bad) as ws:
                    await ws.recv()
            assert err.value.rcvd.code in (4401, 4404)
    finally:
        await sim.stop()
        await platform.stop()


async def test_device_playback_is_controlled_and_ends_at_media_status_121(tmp_path, db_url, specs, footage):
    from datetime import datetime, timedelta, timezone

    platform = await _platform(tmp_path, db_url, specs[:1])
    sim = await _camera(platform, specs[:1], footage)
    ended = []
    platform.bus.subscribe("media.stream_ended", collect(ended))
    try:
        start = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)
        session = await platform.media.playback(specs[0].id, specs[0].channels[0].id, start, start + timedelta(seconds=3))
        assert session.kind == "Playback" and session.ssrc.startswith("1")  # a history SSRC
        assert await platform.media.wait_first_frame(session, 10), session.end_reason
        await platform.media.control(session, "pause")
        await platform.media.control(session, "speed", 2.0)  # PLAY with Scale: resumes at twice the speed
        with pytest.raises(CommandError):
            await platform.media.control(session, "speed", 3.0)
        assert [(m, s) for _, m, s, _ in sim.media.controls] == [("PAUSE", None), ("PLAY", 2.0)]
        await wait_for(lambda: session.state == "ended", timeout=10)  # 3 s of range, sent at 2x after the pause
        assert session.end_reason == "the device reached the end of the recording (MediaStatus 121)"
        await wait_for(lambda: ended and sim.media.byes == 1)
    finally:
        await sim.stop()
        await platform.stop()


async def test_the_playback_sdp_names_the_range(tmp_path, db_url, specs, footage):
    from datetime import datetime, timedelta, timezone

    platform = await _platform(tmp_path, db_url, specs[:1])
    sim = await _camera(platform, specs[:1], footage)
    offers = []
    original = sim.media._answer_invite

    async def spy(req, *args):
        offers.append(req.body.decode())
        await original(req, *args)
    sim.media._answer_invite = spy
    try:
        start = datetime(2026, 11, 30, 8, 0, tzinfo=timezone.utc)
        session = await platform.media.playback(specs[0].id, specs[0].channels[0].id, start, start + timedelta(minutes=5),
                                                download_speed=4)
        assert session.kind == "Download"
        sdp = offers[0]
        assert "s=Download" in sdp and f"u={specs[0].channels[0].id}:0" in sdp
        assert f"t={int(start.timestamp())} {int(start.timestamp()) + 300}" in sdp and "a=downloadspeed:4" in sdp
    finally:
        await sim.stop()
        await platform.stop()


async def test_hls_fallback_plays_with_ffmpegs_own_hls_reader(tmp_path, db_url, specs, footage):
    platform = await _platform(tmp_path, db_url, specs[:1])
    sim = await _camera(platform, specs[:1], footage)
    try:
        session = await platform.media.live(specs[0].id, specs[0].channels[0].id)
        assert await platform.media.wait_first_frame(session, 10)
        url = session.node.hls_url(session.session_id, "tester", 60)

        def read_hls():
            with av.open(url, options={"live_start_index": "0"}, timeout=10) as container:
                frames = []
                for frame in container.decode(video=0):
                    frames.append((frame.width, frame.height))
                    if len(frames) >= 30:
                        break
                return frames
        frames = await asyncio.to_thread(read_hls)
        assert len(frames) == 30 and set(frames) == {(320, 240)}
        forged = url.replace("token=", "token=x")
        with pytest.raises(av.error.HTTPUnauthorizedError):
            await asyncio.to_thread(av.open, forged)
    finally:
        await sim.stop()
        await platform.stop()


@pytest.mark.parametrize("mode", ["normal", "other-ssrc"])
async def test_single_port_mode_routes_streams_by_ssrc(tmp_path, db_url, specs, footage, mode):
    platform = await _platform(tmp_path, db_url, specs[:2], single_port=0)
    sim = await _camera(platform, specs[:2], footage, mode=mode)
    try:
        node = platform.media_node.node
        sessions = [await platform.media.live(spec.id, spec.channels[0].id) for spec in specs[:2]]
        for session in sessions:
            # Relaxed SSRC check: a device answering with its own SSRC is followed on the shared port too.
            assert await platform.media.wait_first_frame(session, 10), session.end_reason
        ports = {session.media_address.rsplit(":", 1)[1] for session in sessions}
        assert ports == {str(node.shared_port.port)}  # one port for both
        for session in sessions:
            _, data, _ = await watch(session.node.live_url(session.session_id, "tester", 30), 1.0)
            assert decode(data)
        assert node.shared_port.unknown == 0
    finally:
        await sim.stop()
        await platform.stop()


async def test_a_device_that_stops_sending_is_hung_up_with_the_reason(tmp_path, db_url, specs, footage):
    platform = await _platform(tmp_path, db_url, specs[:1], no_media_timeout_s=1.5)
    sim = await _camera(platform, specs[:1], footage)
    ended = []
    platform.bus.subscribe("media.stream_ended", collect(ended))
    try:
        session = await platform.media.live(specs[0].id, specs[0].channels[0].id)
        assert await platform.media.wait_first_frame(session, 10)
        for call in sim.media.calls.values():
            call.sender.pause()  # the camera goes quiet without hanging up
        await wait_for(lambda: session.state == "ended", timeout=10)
        assert session.end_reason.startswith("no media: the device stopped sending for")
        await wait_for(lambda: ended and sim.media.byes == 1)
    finally:
        await sim.stop()
        await platform.stop()


async def test_h265_passes_through_to_the_viewer(tmp_path, db_url, specs):
    h265 = synthetic_footage("h265", 320, 240, 25, 2, gop_s=1.0)
    platform = await _platform(tmp_path, db_url, specs[:1])
    sim = await _camera(platform, specs[:1], h265)
    try:
        session = await platform.media.live(specs[0].id, specs[0].channels[0].id)
        assert await platform.media.wait_first_frame(session, 10), session.end_reason
        inits, data, _ = await watch(session.node.live_url(session.session_id, "tester", 30), 1.5)
        assert inits[0]["codec"] == "h265" and inits[0]["codec_string"].startswith("hvc1.")
        frames = decode(data)
        assert len(frames) >= 20 and {(w, h) for w, h, _ in frames} == {(320, 240)}
    finally:
        await sim.stop()
        await platform.stop()


async def test_streams_go_to_the_least_loaded_node_and_a_burst_is_spread(tmp_path, db_url, monkeypatch):
    from types import SimpleNamespace

    from camgrid.bus import MemoryBus
    from camgrid.media.embedded import EmbeddedNode
    from camgrid.signaling import media_sessions
    from camgrid.signaling.media_sessions import MediaSessions

    settings = make_settings(tmp_path, db_url)
    nodes = [EmbeddedNode(settings, "inline") for _ in range(2)]
    clients = [await n.start() for n in nodes]
    try:
        # placing streams needs no SIP: a bare namespace stands in for the stack it never uses here
        sessions = MediaSessions(settings, SimpleNamespace(), None, MemoryBus(), clients)
        calls = {id(c): 0 for c in clients}
        for c in clients:  # count the load requests each node gets
            original = c.load

            async def counted(c=c, original=original):
                calls[id(c)] += 1
                return await original()
            c.load = counted
        picked = [await sessions._pick_node() for _ in range(6)]
        assert [clients.index(p) for p in picked].count(0) == 3  # spread evenly while no report says otherwise
        assert all(n == 1 for n in calls.values())  # one load request per node for the whole burst
        monkeypatch.setattr(media_sessions, "LOAD_FRESH_S", 0.0)
        await nodes[1].stop()
        assert {id(await sessions._pick_node()) for _ in range(3)} == {id(clients[0])}  # the dead node is skipped
        await nodes[0].stop()
        with pytest.raises(CommandError) as refused:
            await sessions._pick_node()
        assert refused.value.status == 503 and "no media node answers" in str(refused.value)
    finally:
        for n in nodes:
            await n.stop()


async def test_live_mp4_streams_fragmented_mp4_for_as_long_as_it_is_read(tmp_path, db_url, specs, footage):
    import httpx

    from camgrid.governance.users import create_user, issue_token
    from camgrid.store.tables import audit_log

    platform = await _platform(tmp_path, db_url, specs[:1])
    sim = await _camera(platform, specs[:1], footage)
    try:
        channel = specs[0].channels[0].id
        await platform.signaling.catalog_refresh(specs[0].id)  # the API finds channels in the registry
        user = create_user(platform.engine, "watcher", "a long enough password 1", "viewer")
        headers = {"Authorization": f"Bearer {issue_token(platform.engine, user['id'], 3600)}"}
        url = f"http://127.0.0.1:{platform.http_port}/api/v1/channels/{channel}/live.mp4"
        data = b""
        async with httpx.AsyncClient(timeout=20) as client:
            async with client.stream("GET", url, headers=headers) as response:
                assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
                started = time.monotonic()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if time.monotonic() - started > 1.5:
                        break
            anonymous = await client.get(url)
            assert anonymous.status_code == 401
            missing = await client.get(url.replace(channel, "34020000001310009999"), headers=headers)
            assert missing.status_code == 404
        assert data[4:8] == b"ftyp"
        frames = decode(data)
        assert len(frames) >= 20 and {(w, h) for w, h, _ in frames} == {(320, 240)}
        with platform.engine.connect() as conn:
            views = [r.detail for r in conn.execute(audit_log.select().where(audit_log.c.action == "video.live"))]
        assert views and views[0]["as"] == "mp4" and views[0]["ok"] is True
        assert sim.media.invites == 1
    finally:
        await platform.stop()
        await sim.stop()
