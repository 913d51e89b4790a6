"""Sound in the console (issue 3) in a real browser, against `camgrid serve` and three simulated
cameras, each its own `camgrid sim` process: one sends an AAC tone (passed through to the
browser), one G.711A (transcoded to AAC by the media node), one no sound at all (440 Hz tone with
an 880 Hz beep each second; the generated 320x240 test pattern as the picture).

The live view shows a sound control for a stream with sound and none for a video-only one; the
video starts muted and the browser hears nothing of it (a Web Audio analyser on the <video>
element measures silence); one click unmutes it and the analyser hears the camera's 440 Hz tone.
The choice is kept for the next channel in the tab. On the video wall at most one tile has sound:
unmuting a second tile mutes the first. Recorded playback: the AAC recording's sound is heard once
unmuted; a G.711 recording's sound is not given to the browser, and the page says so.
Same skips as test_console.py.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest

from camgrid.sim.devices import generate
from tests.e2e.test_console import (  # noqa: F401  (db_url: a fixture)
    browser_page,
    browser_skip,
    db_url,
    expect,
    field,
    Page,
    shot,
)
from tests.e2e.test_live_processes import PASSWORD, PLATFORM_ID, call, start, stop, wait_channel
from tests.signaling.test_sipp import camgrid, free_port

pytestmark = browser_skip()

SEED = "e2e-audio"
SOUNDS = ("aac", "g711a", "none")  # device serials 1, 2, 3


@pytest.fixture
def audio_platform(tmp_path, db_url):
    """`camgrid serve` with three cameras and an operator; one `camgrid sim` per camera, each
    with its own --audio."""
    specs = [generate(1, 1, seed=SEED, first_serial=n, mix=False)[0] for n in range(1, len(SOUNDS) + 1)]
    data = tmp_path / "data"
    common = ["--data-dir", str(data), "--database-url", db_url]
    devices_csv = tmp_path / "devices.csv"
    devices_csv.write_text("id,password,name\n" + "".join(f"{s.id},{s.password},{s.name}\n" for s in specs))
    r = camgrid("device", "import", *common, str(devices_csv))
    assert r.returncode == 0, r.stdout + r.stderr
    r = camgrid("admin", "create-user", *common, "--username", "ops", "--role", "operator", "--password-stdin",
                stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    http, sip = free_port(), free_port()
    env = dict(os.environ, CAMGRID__MEDIA__HTTP_PORT="0", CAMGRID__MEDIA__RTP_PORTS="[0, 0]",
               CAMGRID__MEDIA__HOST="127.0.0.1")
    with ExitStack() as procs:
        serve = start(["serve", *common, "--http-port", str(http), "--sip-port", str(sip), "--sip-id", PLATFORM_ID,
                       "--sip-host", "127.0.0.1"], "camgrid serving", env=env)
        procs.callback(stop, serve)
        for serial, sound in enumerate(SOUNDS, start=1):
            sim = start(["sim", "--server", f"127.0.0.1:{sip}", "--platform-id", PLATFORM_ID, "--devices", "1",
                         "--channels", "1", "--seed", SEED, "--first-serial", str(serial), "--keepalive", "5",
                         "--audio", sound], "sim: 1 devices", timeout=120)
            procs.callback(stop, sim)
        yield {"http": http, "specs": dict(zip(SOUNDS, specs, strict=True))}


# A Web Audio analyser on the page's live <video> (the element's sound then goes through it to the
# speakers). listen(ms) answers the loudest RMS seen over that time and the strongest frequency
# at that moment. Chromium gives a MediaElementAudioSourceNode silence while the element is muted.
ANALYSER = """(selector) => {
    const video = document.querySelector(selector)
    const ctx = new AudioContext()
    const analyser = ctx.createAnalyser()
    analyser.fftSize = 8192
    ctx.createMediaElementSource(video).connect(analyser)
    analyser.connect(ctx.destination)
    window.__listen = async (ms) => {
        await ctx.resume()
        const wave = new Float32Array(analyser.fftSize)
        const spectrum = new Float32Array(analyser.frequencyBinCount)
        let best = { rms: 0, peakHz: 0 }
        const until = performance.now() + ms
        while (performance.now() < until) {
            await new Promise((r) => setTimeout(r, 100))
            analyser.getFloatTimeDomainData(wave)
            const rms = Math.sqrt(wave.reduce((s, x) => s + x * x, 0) / wave.length)
            if (rms > best.rms) {
                analyser.getFloatFrequencyData(spectrum)
                let peak = 0
                for (let i = 1; i < spectrum.length; i++) if (spectrum[i] > spectrum[peak]) peak = i
                best = { rms, peakHz: (peak * ctx.sampleRate) / analyser.fftSize }
            }
        }
        return { ...best, state: ctx.state, muted: video.muted, decoded: video.webkitAudioDecodedByteCount }
    }
}"""


def listen(page: Page, ms: int = 2000) -> dict:
    return page.evaluate("(ms) => window.__listen(ms)", ms)


def tone(heard: dict) -> bool:
    """The camera's tone: clearly louder than silence, strongest at 440 Hz (or the 880 Hz beep)."""
    return heard["rms"] > 0.01 and any(abs(heard["peakHz"] - f) < 15 for f in (440, 880))


