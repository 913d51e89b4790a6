"""The console's device-storage playback in a real browser (issue 3, playback): the page lists the
simulated camera's own recordings of the day (RecordInfo), a click on one plays it from the
device (Playback INVITE: the <video> clock advances, the shown wall-clock time is the record's
start), a click further along the timeline is a seek on the device (MANSRTSP, no new INVITE) and
the shown time follows it (the node's position marks, not the player's forward-only clock),
pause holds the picture, a speed goes to the device and the player, the end of a range plays out
and says so; a day without recordings says so. Same processes and skips as test_console.py.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from urllib.parse import urlencode

import pytest

from tests.e2e.test_console import (  # noqa: F401  (db_url, platform: fixtures)
    browser_page,
    browser_skip,
    db_url,
    expect,
    field,
    platform,
    shot,
    video_time,
)
from tests.e2e.test_live_processes import PASSWORD, call, wait_channel

pytestmark = browser_skip()

SEEK_MIN_S = 300  # the seek goes at least this far: a position that did not follow it is minutes off


def shown_wall(page) -> datetime:
    text = page.get_by_test_id("wall-clock").inner_text().strip()
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S")


def local(iso: str) -> datetime:
    """An API time as the browser shows it: local wall-clock time, naive."""
    return datetime.fromisoformat(iso).astimezone().replace(tzinfo=None)


def test_operator_plays_a_recording_from_the_device_and_seeks_in_it(platform):  # noqa: F811
    http, specs, sim_output = platform["http"], platform["specs"], platform["sim_output"]
    camera = specs[0]
    token = call(http, "/api/v1/auth/login", body={"username": "ops", "password": PASSWORD})["access_token"]
    channel_id = wait_channel(http, token, camera.id)
    base = f"http://127.0.0.1:{http}"

    # Today's records on the simulated device (half-hour files, about one in ten missing): the
    # longest one, long enough to seek minutes into it.
    midnight = datetime.now().astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    query = urlencode({"from": midnight.isoformat(), "to": (midnight + timedelta(days=1)).isoformat(), "device_id": camera.id})
    listed = call(http, f"/api/v1/channels/{channel_id}/device-records?{query}", token)["result"]["records"]
    records = [r for r in listed if local(r["start"]) >= midnight.replace(tzinfo=None)]
    longest = max(records, key=lambda r: local(r["end"]) - local(r["start"]), default=None)
    if longest is None or (local(longest["end"]) - local(longest["start"])).total_seconds() < 2.5 * SEEK_MIN_S:
        pytest.skip("too early in the day: the simulated device has no record long enough to seek in yet")
    start, end = local(longest["start"]), local(longest["end"])

    with browser_page(900, "failure-device-playback") as (page, problems):
        page.goto(base + "/login")
        field(page, "username").fill("ops")
        field(page, "password").fill(PASSWORD)
        page.get_by_test_id("login-submit").click()
        expect(page.get_by_test_id("channel-name")).to_have_count(2)

        # From the platform's recordings page, the link to the device's own storage.
        page.goto(f"{base}/channels/{channel_id}/playback?device={camera.id}")
        page.get_by_test_id("to-device-playback").click()
        expect(page).to_have_url(f"{base}/channels/{channel_id}/device-playback?device={camera.id}")
        expect(page.get_by_test_id("records-summary")).to_be_visible(timeout=20_000)
        items = page.get_by_test_id("device-record")
        expect(items).to_have_count(len(listed))
        expect(page.get_by_test_id("timeline-span").first).to_be_visible()

        # A click on the record plays it from its start, from the device.
        items.filter(has_text=f"{start:%H:%M:%S} – {end:%H:%M:%S}").first.click()
        player = page.locator(".player")
        expect(player).to_have_attribute("data-state", "playing", timeout=20_000)
        t0 = video_time(page)
        deadline = time.time() + 10
        while video_time(page) < t0 + 1.0 and time.time() < deadline:
            time.sleep(0.2)
        assert video_time(page) >= t0 + 1.0, "the device's footage did not play"
        at_start = shown_wall(page)
        assert timedelta(0) <= at_start - start <= timedelta(seconds=15), (at_start, start)
        expect(page.get_by_test_id("device-range")).to_contain_text(f"{start:%H:%M:%S}")
        shot(page, "device-playback-1-start")

        # A click further along the same record's bar: a seek on the device, no new INVITE.
        invites_before = len([line for line in sim_output.lines if line.startswith(f"media offered on {channel_id}")])
        track = page.locator(".timeline .track").bounding_box()
        day_s = 86400  # the page shows today: local midnight to the next (no DST change in the test zone)
        aim = start + timedelta(seconds=2 * SEEK_MIN_S)
        x = track["x"] + track["width"] * (aim - midnight.replace(tzinfo=None)).total_seconds() / day_s
        page.mouse.click(x, track["y"] + track["height"] / 2)
        seek_lines = sim_output.wait_for(lambda line: line.startswith(f"media seek on {channel_id} to "), timeout=10)
        assert seek_lines, sim_output.lines[-20:]
        seconds = float(re.search(r"to ([0-9.]+) s", seek_lines[-1]).group(1))
        target = start + timedelta(seconds=seconds)
        assert seconds >= SEEK_MIN_S, seconds
        sought = time.time()
        # Past the few seconds in which the page shows the target itself: what it shows now comes
        # from the node's mark for the seek and the player's clock since.
        page.wait_for_timeout(7000)
        shown = shown_wall(page)
        since = time.time() - sought
        assert timedelta(seconds=-2) <= shown - target <= timedelta(seconds=since + 2), (shown, target, since)
        assert len([line for line in sim_output.lines if line.startswith(f"media offered on {channel_id}")]) == invites_before
        expect(page.get_by_test_id("playhead")).to_be_visible()
        shot(page, "device-playback-2-seek")

        # Pause holds the picture and the time shown; resume plays on.
        page.get_by_test_id("pause").click()
        expect(player).to_have_attribute("data-state", "paused")
        held, held_time = shown_wall(page), video_time(page)
        page.wait_for_timeout(1500)
        assert shown_wall(page) == held and abs(video_time(page) - held_time) < 0.3
        page.get_by_test_id("resume").click()
        expect(player).to_have_attribute("data-state", "playing", timeout=10_000)

        # 2x: the device is asked for it, the player plays at it.
        page.get_by_test_id("speed").get_by_text("2×").click()
        deadline = time.time() + 10
        while time.time() < deadline:
            live = call(http, "/api/v1/live", token)["items"]
            if any(s["channel_id"] == channel_id and s.get("speed") == 2.0 for s in live):
                break
            time.sleep(0.3)
        assert any(s["channel_id"] == channel_id and s.get("speed") == 2.0 for s in live), live
        page.wait_for_function("() => document.querySelector('video[data-test=video]').playbackRate === 2", timeout=5000)

        # At 8x, a click near the end of the day's last record (it ends now): a new session to its
        # end, at 8x too, which the device plays to the end (MediaStatus 121): the page says so,
        # the last picture stays.
        page.get_by_test_id("speed").get_by_text("8×").click()
        page.wait_for_function("() => document.querySelector('video[data-test=video]').playbackRate === 8", timeout=5000)
        last = page.get_by_test_id("timeline-span").last.bounding_box()
        page.mouse.click(last["x"] + last["width"] - 1, last["y"] + last["height"] / 2)
        try:
            expect(player).to_have_attribute("data-state", "ended", timeout=40_000)
        except AssertionError as exc:  # the player, the stream and the device at that moment, for whoever reads a failure
            sessions = [s for s in call(http, "/api/v1/live", token)["items"] if s["channel_id"] == channel_id]
            element = page.evaluate("""() => { const v = document.querySelector('video[data-test=video]');
                const b = []; for (let i = 0; i < v.buffered.length; i++) b.push([v.buffered.start(i), v.buffered.end(i)]);
                return {t: v.currentTime, duration: v.duration, readyState: v.readyState, paused: v.paused, buffered: b} }""")
            media = [line for line in sim_output.lines if line.startswith("media")][-6:]
            raise AssertionError(f"{exc}\nsessions {sessions}\nvideo {element}\nsim {media}") from None
        assert page.evaluate("() => document.querySelector('video[data-test=video]').videoWidth") > 0
        shot(page, "device-playback-3-ended")

        # A day the device keeps nothing of (it keeps 7 days) says so.
        empty_day = (datetime.now() - timedelta(days=12)).strftime("%Y-%m-%d")
        page.goto(f"{base}/channels/{channel_id}/device-playback?device={camera.id}&day={empty_day}")
        expect(page.get_by_test_id("records-empty")).to_be_visible(timeout=20_000)
        expect(page.get_by_test_id("records-empty")).to_contain_text("设备当天没有录像")
        shot(page, "device-playback-4-empty")
        assert not [p for p in problems if "page error" in p], problems
