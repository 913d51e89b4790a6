"""Where a device playback is (issue 3, playback): the viewers of a Playback stream get "segment"
messages that map their fMP4 time to the recording's wall-clock time, at the start and after
each seek, although the node's fMP4 timeline only moves forward. The footage's brightness says
which second of the recording a picture is (tests/sim/test_sim_seek.py), so the decoded pictures
at a mark's media time show whether the mark is right."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from datetime import UTC, datetime, timedelta

import av
import websockets

from camgrid.app import Platform
from camgrid.media.fmp4 import FragmentWriter, Sample
from camgrid.media.playback_position import fragment_position
from camgrid.sim.media import SimMediaOptions
from tests.signaling.conftest import make_settings, provision, sim_for
from tests.signaling.conftest import specs  # noqa: F401  (a fixture)
from tests.sim.test_sim_seek import footage, mean_luma, second_of_luma  # noqa: F401  (footage: a fixture)

START = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


class Viewer:
    """A browser's view of the stream: the text messages and the fMP4, in the order they came."""

    def __init__(self, url: str) -> None:
        self.url, self.texts, self.data = url, [], []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async with websockets.connect(self.url, max_size=None) as ws:
            async for msg in ws:
                if isinstance(msg, bytes):
                    self.data.append(msg)
                else:
                    self.texts.append(json.loads(msg))

    async def stop(self) -> bytes:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task
        return b"".join(self.data)

    def marks(self) -> list[dict]:
        return [t for t in self.texts if t["type"] == "segment"]


def seconds_at(data: bytes) -> list[tuple[float, int]]:
    """(media time in seconds, the recording's second its brightness names) of each decoded picture."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        return [(float(p.pts * stream.time_base), second_of_luma(mean_luma(p))) for p in container.decode(stream)]


def test_fragment_position_reads_the_sequence_number_and_the_decode_time() -> None:
    writer = FragmentWriter()
    data = writer.fragment([Sample(b"\x00\x00\x00\x01\x65\x88", 123_456, 123_456, 3600, True)], sequence=42)
    assert fragment_position(data) == (42, 123_456)
    assert fragment_position(b"\x00\x00\x00\x08free") is None


async def test_viewers_are_told_where_the_footage_is_at_the_start_and_after_a_seek(tmp_path, specs, footage):  # noqa: F811
    db_url = f"sqlite:///{tmp_path / 'camgrid.db'}"
    provision(db_url, specs[:1])
    platform = Platform(make_settings(tmp_path, db_url, catalog={"query_on_register": False}), announce=lambda text: None)
    await platform.start()
    sim = sim_for(platform, specs[:1], media=SimMediaOptions(bind_host="127.0.0.1"))
    sim.media.use_footage(footage)
    await sim.start()
    try:
        assert await sim.wait_registered(10)
        session = await platform.media.playback(specs[0].id, specs[0].channels[0].id, START, START + timedelta(seconds=60))
        assert await platform.media.wait_first_frame(session, 10), session.end_reason
        described = session.describe()
        assert described["range"] == {"from": START.isoformat(), "to": (START + timedelta(seconds=60)).isoformat()}
        assert described["speed"] == 1.0 and described["paused"] is False and described["audio_codec"] == "g711a"
        viewer = Viewer(session.node.live_url(session.session_id, "tester", 30))
        await asyncio.sleep(1.5)  # the recording's first second or two
        answer = await platform.media.control(session, "seek", 5)
        assert answer["wall"] == (START + timedelta(seconds=5)).isoformat()
        await asyncio.sleep(1.5)
        data = await viewer.stop()

        marks = viewer.marks()
        assert [(m["cause"], m["wall"]) for m in marks] == [
            ("start", START.isoformat()), ("seek", (START + timedelta(seconds=5)).isoformat())], marks
        assert marks[0]["media_s"] == 0
        pictures = seconds_at(data)
        seek_at = marks[1]["media_s"]
        before = [s for t, s in pictures if t < seek_at - 1e-6]
        after = [s for t, s in pictures if t >= seek_at - 1e-6]
        assert before and max(before) <= 2, pictures  # the start of the recording
        assert after and after[0] == 5 and set(after) <= {5, 6}, pictures  # from the seek's key frame on
        # At the start mark, the picture is the range's first second.
        assert min(pictures)[1] == 0

        # A browser that connects later gets both marks, with the footage they describe.
        late = Viewer(session.node.live_url(session.session_id, "tester", 30))
        await asyncio.sleep(0.8)
        await late.stop()
        assert [m["cause"] for m in late.marks()] == ["start", "seek"]
        assert late.marks()[1]["media_s"] == seek_at

        # A speed change needs no mark (the media time stays the recording's); describe() says it.
        await platform.media.control(session, "speed", 2.0)
        assert session.describe()["speed"] == 2.0
    finally:
        await sim.stop()
        await platform.stop()