def tile(page: Page, index: int):
    return page.locator(f"[data-test=wall-tile][data-index='{index}']")


def muted_of(page: Page, index: int) -> bool:
    return page.evaluate(f"() => document.querySelector(\"[data-test=wall-tile][data-index='{index}'] video\").muted")


def test_sound_control_unmutes_one_player_at_a_time(audio_platform):
    http, specs = audio_platform["http"], audio_platform["specs"]
    token = call(http, "/api/v1/auth/login", body={"username": "ops", "password": PASSWORD})["access_token"]
    channels = {sound: wait_channel(http, token, spec.id) for sound, spec in specs.items()}
    base = f"http://127.0.0.1:{http}"
    started = datetime.now(timezone.utc)
    for sound in ("aac", "g711a"):  # recordings to play back at the end
        call(http, f"/api/v1/channels/{channels[sound]}/record-plan?device_id={specs[sound].id}", token,
             body={"mode": "continuous"}, method="PUT")

    with browser_page(860, "failure-audio") as (page, problems):
        page.goto(base + "/login")
        field(page, "username").fill("ops")
        field(page, "password").fill(PASSWORD)
        page.get_by_test_id("login-submit").click()
        expect(page).to_have_url(base + "/channels")

        # A video-only camera: no sound control.
        page.goto(f"{base}/channels/{channels['none']}/live?device={specs['none'].id}")
        expect(page.locator(".live-video")).to_have_attribute("data-state", "playing", timeout=20_000)
        expect(page.get_by_test_id("audio")).to_have_count(0)
        expect(page.get_by_test_id("audio-unavailable")).to_have_count(0)

        # The AAC camera: the control, muted, and the browser hears nothing yet ...
        page.get_by_test_id("back").click()
        page.get_by_test_id("channel-name").filter(has_text=specs["aac"].channels[0].name).click()
        expect(page.locator(".live-video")).to_have_attribute("data-state", "playing", timeout=20_000)
        control = page.get_by_test_id("audio")
        expect(control).to_have_attribute("data-muted", "true")
        expect(control).to_have_attribute("data-codec", "aac")
        expect(control).to_contain_text("AAC")
        page.evaluate(ANALYSER, "video[data-test=video]")
        muted = listen(page, 1500)
        assert muted["muted"] is True and muted["rms"] < 0.001, muted
        shot(page, "audio-1-live-muted")

        # ... one click: unmuted, and the camera's tone comes out.
        page.get_by_test_id("audio-toggle").click()
        expect(control).to_have_attribute("data-muted", "false")
        heard = listen(page, 2500)
        print(f"\nAAC live, unmuted: {heard}")
        assert heard["muted"] is False and heard["state"] == "running", heard
        assert heard["decoded"] > 0 and tone(heard), heard
        # The volume slider sets the element's volume (and is kept for the session).
        page.get_by_test_id("audio-volume").fill("40")
        assert page.evaluate("() => document.querySelector('video[data-test=video]').volume") == pytest.approx(0.4)
        shot(page, "audio-2-live-unmuted")

        # The next channel in this tab (the G.711A camera, transcoded): sound on, as chosen.
        page.get_by_test_id("back").click()
        page.get_by_test_id("channel-name").filter(has_text=specs["g711a"].channels[0].name).click()
        expect(page.locator(".live-video")).to_have_attribute("data-state", "playing", timeout=20_000)
        expect(control).to_have_attribute("data-codec", "g711a")
        expect(control).to_contain_text("G.711A")
        expect(control).to_have_attribute("data-muted", "false", timeout=10_000)
        page.evaluate(ANALYSER, "video[data-test=video]")
        heard = listen(page, 2500)
        print(f"G.711A live (transcoded), remembered unmuted: {heard}")
        assert heard["muted"] is False and tone(heard), heard
        assert page.evaluate("() => document.querySelector('video[data-test=video]').volume") == pytest.approx(0.4)

        # The wall: the three cameras in tiles 0-2; sound in one tile at a time.
        page.evaluate("""(tiles) => {
            const key = `camgrid.wall.ops`
            const layout = { split: 4, selected: 0, tiles: [...tiles, ...Array(13).fill(null)] }
            localStorage.setItem(key, JSON.stringify(layout))
        }""", [{"id": channels[s], "deviceId": specs[s].id, "name": specs[s].channels[0].name, "status": "online"}
               for s in SOUNDS])
        page.get_by_test_id("nav-wall").click()
        for i in range(3):
            expect(tile(page, i)).to_have_attribute("data-state", "playing", timeout=30_000)
        expect(tile(page, 0).get_by_test_id("audio")).to_have_attribute("data-muted", "true")
        expect(tile(page, 1).get_by_test_id("audio")).to_have_attribute("data-muted", "true")
        expect(tile(page, 2).get_by_test_id("audio")).to_have_count(0)
        assert [muted_of(page, i) for i in range(3)] == [True, True, True]

        tile(page, 0).get_by_test_id("audio-toggle").click()
        expect(tile(page, 0).get_by_test_id("audio")).to_have_attribute("data-muted", "false")
        assert [muted_of(page, i) for i in range(3)] == [False, True, True]
        tile(page, 1).get_by_test_id("audio-toggle").click()  # the other one: the first goes quiet
        expect(tile(page, 1).get_by_test_id("audio")).to_have_attribute("data-muted", "false")
        expect(tile(page, 0).get_by_test_id("audio")).to_have_attribute("data-muted", "true")
        assert [muted_of(page, i) for i in range(3)] == [True, False, True]
        page.evaluate(ANALYSER, "[data-test=wall-tile][data-index='1'] video")
        heard = listen(page, 2500)
        print(f"wall tile 1 (G.711A), unmuted: {heard}")
        assert tone(heard), heard
        shot(page, "audio-3-wall")
        tile(page, 1).get_by_test_id("audio-toggle").click()  # and off again
        expect(tile(page, 1).get_by_test_id("audio")).to_have_attribute("data-muted", "true")
        assert [muted_of(page, i) for i in range(3)] == [True, True, True]

        # English.
        page.get_by_test_id("language").click()
        expect(tile(page, 0).get_by_test_id("audio-toggle")).to_have_attribute("title", "Turn the sound on (other players are muted)")


        # The recordings have the camera's audio from their first segment on (the recorder waited
        # for the audio the stream's map announced), and the index says so.
        window = {"from": (started - timedelta(minutes=1)).isoformat(),
                  "to": (datetime.now(timezone.utc) + timedelta(minutes=1)).isoformat(), "include_segments": "true"}
        for sound in ("aac", "g711a"):
            items = call(http, f"/api/v1/channels/{channels[sound]}/recordings?{urlencode(window)}", token)["items"]
            assert items and [i["audio_codec"] for i in items] == [sound] * len(items), items

        # Playback: the AAC recording has sound to turn on; G.711 is kept in recordings but not
        # given to the browser (MSE cannot play it), and the page says so.
        page.get_by_test_id("nav-channels").click()
        page.get_by_test_id("channel-name").filter(has_text=specs["aac"].channels[0].name).click()
        page.get_by_test_id("to-playback").click()
        page.get_by_test_id("timeline-span").first.click()
        expect(page.locator(".player")).to_have_attribute("data-state", "playing", timeout=15_000)
        control = page.get_by_test_id("audio")
        expect(control).to_have_attribute("data-muted", "true")
        page.evaluate(ANALYSER, "video[data-test=video]")
        assert listen(page, 1000)["rms"] < 0.001
        page.get_by_test_id("audio-toggle").click()
        expect(control).to_have_attribute("data-muted", "false")
        heard = listen(page, 2500)
        print(f"AAC recording, unmuted: {heard}")
        assert heard["muted"] is False and tone(heard), heard
        shot(page, "audio-4-playback")
        page.goto(f"{base}/channels/{channels['g711a']}/playback?device={specs['g711a'].id}")
        page.get_by_test_id("timeline-span").first.click()
        expect(page.locator(".player")).to_have_attribute("data-state", "playing", timeout=15_000)
        expect(page.get_by_test_id("audio-unavailable")).to_contain_text("G.711A")
        expect(page.get_by_test_id("audio")).to_have_count(0)

        assert not problems, problems
