"""Latency from a camera sending a frame to a viewer holding it, on loopback.

    .venv/bin/python bench/media_latency.py [--seconds 10] [--transport udp|tcp-passive|tcp-active]

One process runs the platform (media node inline), a simulated camera streaming the shared road
footage (or a test pattern), and a WebSocket viewer. Each frame the camera's PsRtpSender emits
is timed (its last RTP packet leaving); each fMP4 fragment the viewer receives is timed and
matched to the frame by its mfhd sequence number (the node numbers fragments from the first key
frame, as the camera starts at a key frame). Reported: median, p90, p99 and max of
receive − send over `--seconds` of live video after a 2 s warm-up.

This is the platform's share of glass-to-glass latency (RTP receive, reorder buffer release,
PS demux, fMP4 mux, WebSocket): the camera's capture and encoding and the browser's decoding
and display are outside it. With UDP the reorder buffer holds a packet only while an earlier
one is missing, so in-order traffic is not delayed by `media.jitter_latency_s`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import websockets  # noqa: E402

from camgrid.app import Platform  # noqa: E402
from camgrid.config import load_settings  # noqa: E402
from camgrid.registry.devices import add_device  # noqa: E402
from camgrid.sim.agent import SimOptions, Simulator  # noqa: E402
from camgrid.sim.devices import generate  # noqa: E402
from camgrid.sim.media import SimMediaOptions  # noqa: E402
from camgrid.sim.video import load_footage, synthetic_footage  # noqa: E402
from camgrid.store.engine import open_store  # noqa: E402

PLATFORM_ID = "34020000002000000001"
FOOTAGE = ROOT.parent / "shared" / "footage" / "road-car-detection.mp4"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


async def run(seconds: float, transport: str) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="camgrid-latency-") as tmp:
        spec = generate(1, 1, seed="latency", mix=False)[0]
        db = f"sqlite:///{Path(tmp) / 'camgrid.db'}"
        engine = open_store(db)
        add_device(engine, spec.id, spec.password, PLATFORM_ID[:10])
        engine.dispose()
        settings = load_settings(data_dir=Path(tmp), environ={}, overrides={
            "sip": {"host": "127.0.0.1", "port": 0, "id": PLATFORM_ID, "overload_lag_s": 0},
            "http": {"host": "127.0.0.1", "port": 0}, "store": {"database_url": db},
            "catalog": {"query_on_register": False},
            "media": {"embedded": "inline", "http_port": 0, "rtp_ports": (0, 0), "host": "127.0.0.1", "transport": transport}})
        platform = Platform(settings, announce=lambda text: None)
        await platform.start()
        sim = Simulator([spec], SimOptions(PLATFORM_ID, "127.0.0.1", platform.signaling.port, "udp", keepalive_s=5,
                                           media=SimMediaOptions(bind_host="127.0.0.1")), bind_host="127.0.0.1")
        footage = (await asyncio.to_thread(load_footage, FOOTAGE, max_seconds=30) if FOOTAGE.is_file()
                   else await asyncio.to_thread(synthetic_footage, "h264", 640, 360, 25, 10))
        sim.media.use_footage(footage)
        await sim.start()
        sent: dict[int, float] = {}
        try:
            if not await sim.wait_registered(10):
                raise SystemExit("the simulated camera did not register")
            session = await platform.media.live(spec.id, spec.channels[0].id)
            call = next(iter(sim.media.calls.values()))
            original = call.sender._send_frame

            async def timed_send(*args, **kwargs):
                await original(*args, **kwargs)
                sent[call.sender.frames_sent] = time.monotonic()
            call.sender._send_frame = timed_send
            if not await platform.media.wait_first_frame(session, 10):
                raise SystemExit(f"no video: {session.end_reason}")
            received: dict[int, float] = {}
            async with websockets.connect(session.node.live_url(session.session_id, "bench", 30), max_size=None) as ws:
                end = time.monotonic() + 2 + seconds
                while time.monotonic() < end:
                    msg = await ws.recv()
                    now = time.monotonic()
                    if isinstance(msg, bytes) and msg[4:8] == b"moof":
                        received[struct.unpack_from(">I", msg, 20)[0]] = now
            warm = time.monotonic() - seconds
            return [(received[n] - sent[n]) * 1000 for n in received if n in sent and sent[n] >= warm - 2 and received[n] >= warm]
        finally:
            await platform.stop()
            await sim.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--transport", default="udp", choices=["udp", "tcp-passive", "tcp-active"])
    args = ap.parse_args()
    lat = asyncio.run(run(args.seconds, args.transport))
    if not lat:
        raise SystemExit("no frame could be matched")
    print(f"camera send -> viewer receive, {args.transport}, {len(lat)} frames: median {statistics.median(lat):.1f} ms, "
          f"p90 {pct(lat, 0.9):.1f} ms, p99 {pct(lat, 0.99):.1f} ms, max {max(lat):.1f} ms")


if __name__ == "__main__":
    main()
