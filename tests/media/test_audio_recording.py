"""Recorded audio: the Recorder keeps the device's G.711 / AAC in its segments (decoded by PyAV with
the right codec and about the video's length), playback moves the audio with the video across
segments and gaps (and leaves G.711 out for browsers), exports keep it; bad audio costs no video."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import av
import pytest
from fastapi.testclient import TestClient
from recording_helpers import CHANNEL, DEVICE, T0, at
from sqlalchemy import delete

from camgrid.api.app import ApiContext, create_api
from camgrid.config import RetentionSettings, Settings
from camgrid.governance.users import create_user, issue_token
from camgrid.media.retention_worker import RetentionWorker
from camgrid.registry.devices import new_device_row
from camgrid.store.tables import channels, devices, recordings

from camgrid.media.export import load_or_create_key, write_bundle
from camgrid.media.playback import read_recorded
from camgrid.media.ps import AUDIO_ID, VIDEO_ID, AccessUnit, PsDemuxer, mux_ps
from camgrid.media.recorder import Recorder, announced_audio_of
from camgrid.media.recording_index import RecordingIndex
from camgrid.media.recordings_query import segments_between
from camgrid.sim.video import synthetic_footage, with_audio
from camgrid.store.engine import make_engine, migrate

DECODER = {"aac": "aac", "g711a": "pcm_alaw", "g711u": "pcm_mulaw"}


@pytest.fixture(scope="module")
def footage():
    return synthetic_footage("h264", 160, 120, 25, 4, gop_s=1.0)


async def record(tmp_path: Path, footage, audio_codec: str | None, *, runs: int = 2, gap_s: float = 10.0,
                 bad_audio_every: int = 0, audio_from_s: float = 0.0):
    """`runs` recordings (2 s segments) of the footage with its audio interleaved by time."""
    engine = make_engine(f"sqlite:///{tmp_path / 'rec-index.db'}")
    migrate(engine)
    index = RecordingIndex(engine, flush_interval_s=0.05)
    await index.start()
    fo = with_audio(footage, audio_codec) if audio_codec else footage
    clock = [T0]
    stats = []
    for _ in range(runs):
        recorder = Recorder(channel_id=CHANNEL, device_id=DEVICE, root=tmp_path / "rec", index=index, node_id="n1",
                            part_s=0.5, segment_s=2.0, clock=lambda: clock[0])
        recorder.start()
        units = [u for u in fo.audio if u.pts >= audio_from_s * 90_000]
        for n, f in enumerate(fo.frames):
            while units and units[0].pts <= f.pts:
                unit = units.pop(0)
                data = b"\xde\xad" if bad_audio_every and n % bad_audio_every == 1 else unit.data
                recorder.push(AccessUnit(AUDIO_ID, audio_codec, unit.pts, unit.pts, data))
            recorder.push(AccessUnit(VIDEO_ID, "h264", f.pts, f.pts, f.data, f.keyframe))
            clock[0] += 1 / footage.fps
            await asyncio.sleep(0)
        await recorder.stop()
        stats.append(recorder.stats())
        clock[0] += gap_s
    await index.stop()
    return engine, tmp_path / "rec", stats


def segment_files(engine, root: Path) -> list[Path]:
    """The recorded files in time order (from the index)."""
    return [root / row["path"] for row in segments_between(engine, CHANNEL, at(0), at(120))]


def probe(data_or_path) -> dict:
    source = io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else str(data_or_path)
    with av.open(source) as container:
        out = {"video": sum(1 for _ in container.decode(video=0))}
    with av.open(io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else str(data_or_path)) as container:
        if container.streams.audio:
            stream = container.streams.audio[0]
            frames = list(container.decode(stream))
            out.update(audio=stream.codec_context.name, rate=stream.rate,
                       audio_s=sum(f.samples for f in frames) / stream.rate, audio_start=frames[0].time,
                       audio_end=frames[-1].time + frames[-1].samples / stream.rate)
    return out


@pytest.mark.parametrize("codec", ["g711a", "aac"])
async def test_segments_keep_the_devices_audio(tmp_path, footage, codec):
    engine, root, stats = await record(tmp_path, footage, codec, runs=1)
    try:
        files = segment_files(engine, root)
        assert len(files) == 2  # 4 s in 2 s segments
        for file in files:
            got = probe(file)
            assert got["audio"] == DECODER[codec] and got["video"] == 50
            assert abs(got["audio_s"] - 2.0) < 0.2, got  # about the segment's length
        assert stats[0]["audio"]["codec"] == codec and stats[0]["audio_samples"] > 0
        assert stats[0]["audio_bad_units"] == 0
    finally:
        engine.dispose()


async def test_audio_that_starts_later_starts_a_segment_with_it(tmp_path, footage):
    engine, root, _ = await record(tmp_path, footage, "g711u", runs=1, audio_from_s=0.5)
    try:
        got = [probe(f) for f in segment_files(engine, root)]
        assert "audio" not in got[0]  # opened before any audio came
        assert got[1]["audio"] == "pcm_mulaw"  # the next key frame opened one with the audio track
        assert sum(g["video"] for g in got) == 100  # no frame lost on the way
    finally:
        engine.dispose()


async def record_ps(tmp_path: Path, footage, audio_codec: str | None, *, audio_from_s: float | None,
                    check: list[tuple[float, int]] = (), engine=None, channel: str = CHANNEL, start: float = T0):
    """One recording of the footage sent as PS whose map announces `audio_codec` with every key
    frame, through the real demuxer (the recorder asks it what the map announces, as the node
    does); the audio's first unit comes `audio_from_s` after the first key frame (None: never).
    `check`: (media second, segments the recorder should have opened by then). `audio_codec`
    None: a camera without sound (nothing announced)."""
    if engine is None:
        engine = make_engine(f"sqlite:///{tmp_path / 'rec-index.db'}")
        migrate(engine)
    index = RecordingIndex(engine, flush_interval_s=0.05)
    await index.start()
    fo = with_audio(footage, audio_codec) if audio_codec else footage
    streams = {VIDEO_ID: "h264", AUDIO_ID: audio_codec} if audio_codec else {VIDEO_ID: "h264"}
    demuxer = PsDemuxer()
    clock = [start]
    recorder = Recorder(channel_id=channel, device_id=DEVICE, root=tmp_path / "rec", index=index, node_id="n1",
                        part_s=0.5, segment_s=2.0, clock=lambda: clock[0],
                        announced_audio=lambda: announced_audio_of(demuxer.codecs))
    recorder.start()
    units = [] if audio_from_s is None else [u for u in fo.audio if u.pts >= audio_from_s * 90_000]
    checks = list(check)
    for n, f in enumerate(fo.frames):
        ps = mux_ps(VIDEO_ID, f.data, f.pts, streams=streams, keyframe=f.keyframe)
        while units and units[0].pts <= f.pts:
            unit = units.pop(0)
            ps += mux_ps(AUDIO_ID, unit.data, unit.pts)
        for unit in demuxer.feed(ps) + demuxer.flush():
            recorder.push(unit)
        clock[0] += 1 / footage.fps
        for _ in range(3):
            await asyncio.sleep(0)
        while checks and f.pts >= checks[0][0] * 90_000:
            second, opened = checks.pop(0)
            if opened == 0:  # all held: nothing handed to the disk worker
                stats = recorder.stats()
                assert stats["audio_held_frames"] == n + 1, (second, stats)  # every frame so far
                assert stats["queued"] == 0 and stats["segments"] == 0, (second, stats)
            else:
                assert recorder.stats()["audio_held_frames"] == 0
                deadline = asyncio.get_running_loop().time() + 10
                while recorder.stats()["segments"] < opened and asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(0.02)  # the disk worker opens the files
                assert recorder.stats()["segments"] == opened, (second, recorder.stats())
    await recorder.stop()
    await index.stop()
    return engine, tmp_path / "rec", recorder.stats()


@pytest.mark.parametrize("codec", ["aac", "g711u"])
async def test_announced_audio_that_comes_after_the_first_key_frame_is_in_the_first_segment(tmp_path, footage, codec):
    # The map announces the audio with the first key frame; its first unit comes 0.3 s later.
    engine, root, stats = await record_ps(tmp_path, footage, codec, audio_from_s=0.3)
    try:
        rows_ = segments_between(engine, CHANNEL, at(0), at(120))
        got = [probe(root / row["path"]) for row in rows_]
        assert len(got) == 2 and all(g.get("audio") == DECODER[codec] for g in got), got
        assert got[0]["video"] == 50 and got[1]["video"] == 50  # nothing held back was lost
        assert 0.2 < got[0]["audio_start"] < 0.45, got[0]  # the sound starts where it came
        assert rows_[0]["start_at"] == at(0)  # the file starts at the first key frame's arrival
        assert stats["audio_wait"] is None and stats["audio"]["codec"] == codec
    finally:
        engine.dispose()


async def test_announced_audio_that_never_comes_starts_video_only_after_the_wait(tmp_path, footage):
    # No file while the recorder waits (2 s of video); then, at the frame of 2 s (a key frame that
    # also ends the first 2 s segment), the held frames become a file without audio, and the next opens.
    engine, root, stats = await record_ps(tmp_path, footage, "aac", audio_from_s=None,
                                          check=[(0.5, 0), (1.9, 0), (2.0, 2)])
    try:
        rows_ = segments_between(engine, CHANNEL, at(0), at(120))
        got = [probe(root / row["path"]) for row in rows_]
        assert got and all("audio" not in g for g in got), got
        assert sum(g["video"] for g in got) == 100 and rows_[0]["start_at"] == at(0)
        assert "announces aac audio but none came in 2 s" in stats["audio_wait"]
    finally:
        engine.dispose()


async def test_bad_audio_costs_no_video(tmp_path, footage):
    engine, root, stats = await record(tmp_path, footage, "aac", runs=1, bad_audio_every=3)
    try:
        assert stats[0]["audio_bad_units"] > 0
        got = [probe(f) for f in segment_files(engine, root)]
        assert sum(g["video"] for g in got) == 100 and all(g.get("audio") == "aac" for g in got)
    finally:
        engine.dispose()


async def collect(engine, root, *, browser: bool):
    items = [item async for item in read_recorded(engine, root, CHANNEL, at(0), at(60), browser=browser)]
    inits = [i for i in items if i.kind == "init"]
    data = b"".join(i.data for i in items if i.kind in ("init", "fragment"))
    return inits, data


async def test_playback_moves_the_audio_with_the_video(tmp_path, footage):
    engine, root, _ = await record(tmp_path, footage, "aac")
    try:
        inits, data = await collect(engine, root, browser=True)
        assert len(inits) == 1 and inits[0].info["audio"] == {
            "codec": "aac", "codec_string": "mp4a.40.2", "sample_rate": 16000, "played": True}
        assert inits[0].info["codecs"] == f"{inits[0].info['codec_string']},mp4a.40.2"
        got = probe(data)
        assert got["video"] == 200 and got["audio"] == "aac"
        # Two 4 s runs joined on one timeline (the 10 s gap closed): audio from ~0 to ~8 s, not 18 s.
        assert got["audio_start"] < 0.1 and abs(got["audio_end"] - 8.0) < 0.3, got
        assert abs(got["audio_s"] - 8.0) < 0.4
    finally:
        engine.dispose()


async def test_playback_leaves_g711_out_for_browsers_and_exports_keep_it(tmp_path, footage):
    engine, root, _ = await record(tmp_path, footage, "g711a")
    try:
        inits, data = await collect(engine, root, browser=True)
        assert inits[0].info["audio"]["played"] is False and inits[0].info["audio"]["codec"] == "g711a"
        assert "codecs" not in inits[0].info  # the player sets up for the video alone
        got = probe(data)
        assert got["video"] == 200 and "audio" not in got
        _, data = await collect(engine, root, browser=False)
        assert probe(data)["audio"] == "pcm_alaw"

        key = load_or_create_key(tmp_path / "export.key")
        out = tmp_path / "bundle"
        manifest = await write_bundle(engine, root, out, channel_id=CHANNEL, start=at(0), end=at(60), exported_by="alice",
                                      reason="case 7", export_id="e1", key=key)
        [entry] = manifest["files"]
        assert entry["audio"]["codec"] == "g711a"
        got = probe(out / entry["name"])
        assert got["audio"] == "pcm_alaw" and abs(got["audio_s"] - 8.0) < 0.4 and got["video"] == 200
        assert json.loads((out / "manifest.json").read_text())["files"][0]["audio"]["sample_rate"] == 8000
    finally:
        engine.dispose()


async def test_the_index_names_each_segments_audio(engine, tmp_path, footage):
    """recordings.audio_codec (SQLite and PostgreSQL): set by the recorder, NULL for a camera without
    sound, shown by `camgrid record list --json` and the recordings API, and read from the file
    again when an orphan segment is re-indexed."""
    silent = "34020000001310000002"
    with engine.begin() as conn:
        conn.execute(devices.insert(), new_device_row(DEVICE))
        conn.execute(channels.insert(), [{"id": c, "device_id": DEVICE, "updated_at": datetime.now(UTC), "extra": {}}
                                         for c in (CHANNEL, silent)])
    start = time.time() - 3 * 86400  # old enough for the orphan scan below
    await record_ps(tmp_path, footage, "g711a", audio_from_s=0.2, engine=engine, start=start)
    await record_ps(tmp_path, footage, None, audio_from_s=None, engine=engine, channel=silent, start=start)
    since, until = datetime.fromtimestamp(start - 60, UTC), datetime.fromtimestamp(start + 600, UTC)
    sound = segments_between(engine, CHANNEL, since, until)
    quiet = segments_between(engine, silent, since, until)
    assert len(sound) == 2 and len(quiet) == 2
    assert [r["audio_codec"] for r in sound] == ["g711a", "g711a"] and [r["audio_codec"] for r in quiet] == [None, None]
    for row in sound + quiet:  # the row says what the file holds
        assert probe(tmp_path / "rec" / row["path"]).get("audio") == (DECODER["g711a"] if row["audio_codec"] else None)

    # camgrid record list --json
    env = dict(os.environ, CAMGRID__MEDIA__RECORDINGS_DIR=str(tmp_path / "rec"))
    db = ["--data-dir", str(tmp_path / "data"), "--database-url", engine.url.render_as_string(hide_password=False)]
    for channel, expected in ((CHANNEL, "g711a"), (silent, None)):
        listed = subprocess.run([sys.executable, "-m", "camgrid", "record", "list", *db, "--channel", channel,
                                 "--from", since.isoformat(), "--json"], capture_output=True, text=True, timeout=120, env=env)
        assert listed.returncode == 0, listed.stderr
        assert [i["audio_codec"] for i in json.loads(listed.stdout)] == [expected, expected]
    table = subprocess.run([sys.executable, "-m", "camgrid", "record", "list", *db, "--channel", CHANNEL,
                            "--from", since.isoformat()], capture_output=True, text=True, timeout=120, env=env)
    assert "h264+g711a 160x120" in table.stdout, table.stdout

    # The recordings API, segment by segment
    user = create_user(engine, "viewer1", "pass-word-123", "operator")
    client = TestClient(create_api(ApiContext(engine=engine, settings=Settings(), bus=None, health=None, commands=None,
                                              metrics=None)))
    token = issue_token(engine, user["id"], 600)
    for channel, expected in ((CHANNEL, "g711a"), (silent, None)):
        answer = client.get(f"/api/v1/channels/{channel}/recordings",
                            params={"from": since.isoformat(), "to": until.isoformat(), "include_segments": "true"},
                            headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
        assert [i["audio_codec"] for i in answer.json()["items"]] == [expected, expected]

    # Orphans: the rows are lost; the retention sweep indexes the files again, audio codec included.
    with engine.begin() as conn:
        conn.execute(delete(recordings))
    for path in (tmp_path / "rec").rglob("*.mp4"):
        old = time.time() - 7200
        os.utime(path, (old, old))
    rules = {"min_free_percent": 0, "min_free_bytes": 0, "target_free_percent": 0, "target_free_bytes": 0,
             "orphan_grace_s": 3600}
    report = RetentionWorker(engine, tmp_path / "rec", "n1", RetentionSettings(**rules)).sweep_once()
    assert report.as_dict()["reindexed"]["segments"] == 4
    again = {c: [(r["state"], r["audio_codec"]) for r in segments_between(engine, c, since, until)] for c in (CHANNEL, silent)}
    assert again == {CHANNEL: [("recovered", "g711a")] * 2, silent: [("recovered", None)] * 2}
