"""The media node process killed at random moments while it records: afterwards the index and
the disk agree, footage before the last part is intact, and each gap is an event with its cause."""

from __future__ import annotations

import asyncio
import os
import random
import signal

import av
import pytest
from sqlalchemy import select

from camgrid.app import Platform
from camgrid.media.segment_file import scan_segment
from camgrid.sim.devices import generate
from camgrid.sim.media import SimMediaOptions
from camgrid.sim.video import synthetic_footage
from camgrid.store.engine import open_store
from camgrid.store.tables import events, recordings
from tests.signaling.conftest import make_settings, provision, sim_for, wait_for

KILLS = 3


@pytest.fixture
def db_url(tmp_path):
    """The store's behaviour is tested on both kinds elsewhere; SQLite here."""
    return f"sqlite:///{tmp_path / 'camgrid.db'}"


async def test_killing_the_media_node_while_recording(tmp_path, db_url):
    specs = generate(1, 1, seed="kill-test", mix=False)
    provision(db_url, specs[:1])
    settings = make_settings(tmp_path, db_url, media={"embedded": "process", "segment_s": 3.0, "part_s": 0.5,
                                                      "recording_retry_s": 0.5, "no_media_timeout_s": 3.0})
    platform = Platform(settings, announce=lambda text: None)
    await platform.start()
    sim = sim_for(platform, specs[:1], media=SimMediaOptions(bind_host="127.0.0.1"))
    sim.media.use_footage(synthetic_footage("h264", 320, 240, 25, 4, gop_s=1.0))
    await sim.start()
    rng = random.Random(int(os.environ.get("CAMGRID_KILL_SEED", "2811")))
    try:
        assert await sim.wait_registered(10)
        device, channel = specs[0].id, specs[0].channels[0].id
        await wait_for(lambda: platform.health.is_online(device))
        plans = platform.recording_plans
        plans.set_plan(channel, device, "continuous", [], "tester")
        for _ in range(KILLS):
            await wait_for(lambda: plans.describe(channel)["recording"], timeout=20)
            await asyncio.sleep(rng.uniform(1.2, 4.0))  # somewhere inside a part, a segment, or a cut
            os.kill(platform.media_node.process.pid, signal.SIGKILL)
            await wait_for(lambda: not plans.describe(channel)["recording"], timeout=20)
        await wait_for(lambda: plans.describe(channel)["recording"], timeout=20)
        await asyncio.sleep(2.0)
    finally:
        await platform.stop()
        await sim.stop()
    assert platform.media_node.restarts == KILLS

    engine = open_store(db_url)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(recordings)).mappings()]
        gaps = [dict(r) for r in conn.execute(select(events).where(events.c.kind == "recording.gap")).mappings()]
    engine.dispose()
    assert rows and all(r["state"] in ("closed", "recovered") for r in rows), [r["state"] for r in rows]
    assert 1 <= len(gaps) <= KILLS and all("stopped without closing" in g["data"]["cause"] for g in gaps)
    for row in rows:
        path = settings.recordings_dir / row["path"]
        scan = scan_segment(path)
        assert scan.whole_bytes == scan.file_bytes == row["bytes"], row
        assert abs((row["end_at"] - row["start_at"]).total_seconds() - scan.duration_ticks / 90_000) < 0.01
        if scan.fragments:
            with av.open(str(path)) as container:
                assert {(f.width, f.height) for f in container.decode(video=0)} == {(320, 240)}
