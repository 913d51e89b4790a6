"""Live audio through the whole platform: a simulated camera sending H.264 and an AAC tone over
GB/T 28181 (INVITE, PS over RTP) to the platform with its inline media node; what
GET /api/v1/channels/{id}/live.mp4 gives decodes (PyAV) with an AAC track in step with the video."""

from __future__ import annotations

import io
import time

import av
import numpy as np
import pytest

from camgrid.app import Platform
from camgrid.sim.media import SimMediaOptions
from camgrid.sim.video import synthetic_footage, with_audio
from tests.signaling.conftest import make_settings, provision, sim_for
from tests.signaling.conftest import specs  # noqa: F401  (a fixture)


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path / 'camgrid.db'}"


async def test_live_mp4_has_the_cameras_aac_track(tmp_path, db_url, specs):  # noqa: F811
    import httpx

    from camgrid.governance.users import create_user, issue_token

    provision(db_url, specs[:1])
    platform = Platform(make_settings(tmp_path, db_url, catalog={"query_on_register": False}), announce=lambda text: None)
    await platform.start()
    sim = sim_for(platform, specs[:1], media=SimMediaOptions(bind_host="127.0.0.1"))
    sim.media.use_footage(with_audio(synthetic_footage("h264", 320, 240, 25, 3, gop_s=1.0), "aac"))
    await sim.start()
    try:
        assert await sim.wait_registered(10)
        channel = specs[0].channels[0].id
        await platform.signaling.catalog_refresh(specs[0].id)
        user = create_user(platform.engine, "listener", "a long enough password 1", "viewer")
        headers = {"Authorization": f"Bearer {issue_token(platform.engine, user['id'], 3600)}"}
        url = f"http://127.0.0.1:{platform.http_port}/api/v1/channels/{channel}/live.mp4"
        data = b""
        async with httpx.AsyncClient(timeout=20) as client:
            async with client.stream("GET", url, headers=headers) as response:
                assert response.status_code == 200
                started = time.monotonic()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if time.monotonic() - started > 2.5:
                        break
        with av.open(io.BytesIO(data)) as container:
            assert [s.type for s in container.streams] == ["video", "audio"]
            stream = container.streams.audio[0]
            assert stream.codec_context.name == "aac" and stream.rate == 16000
            frames = list(container.decode(stream))
        with av.open(io.BytesIO(data)) as container:
            video = [f.time for f in container.decode(video=0)]
        assert len(video) >= 40
        seconds = sum(f.samples for f in frames) / stream.rate
        assert abs(seconds - (video[-1] - video[0])) < 0.5, (seconds, video[0], video[-1])  # sound all along
        assert abs(frames[0].time - video[0]) < 0.2  # and in step with the picture
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])[-8000:]
        peak = np.argmax(np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))) * stream.rate / len(pcm)
        assert abs(peak - 440) < 10
    finally:
        await platform.stop()
        await sim.stop()
