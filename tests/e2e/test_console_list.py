"""The channel list as a virtual list: with thousands of channels only the rows on screen exist in
the page, scrolling loads the next server page by cursor, a search replaces the list, and the
main thread's long tasks over the scrolling are written down."""

from __future__ import annotations

import json

from camgrid.registry.devices import new_device_row
from camgrid.sim.devices import generate
from camgrid.store.engine import make_engine, utcnow
from camgrid.store.tables import channels, devices
from tests.e2e.test_console import (  # noqa: F401  (db_url: a fixture)
    ARTIFACTS,
    browser_page,
    browser_skip,
    db_url,
    expect,
    field,
    running_platform,
)
from tests.e2e.test_live_processes import PASSWORD

pytestmark = browser_skip()

MANY = 5_000
SEED = "e2e-list"


def add_channels(db_url: str) -> None:
    engine = make_engine(db_url)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(devices.insert(), [{**new_device_row("34020000001180000099", name="big nvr"), "status": "online"}])
        conn.execute(channels.insert(), [
            {"id": f"340200000013100{n:05d}", "device_id": "34020000001180000099", "name": f"路口 {n:05d}",
             "status": "online" if n % 7 else "offline", "type_code": "131", "extra": {}, "updated_at": now}
            for n in range(MANY)])
    engine.dispose()


def test_thousands_of_channels_scroll_as_a_virtual_list(tmp_path, db_url):
    specs = generate(1, 1, seed=SEED, mix=False)
    with running_platform(tmp_path, db_url, specs, ["--seed", SEED]) as running:
        add_channels(db_url)
        base = f"http://127.0.0.1:{running['http']}"
        with browser_page(900, "list-failure") as (page, problems):
            page.goto(base + "/login")
            field(page, "username").fill("ops")
            field(page, "password").fill(PASSWORD)
            page.get_by_test_id("login-submit").click()
            loaded = page.get_by_test_id("loaded-count")
            expect(loaded).to_contain_text("已加载 200")
            rows = page.get_by_test_id("channel-table").locator(".el-table-v2__row")
            rendered = rows.count()
            assert 0 < rendered < 60, f"{rendered} rows in the page for 200 loaded"
            start = page.evaluate("() => { window.__longtasks = []; return performance.now() }")
            page.get_by_test_id("channel-table").hover()
            for total in (400, 600, 800):  # scrolling to the end of what is loaded fetches the next page
                for _ in range(40):
                    page.mouse.wheel(0, 1500)
                    page.wait_for_timeout(100)
                    if f"已加载 {total}" in loaded.inner_text():
                        break
                expect(loaded).to_contain_text(f"已加载 {total}")
            assert rows.count() < 60  # still only what is on screen
            tasks = page.evaluate("(t) => (window.__longtasks ?? []).filter((e) => e.start >= t)", start)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            (ARTIFACTS / "list-longtasks.json").write_text(json.dumps({"channels": MANY + 1, "loaded": 800,
                                                                      "longtasks": tasks}, indent=1))
            print(f"\nchannel list: {len(tasks)} long tasks while scrolling 600 more rows of {MANY + 1}: "
                  f"{[round(t['duration']) for t in tasks]}")
            field(page, "search").fill("路口 04321")
            expect(page.get_by_test_id("channel-name")).to_have_count(1)
            expect(loaded).to_contain_text("1")
            page.get_by_test_id("channel-name").first.click()
            expect(page).to_have_url(f"{base}/channels/34020000001310004321/live?device=34020000001180000099")
        # The live view's refusal for this unregistered device (409) is expected; script errors are not.
        assert not [p for p in problems if p.startswith("page error")], problems
