"""A media node through its own API: the platform's secret, stream lifecycle, real RTP in."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from camgrid.config import MediaSettings
from camgrid.media.ingest import PortRange
from camgrid.media.node import MediaNode
from camgrid.media.ps import VIDEO_ID, mux_ps
from camgrid.sim.video import synthetic_footage
from camgrid.sim.rtp_sender import packetize

SECRET = "node-secret-for-tests-0123456789"


@pytest.fixture(scope="module")
def footage():
    return synthetic_footage("h264", 160, 120, 25, 1, gop_s=1.0)


@pytest.fixture
async def node():
    n = MediaNode(MediaSettings(http_port=0, rtp_ports=(0, 0), host="127.0.0.1"), SECRET, node_id="t")
    await n.start()
    try:
        yield n
    finally:
        await n.stop()


def client(node, secret=SECRET):
    return httpx.AsyncClient(base_url=node.url, headers={"Authorization": f"Bearer {secret}"})


async def test_control_routes_need_the_node_secret(node):
    async with client(node, "wrong-secret-0123456789") as c:
        assert (await c.get("/node/v1/load")).status_code == 401
        assert (await c.post("/node/v1/streams", json={"stream_id": "a"})).status_code == 401
    async with httpx.AsyncClient(base_url=node.url) as c:
        assert (await c.get("/node/v1/streams")).status_code == 401


async def test_a_stream_receives_rtp_and_reports_what_it_saw(node, footage):
    async with client(node) as c:
        opened = (await c.post("/node/v1/streams", json={"stream_id": "s1", "ssrc": 1234})).json()
        assert opened["port"] > 0
        assert (await c.post("/node/v1/streams", json={"stream_id": "s1"})).status_code == 409
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        seq = 0
        for frame in footage.frames[:10]:
            ps = mux_ps(VIDEO_ID, frame.data, frame.pts, streams={VIDEO_ID: "h264"}, keyframe=frame.keyframe)
            for pkt in packetize(ps, ssrc=1234, seq=seq, timestamp=frame.pts):
                sock.sendto(pkt, ("127.0.0.1", opened["port"]))
                seq += 1
        sock.sendto(b"not rtp", ("127.0.0.1", opened["port"]))
        sock.close()
        for _ in range(100):
            stats = (await c.get("/node/v1/streams/s1")).json()
            if stats["video_frames"] >= 9:
                break
            await asyncio.sleep(0.05)
        assert stats["codec"] == "h264" and (stats["width"], stats["height"]) == (160, 120)
        assert stats["packets"] == seq + 1 and stats["bad_packets"] == 1 and stats["ssrc_mismatch"] == 0
        load = (await c.get("/node/v1/load")).json()
        assert load["streams"] == 1 and load["public_url"] == node.url
        final = (await c.delete("/node/v1/streams/s1")).json()
        assert final["video_frames"] >= 9
        assert (await c.delete("/node/v1/streams/s1")).status_code == 404
        assert (await c.get("/node/v1/streams")).json()["streams"] == []


async def test_a_stream_without_packets_is_diagnosed(node):
    async with client(node) as c:
        opened = (await c.post("/node/v1/streams", json={"stream_id": "quiet", "transport": "tcp-passive"})).json()
        [row] = (await c.get("/node/v1/streams")).json()["streams"]
        assert f"never connected to 127.0.0.1:{opened['port']}" in row["diagnosis"]


async def test_tcp_active_needs_the_devices_address(node):
    async with client(node) as c:
        opened = (await c.post("/node/v1/streams", json={"stream_id": "act", "transport": "tcp-active"})).json()
        assert opened["port"] == 0
        resp = await c.post("/node/v1/streams/act/answer", json={"ssrc": 5})
        assert resp.status_code == 400 and "TCP active" in resp.json()["detail"]
        # A closed port on the device: the stream says so.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed_port = s.getsockname()[1]
        await c.post("/node/v1/streams/act/answer", json={"ssrc": 5, "host": "127.0.0.1", "port": closed_port})
        for _ in range(50):
            row = (await c.get("/node/v1/streams/act")).json()
            if row["error"]:
                break
            await asyncio.sleep(0.05)
        assert f"could not connect to the device's media address 127.0.0.1:{closed_port}" in row["error"]


def test_port_range_hands_out_round_robin_and_skips_ports_in_use():
    ports = PortRange(40000, 40002)
    assert list(ports.candidates()) == [40000, 40001, 40002]
    ports.taken(40000)
    assert list(ports.candidates()) == [40001, 40002]
    ports.taken(40002)
    assert list(ports.candidates()) == [40001]
    ports.release(40000)
    assert list(ports.candidates()) == [40000, 40001]
    with pytest.raises(ValueError):
        PortRange(5, 2)
