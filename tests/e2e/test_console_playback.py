"""The console's playback page in a real browser (issue 4): a channel with a record plan shows a
covered span on the day's timeline, a click on it plays the recording (the <video> clock
advances), and an export with a reason ends with download links that answer. A channel without
recordings says so and offers to record. Same processes and skips as test_console.py.
"""

from __future__ import annotations

import time
import urllib.request
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode


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


def test_operator_plays_back_a_recording_and_exports_it(platform):
    http, specs = platform["http"], platform["specs"]
    recorded, idle = specs[0], specs[1]
    token = call(http, "/api/v1/auth/login", body={"username": "ops", "password": PASSWORD})["access_token"]
    channel_id = wait_channel(http, token, recorded.id)
    idle_channel = wait_channel(http, token, idle.id)
    started = datetime.now(timezone.utc)
    plan = call(http, f"/api/v1/channels/{channel_id}/record-plan?device_id={recorded.id}", token,
                body={"mode": "continuous"}, method="PUT")
    assert plan["mode"] == "continuous"
    base = f"http://127.0.0.1:{http}"

    try:
        with browser_page(900, "failure-playback") as (page, problems):
            page.goto(base + "/login")
            field(page, "username").fill("ops")
            field(page, "password").fill(PASSWORD)
            page.get_by_test_id("login-submit").click()
            expect(page.get_by_test_id("channel-name")).to_have_count(2)

            # A channel that records nothing: the page says so, and offers a record plan.
            page.goto(f"{base}/channels/{idle_channel}/playback?device={idle.id}")
            expect(page.get_by_test_id("playback-empty")).to_contain_text("当天没有录像")
            expect(page.get_by_test_id("record-continuous")).to_be_visible()
            shot(page, "6-playback-empty")

            # The recorded channel, from the list's "recordings" button, once ~6 s are on disk.
            window = {"from": (started - timedelta(minutes=1)).isoformat(),
                      "to": (started + timedelta(minutes=5)).isoformat()}
            deadline = time.time() + 30
            while time.time() < deadline:
                spans = call(http, f"/api/v1/channels/{channel_id}/recordings?{urlencode(window)}", token)
                if spans["covered_s"] >= 6:
                    break
                time.sleep(0.5)
            assert spans["covered_s"] >= 6, spans
            page.get_by_test_id("back").click()  # the live view links back here ...
            expect(page.get_by_test_id("to-playback")).to_be_visible()
            page.goto(base + "/channels")  # ... and so does the list
            row = page.get_by_test_id("channel-table").locator(".el-table-v2__row", has_text=recorded.channels[0].name)
            row.get_by_test_id("playback").click()
            expect(page).to_have_url(f"{base}/channels/{channel_id}/playback?device={recorded.id}")
            span = page.get_by_test_id("timeline-span").first
            expect(span).to_be_visible(timeout=15_000)

            # A click on the span plays the recording: the video's clock advances, the wall clock shows.
            span.click()
            player = page.locator(".player")
            expect(player).to_have_attribute("data-state", "playing", timeout=15_000)
            t0 = video_time(page)
            deadline = time.time() + 10
            while video_time(page) < t0 + 1.0 and time.time() < deadline:
                time.sleep(0.2)
            assert video_time(page) >= t0 + 1.0, f"recorded video did not play: {t0} -> {video_time(page)}"
            today = datetime.now().strftime("%Y-%m-%d")
            expect(page.get_by_test_id("wall-clock")).to_contain_text(today)
            expect(page.get_by_test_id("playhead")).to_be_visible()
            shot(page, "7-playback")

            # Export one minute from here, with a reason; poll to done; the links answer.
            page.get_by_test_id("export-min-1").click()
            reason = page.locator("textarea[data-test=export-reason], [data-test=export-reason] textarea").first
            reason.fill("e2e")
            expect(page.get_by_test_id("export-submit")).to_be_disabled()
            reason.fill("e2e: incident 42 at the gate")
            page.get_by_test_id("export-submit").click()
            expect(page.get_by_test_id("export")).to_have_attribute("data-state", "done", timeout=30_000)
            links = page.get_by_test_id("export-link")
            expect(links.first).to_be_visible()
            shot(page, "8-export-done")
            for href in [links.nth(i).get_attribute("href") for i in range(links.count())]:
                with urllib.request.urlopen(href, timeout=30) as resp:
                    assert resp.status == 200 and resp.read(), href
            assert not problems, problems
    finally:
        call(http, f"/api/v1/channels/{channel_id}/record-plan?device_id={recorded.id}", token,
             body={"mode": "off"}, method="PUT")
