"""The console's device tree and live video wall in a real browser (issue 4), against `camgrid
serve` and `camgrid sim` with 16 cameras spread over two districts (`--districts 2`: civil codes,
region items, a business group with a virtual organisation per district) sending small footage
(../shared/footage, 320x240; the generated test pattern when it is absent).

From the landing page a new operator watches a named camera in three clicks: (1) "视频墙" in the
menu, (2) the tree's search box (type the name), (3) a double-click on the camera found: it plays
in the selected tile. (The channel list is as short: click its search box, type, click the row.)

Then: the tree shows regions and groups with online/total counts; a channel dragged onto a tile
plays there; 16 tiles are filled and every tile's video clock advances; the long tasks of ~10 s
of 16-tile playback are written to test-artifacts/console/wall-longtasks.json (with screenshots);
PTZ on the selected tile reaches the simulated camera; a closed tile stops its stream; the layout
survives leaving the page; a refused stream is shown in words with "try again".
Same processes and skips as test_console.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from camgrid.gb28181.ptz import PtzCommand, encode
from camgrid.sim.devices import generate
from tests.e2e.test_console import (  # noqa: F401  (db_url: a fixture)
    ARTIFACTS,
    browser_page,
    browser_skip,
    db_url,
    expect,
    field,
    Page,
    running_platform,
    shot,
)
from tests.e2e.test_live_processes import PASSWORD, call

pytestmark = browser_skip()


FOOTAGE_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "footage"
SMALL_FOOTAGE = ("highway-cctv-osd-320x240.avi", "traffic-320x240.avi")
TILES = 16
SEED = "e2e-wall"


@pytest.fixture
def wall_platform(tmp_path, db_url):
    specs = generate(TILES, 1, seed=SEED, districts=2)  # as `camgrid sim --devices 16 --districts 2` makes them
    footage = next((FOOTAGE_DIR / name for name in SMALL_FOOTAGE if (FOOTAGE_DIR / name).is_file()), None)
    stream = ["--stream", str(footage), "--cache-dir", str(tmp_path / "cache")] if footage else []
    with running_platform(tmp_path, db_url, specs, ["--seed", SEED, "--keepalive", "5", "--districts", "2",
                                                    *stream]) as running:
        yield running


def wait_all_channels(http: int, token: str, n: int, timeout: float = 40) -> list[dict]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        items = call(http, "/api/v1/channels?limit=100&status=online", token)["items"]
        if len(items) == n:
            return items
        time.sleep(0.5)
    raise AssertionError(f"{len(items)} of {n} channels online")


def tile(page: Page, index: int):
    return page.locator(f"[data-test=wall-tile][data-index='{index}']")


def tile_times(page: Page) -> list[float]:
    return page.evaluate("() => [...document.querySelectorAll('[data-test=wall-tile] video')].map((v) => v.currentTime)")


def tree_node(page: Page, node_id: str):
    return page.locator(f"[data-test=tree-node][data-node='{node_id}']")


def test_operator_fills_a_16_tile_wall_from_the_tree(wall_platform):
    http, specs, sim_output = wall_platform["http"], wall_platform["specs"], wall_platform["sim_output"]
    token = call(http, "/api/v1/auth/login", body={"username": "ops", "password": PASSWORD})["access_token"]
    channels = {c["id"]: c for c in wait_all_channels(http, token, TILES)}
    named = specs[4].channels[0]  # "sim-ipc-5 通道1"
    base = f"http://127.0.0.1:{http}"

    with browser_page(900, "failure-wall") as (page, problems):
        page.goto(base + "/login")
        field(page, "username").fill("ops")
        field(page, "password").fill(PASSWORD)
        page.get_by_test_id("login-submit").click()
        expect(page).to_have_url(base + "/channels")

        # Three clicks from the landing page to a named camera playing live.
        page.get_by_test_id("nav-wall").click()  # 1
        expect(page.get_by_test_id("wall-grid")).to_be_visible()
        field(page, "tree-search").click()  # 2
        page.keyboard.type("ipc-5 ")
        found = page.get_by_test_id("tree-found").get_by_test_id("tree-channel")
        expect(found).to_have_count(1)
        expect(found).to_have_text(named.name)
        found.dblclick()  # 3
        expect(tile(page, 0)).to_have_attribute("data-channel", named.id)
        expect(tile(page, 0)).to_have_attribute("data-state", "playing", timeout=20_000)
        field(page, "tree-search").fill("")

        # The tree by region: 34 and 3402 hold one child each and open by themselves; two
        # districts (named by the devices' catalogs) of 8 channels, all online.
        for district in ("340201", "340202"):
            expect(tree_node(page, district)).to_contain_text("模拟区")
            expect(tree_node(page, district).get_by_test_id("node-count")).to_have_text("8/8")
        expect(tree_node(page, "34").get_by_test_id("node-count")).to_have_text("16/16")
        expect(tree_node(page, "340202")).to_be_visible()
        shot(page, "9-tree-regions")
        # ... and by group: the business group, its two virtual organisations.
        page.get_by_test_id("tree-by-group").click()
        expect(tree_node(page, "34020000002151000000").get_by_test_id("node-count")).to_have_text("16/16")
        tree_node(page, "34020000002151000000").click()
        for vorg in ("34020000002161000001", "34020000002161000002"):
            expect(tree_node(page, vorg)).to_contain_text("片区")
            expect(tree_node(page, vorg).get_by_test_id("node-count")).to_have_text("8/8")
        # The status filter: nothing is offline, so no node is left.
        page.get_by_test_id("tree-status").get_by_text("离线").click()
        expect(page.get_by_test_id("tree-node")).to_have_count(0)
        page.get_by_test_id("tree-status").get_by_text("全部").click()
        page.get_by_test_id("tree-by-region").click()

        # Open both districts: 16 channels to drag or double-click.
        for district in ("340201", "340202"):
            tree_node(page, district).click()
        leaves = page.get_by_test_id("channel-tree").get_by_test_id("tree-channel")
        expect(leaves).to_have_count(TILES)
        ids = [leaves.nth(i).get_attribute("data-channel") for i in range(TILES)]
        assert set(ids) == set(channels), ids

        # Drag a channel onto the second tile: it plays there.
        dragged = next(i for i in ids if i != named.id)
        # Playwright's emulated HTML5 drag is lost now and then on a loaded machine (the drop event
        # never fires: the tile stays empty); the drop itself is what is tested, so drag again.
        for attempt in range(3):
            page.locator(f"[data-test=tree-channel][data-channel='{dragged}']").drag_to(tile(page, 1))
            try:
                expect(tile(page, 1)).to_have_attribute("data-channel", dragged, timeout=4000)
                break
            except AssertionError:
                if attempt == 2:
                    raise
        expect(tile(page, 1)).to_have_attribute("data-state", "playing", timeout=20_000)

        # 16 tiles: select each free tile and double-click the next channel.
        page.get_by_test_id("split-16").click()
        expect(page.get_by_test_id("wall-tile")).to_have_count(TILES)
        rest = iter(i for i in ids if i not in (named.id, dragged))
        for index in range(2, TILES):
            tile(page, index).click()
            page.locator(f"[data-test=tree-channel][data-channel='{next(rest)}']").dblclick()
        for index in range(TILES):
            expect(tile(page, index)).to_have_attribute("data-state", "playing", timeout=60_000)
        on_wall = [tile(page, i).get_attribute("data-channel") for i in range(TILES)]
        assert sorted(on_wall) == sorted(channels), on_wall
        expect(page.get_by_test_id("wall-playing")).to_contain_text("16")

        # Every tile's video clock advances (the browser decodes all 16).
        start = tile_times(page)
        deadline = time.time() + 20
        while time.time() < deadline and not all(b > a for a, b in zip(start, tile_times(page), strict=True)):
            time.sleep(0.5)
        assert all(b > a for a, b in zip(start, tile_times(page), strict=True)), (start, tile_times(page))

        # ~10 s of 16-tile playback: the main thread's long tasks (over 50 ms) in that window.
        window_start = page.evaluate("() => performance.now()")
        before = tile_times(page)
        page.wait_for_timeout(10_000)
        window_ms = page.evaluate("() => performance.now()") - window_start
        after = tile_times(page)
        observed = page.evaluate("() => window.__longtasks !== null")
        tasks = page.evaluate("(t) => (window.__longtasks ?? []).filter((e) => e.start >= t)", window_start)
        advanced = [round(b - a, 2) for a, b in zip(before, after, strict=True)]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "wall-longtasks.json").write_text(json.dumps({
            "tiles": TILES, "window_ms": round(window_ms), "video_advanced_s": advanced,
            "longtasks": tasks, "longtask_total_ms": round(sum(e["duration"] for e in tasks)),
        }, indent=1))
        print(f"\n16-tile wall: {len(tasks)} long tasks in {window_ms / 1000:.1f} s "
              f"({sum(e['duration'] for e in tasks):.0f} ms in all); video advanced per tile: {advanced}")
        shot(page, "10-wall-16")
        assert observed, "the browser did not observe long tasks: the measurement did not run"
        assert all(a > 0 for a in advanced), f"a tile stalled during the measurement: {advanced}"

        # PTZ on the selected tile reaches that camera: hold "left", release.
        steered = on_wall[5]
        tile(page, 5).click()
        expect(page.get_by_test_id("ptz-target")).to_contain_text(channels[steered]["name"])
        page.get_by_test_id("ptz-left").hover()
        page.mouse.down()
        page.wait_for_timeout(300)
        page.mouse.up()
        expect(page.get_by_test_id("ptz")).to_have_attribute("data-last-sent", "stop")
        move_hex, stop_hex = encode(PtzCommand.move(pan=-1, speed=128)), encode(PtzCommand.stop())
        assert sim_output.wait_for(lambda line: line == f"PTZ {steered} {stop_hex}", timeout=5), sim_output.lines[-20:]
        assert [x for x in sim_output.lines if x.startswith("PTZ ")] == [f"PTZ {steered} {move_hex}",
                                                                         f"PTZ {steered} {stop_hex}"]

        # Full screen: the wall, then one tile.
        page.get_by_test_id("wall-fullscreen").click()
        page.wait_for_function("() => document.fullscreenElement?.dataset.test === 'wall-grid'")
        page.evaluate("() => document.exitFullscreen()")
        tile(page, 3).get_by_test_id("tile-fullscreen").click()
        page.wait_for_function("() => document.fullscreenElement?.dataset.index === '3'")
        page.evaluate("() => document.exitFullscreen()")
        page.wait_for_function("() => document.fullscreenElement === null")

        # Closing a tile stops its stream: no video source, the tile is free again.
        tile(page, 15).get_by_test_id("tile-close").click()
        expect(tile(page, 15)).to_have_attribute("data-state", "empty")
        assert page.evaluate("() => document.querySelector(\"[data-test=wall-tile][data-index='15'] video\").src") == ""
        expect(page.get_by_test_id("wall-playing")).to_contain_text("15")

        # The layout survives leaving the page and coming back; the tiles play again.
        page.get_by_test_id("nav-channels").click()
        expect(page.get_by_test_id("channel-name").first).to_be_visible()
        page.get_by_test_id("nav-wall").click()
        expect(page.get_by_test_id("wall-tile")).to_have_count(TILES)
        assert [tile(page, i).get_attribute("data-channel") for i in range(TILES)] == [*on_wall[:15], ""]
        expect(tile(page, 0)).to_have_attribute("data-state", "playing", timeout=20_000)

        # A stream the API refuses (a channel no longer in the registry) says so, with "try again".
        page.evaluate("""() => {
            const key = Object.keys(localStorage).find((k) => k.startsWith('camgrid.wall.'))
            const layout = JSON.parse(localStorage.getItem(key))
            layout.tiles[15] = { id: '34020000001319999999', deviceId: '34020000001329999999', name: 'gone', status: 'online' }
            localStorage.setItem(key, JSON.stringify(layout))
        }""")
        page.reload()
        expect(tile(page, 15)).to_have_attribute("data-state", "failed", timeout=20_000)
        expect(tile(page, 15).get_by_test_id("tile-error")).to_contain_text("not in the registry")
        expect(tile(page, 15).get_by_test_id("tile-retry")).to_be_visible()
        shot(page, "11-wall-refused")

        # The device tree page: a click on a channel plays it beside the tree (the wall stops).
        page.get_by_test_id("nav-tree").click()
        expect(page.get_by_test_id("tree-pick-hint")).to_be_visible()
        tree_node(page, channels[dragged]["civil_code"]).click()
        page.get_by_test_id("channel-tree").locator(f"[data-test=tree-channel][data-channel='{dragged}']").click()
        expect(page.get_by_test_id("tree-selected")).to_have_text(channels[dragged]["name"])
        expect(page.locator(".live-video")).to_have_attribute("data-state", "playing", timeout=20_000)
        page.get_by_test_id("language").click()
        expect(page.get_by_test_id("nav-wall")).to_have_text("Video wall")
        expect(page.get_by_test_id("tree-by-region")).to_contain_text("By region")
        shot(page, "12-tree-page-english")

        unexpected = [p for p in problems if "404" not in p]  # the refused stream's request is logged
        assert not unexpected, problems
