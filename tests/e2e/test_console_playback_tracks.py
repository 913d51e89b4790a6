"""Recorded playback across a change of tracks, in a real browser: a recording whose first segment
has no audio track and whose next one has video and AAC (what the recorder wrote when a camera's
first audio came after its first key frame). A SourceBuffer keeps the tracks it was made with
(changeType cannot add one: Chrome says "Got unexpected audio track"), so the console's player
plays the first segment out and goes on with a new MediaSource for the second.

The segments are written here, before `camgrid serve` starts, by the real Recorder into the
platform's own recordings folder and index (as its embedded media node would have), so the
boundary is certain, not a matter of timing. The page plays them from the start: the sound control
shows (muted) during the video-only part, and a click there turns the sound on; no media error,
the <video> clock goes on past the boundary without going back, the audio track is decoded after
it, the sound is still on and the camera's tone comes out. Same skips as test_console.py.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import av

from camgrid.media.ps import AUDIO_ID, VIDEO_ID, AccessUnit
from camgrid.media.recorder import Recorder
from camgrid.media.recording_index import RecordingIndex
from camgrid.media.recordings_query import segments_between
from camgrid.sim.devices import generate
from camgrid.sim.video import synthetic_footage, with_audio
from camgrid.store.engine import make_engine
from tests.e2e.test_console import (  # noqa: F401  (db_url: a fixture)
    browser_page,
    browser_skip,
    db_url,
    expect,
    field,
    shot,
    video_time,
)
from tests.e2e.test_console_audio import ANALYSER, listen, tone
from tests.e2e.test_live_processes import PASSWORD, PLATFORM_ID, call, start, stop, wait_channel
from tests.signaling.test_sipp import camgrid, free_port

pytestmark = browser_skip()

VIDEO_ONLY_S = 3.5  # the audio starts here; the segment with it at the next key frame (4 s)
TOTAL_S = 12.0

# Every timeupdate of the page's <video> as (ms since the page began, currentTime), and the
# element's errors, from before the player starts.
WATCH = """() => {
    const video = document.querySelector('video[data-test=video]')
    window.__times = []
    window.__errors = []
    video.addEventListener('timeupdate', () => window.__times.push([performance.now(), video.currentTime]))
    video.addEventListener('error', () => window.__errors.push(String(video.error && video.error.message)))
}"""


async def write_recording(db_url: str, root: Path, channel_id: str, device_id: str, start: float) -> list[dict]:
    """The footage recorded as the embedded media node would have: a video-only segment, then, from
    the first key frame after the audio started (VIDEO_ONLY_S), one with audio. The index rows."""
    footage = with_audio(synthetic_footage("h264", 320, 240, 25, TOTAL_S, gop_s=1.0), "aac")
    engine = make_engine(db_url)
    index = RecordingIndex(engine, flush_interval_s=0.05)
    await index.start()
    clock = [start]
    recorder = Recorder(channel_id=channel_id, device_id=device_id, root=root, index=index, node_id="embedded",
                        part_s=0.5, segment_s=60.0, clock=lambda: clock[0])
    recorder.start()
    audio = [u for u in footage.audio if u.pts >= VIDEO_ONLY_S * 90_000]
    for f in footage.frames:
        while audio and audio[0].pts <= f.pts:
            unit = audio.pop(0)
            recorder.push(AccessUnit(AUDIO_ID, "aac", unit.pts, unit.pts, unit.data))
        recorder.push(AccessUnit(VIDEO_ID, "h264", f.pts, f.pts, f.data, f.keyframe))
        clock[0] += 1 / footage.fps
        await asyncio.sleep(0)
    await recorder.stop()
    await index.stop()
    try:
        return segments_between(engine, channel_id, datetime.fromtimestamp(start - 60, timezone.utc),
                                datetime.fromtimestamp(start + 600, timezone.utc))
    finally:
        engine.dispose()


def test_playback_goes_on_when_the_audio_track_starts_with_the_next_segment(tmp_path, db_url):
    spec = generate(1, 1, seed="e2e-tracks", mix=False)[0]
    channel_id = spec.channels[0].id
    data = tmp_path / "data"
    common = ["--data-dir", str(data), "--database-url", db_url]
    devices_csv = tmp_path / "devices.csv"
    devices_csv.write_text(f"id,password,name\n{spec.id},{spec.password},{spec.name}\n")
    r = camgrid("device", "import", *common, str(devices_csv))
    assert r.returncode == 0, r.stdout + r.stderr
    r = camgrid("admin", "create-user", *common, "--username", "ops", "--role", "operator", "--password-stdin",
                stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr

    # Two minutes ago (today's timeline), written by the real recorder into the platform's folder.
    rows = asyncio.run(write_recording(db_url, data / "recordings", channel_id, spec.id, time.time() - 120))
    assert len(rows) == 2, rows
    with av.open(str(data / "recordings" / rows[0]["path"])) as first, \
            av.open(str(data / "recordings" / rows[1]["path"])) as second:
        assert not first.streams.audio and second.streams.audio[0].codec_context.name == "aac"
    boundary = (rows[1]["start_at"] - rows[0]["start_at"]).total_seconds()
    assert boundary >= VIDEO_ONLY_S, rows  # at the first key frame after the audio came

    http, sip = free_port(), free_port()
    env = dict(os.environ, CAMGRID__MEDIA__HTTP_PORT="0", CAMGRID__MEDIA__RTP_PORTS="[0, 0]",
               CAMGRID__MEDIA__HOST="127.0.0.1")
    serve = start(["serve", *common, "--http-port", str(http), "--sip-port", str(sip), "--sip-id", PLATFORM_ID,
                   "--sip-host", "127.0.0.1"], "camgrid serving", env=env)
    base = f"http://127.0.0.1:{http}"
    sim = None
    try:
        # The camera itself (its channel is known once its catalog came; it records nothing here).
        sim = start(["sim", "--server", f"127.0.0.1:{sip}", "--platform-id", PLATFORM_ID, "--devices", "1",
                     "--channels", "1", "--seed", "e2e-tracks", "--keepalive", "5", "--audio", "none"],
                    "sim: 1 devices", timeout=120)
        token = call(http, "/api/v1/auth/login", body={"username": "ops", "password": PASSWORD})["access_token"]
        assert wait_channel(http, token, spec.id) == channel_id
        with browser_page(860, "failure-playback-tracks") as (page, problems):
            page.goto(base + "/login")
            field(page, "username").fill("ops")
            field(page, "password").fill(PASSWORD)
            page.get_by_test_id("login-submit").click()
            expect(page).to_have_url(base + "/channels")

            page.goto(f"{base}/channels/{channel_id}/playback?device={spec.id}")
            span = page.get_by_test_id("timeline-span").first
            expect(span).to_be_visible(timeout=15_000)
            page.evaluate(WATCH)
            page.evaluate(ANALYSER, "video[data-test=video]")
            span.click()  # a span this short plays from its start: the video-only segment first
            player = page.locator(".player")
            expect(player).to_have_attribute("data-state", "playing", timeout=15_000)

            # The node sends ahead: the control for the sound to come shows during the video-only
            # part, muted. The sound turned on there stays on across the new MediaSource.
            control = page.get_by_test_id("audio")
            expect(control).to_have_attribute("data-muted", "true", timeout=10_000)
            expect(control).to_have_attribute("data-codec", "aac")
            page.get_by_test_id("audio-toggle").click()
            clicked_at = video_time(page)
            expect(control).to_have_attribute("data-muted", "false")
            assert clicked_at < boundary, f"the control came late: at {clicked_at} (boundary {boundary})"

            # Past the boundary by a second and a half, on the same clock.
            deadline = time.time() + 15
            while video_time(page) < boundary + 1.5 and time.time() < deadline and player.get_attribute("data-state") != "failed":
                time.sleep(0.2)
            errors = page.locator("[data-test=playback-error]").all_text_contents()
            assert video_time(page) >= boundary + 1.5, (
                f"playback stopped at {video_time(page)} (boundary {boundary}): {errors} {page.evaluate('() => window.__errors')}")
            times = [t for _, t in page.evaluate("() => window.__times")]
            assert times and min(times) < boundary, times  # it did play the video-only part
            backwards = [(a, b) for a, b in zip(times, times[1:]) if b < a - 0.01]
            assert not backwards, f"the clock went back at the boundary: {backwards}"
            assert page.evaluate("() => window.__errors") == []
            assert page.evaluate("() => document.querySelector('video[data-test=video]').error") is None
            assert page.evaluate("() => document.querySelector('video[data-test=video]').webkitAudioDecodedByteCount") > 0
            expect(player).to_have_attribute("data-state", "playing")
            expect(page.get_by_test_id("playback-error")).to_have_count(0)

            # Still on after the boundary, and the camera's tone comes out.
            expect(control).to_have_attribute("data-muted", "false")
            heard = listen(page, 2000)
            print(f"\nunmuted at {clicked_at:.2f} s, heard after the boundary ({boundary:.2f} s): {heard}")
            assert heard["muted"] is False and tone(heard), heard
            shot(page, "playback-tracks")
            assert not problems, problems
    finally:
        if sim is not None:
            stop(sim)
        stop(serve)
