"""The console's maintenance, video-quality and map pages in a real browser, against
`camgrid serve` and `camgrid sim` with two cameras (same processes and skips as test_console.py):

- an administrator creates a maintenance team on the work orders page's teams tab;
- the map: the simulated cameras' points appear (their catalogs carry coordinates), the header
  and the health page count them as located, a click on a point opens it live;
- video quality: a patrol round started from the patrol page runs and finishes with its counts;
  a channel diagnosed from its device's page shows its result and history;
- work orders: the simulator stops, an operator opens a work order from a device's offline alarm
  (the alarm drawer's button) and assigns it to the team and a technician; the technician (role
  maintainer) lands on "my work orders", starts it (a step another person took first answers a
  readable 409), records the repair; the simulator comes back, the platform sees the device online
  and closes the order by itself: the open drawer shows "closed" without a reload;
- the map with 100,000 more channels: clusters, zooming in and out, and the main thread's long
  tasks meanwhile, written to test-artifacts/console/maint/map-longtasks.json.

Screenshots go to test-artifacts/console/maint/.
"""

from __future__ import annotations

import json
import random
import time

import pytest

from camgrid.governance.users import create_user
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
    Lines,
    Page,
    running_platform,
)
from tests.e2e.test_live_processes import PASSWORD, PLATFORM_ID, call, start, stop, wait_channel

pytestmark = browser_skip()


MAINT_ARTIFACTS = ARTIFACTS / "maint"
SEED = "e2e-maint"
TEAM = "维修一组"
MANY = 100_000


@pytest.fixture
def maint_platform(tmp_path, db_url, monkeypatch):
    # A stopped simulator shows offline soon (as in test_console_ops.py); a diagnosis reads 2 s.
    monkeypatch.setenv("CAMGRID__HEALTH__KEEPALIVE_INTERVAL_S", "2")
    monkeypatch.setenv("CAMGRID__HEALTH__KEEPALIVE_COUNT", "3")
    monkeypatch.setenv("CAMGRID__HEALTH__SWEEP_INTERVAL_S", "0.5")
    monkeypatch.setenv("CAMGRID__VQD__SAMPLE_S", "2")
    specs = generate(2, 1, seed=SEED, mix=False)
    with running_platform(tmp_path, db_url, specs, ["--seed", SEED, "--keepalive", "1"]) as running:
        engine = make_engine(db_url)
        create_user(engine, "tech", PASSWORD, "maintainer")
        create_user(engine, "boss", PASSWORD, "admin")
        engine.dispose()
        yield {**running, "db_url": db_url}


def shot(page: Page, name: str) -> None:
    MAINT_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(MAINT_ARTIFACTS / f"{name}.png"), full_page=True)


def login(page: Page, base: str, username: str) -> None:
    page.goto(base + "/login")
    field(page, "username").fill(username)
    field(page, "password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("current-user")).to_contain_text(username)


def textarea(page: Page, test_id: str):
    return page.locator(f"textarea[data-test={test_id}], [data-test={test_id}] textarea").first


def test_work_orders_video_quality_and_map(maint_platform):
    http, sip, specs = maint_platform["http"], maint_platform["sip"], maint_platform["specs"]
    token = call(http, "/api/v1/auth/login", body={"username": "ops", "password": PASSWORD})["access_token"]
    channels_of = {spec.id: wait_channel(http, token, spec.id) for spec in specs}
    base = f"http://127.0.0.1:{http}"
    MAINT_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    sim2 = []
    try:
        with browser_page(900, "maint/failure") as (page, problems):
            _team(page, base)
            _map(page, base, channels_of)
            _video_quality(page, base, specs, channels_of)
            _work_order(page, base, http, sip, token, specs, maint_platform, sim2)
            _many_points(page, base, maint_platform["db_url"])
            errors = [p for p in problems if "Content Security Policy" in p or "page error" in p]
            assert not errors, problems
            if problems:
                print("browser console errors:\n  " + "\n  ".join(problems))
    finally:
        for proc in sim2:
            stop(proc)


def _team(page: Page, base: str) -> None:
    login(page, base, "boss")
    page.get_by_test_id("nav-work-orders").click()
    expect(page).to_have_url(base + "/work-orders")
    expect(page.get_by_test_id("order-empty")).to_contain_text("暂无工单")
    page.get_by_role("tab", name="维修班组").click()
    expect(page.get_by_test_id("team-table")).to_contain_text("还没有维修班组")
    page.get_by_test_id("team-create").click()
    field(page, "team-name-input").fill(TEAM)
    field(page, "team-contact-input").fill("138 0000 0000")
    field(page, "team-members-input").fill("tech, nobody-such")
    page.get_by_test_id("team-save").click()
    expect(page.get_by_test_id("team-error")).to_contain_text("nobody-such")  # the API's own words
    field(page, "team-members-input").fill("tech")
    page.get_by_test_id("team-save").click()
    expect(page.get_by_test_id("team-name")).to_have_text([TEAM])
    expect(page.get_by_test_id("team-members")).to_have_text(["tech"])
    shot(page, "1-teams")


def _map(page: Page, base: str, channels_of: dict[str, str]) -> None:
    page.get_by_test_id("nav-map").click()
    expect(page).to_have_url(base + "/map")
    located = page.get_by_test_id("map-located")
    expect(located).to_have_attribute("data-located", "2")
    expect(located).to_contain_text("2 / 2")
    expect(located).to_contain_text("100.0 %")
    points = page.get_by_test_id("map-point")
    expect(points).to_have_count(2, timeout=15_000)  # fitted to the two cameras: apart, not a cluster
    expect(page.get_by_test_id("map-in-view")).to_have_attribute("data-total", "2")
    # Zoomed out over the country, two channels are still shown as themselves (a cell of few is opened).
    page.evaluate("() => window.__camgridMap.setZoom(4)")
    expect(page.get_by_test_id("map")).to_have_attribute("data-zoom", "4", timeout=10_000)
    expect(points).to_have_count(2)
    expect(page.get_by_test_id("map-cluster")).to_have_count(0)
    page.evaluate("() => window.__camgridMap.setZoom(10)")
    expect(page.get_by_test_id("map")).to_have_attribute("data-zoom", "10", timeout=10_000)
    shot(page, "2-map-points")
    # The health page shows the same figure beside the online counts (target 100 %).
    page.get_by_test_id("nav-health").click()
    expect(page.get_by_test_id("located-on-map")).to_have_text("2 / 2")
    page.get_by_test_id("located-on-map").click()
    expect(page).to_have_url(base + "/map")
    expect(points).to_have_count(2, timeout=15_000)
    wanted = points.first.get_attribute("data-id")
    assert wanted in channels_of.values(), wanted
    points.first.click()
    device = next(d for d, c in channels_of.items() if c == wanted)
    expect(page).to_have_url(f"{base}/channels/{wanted}/live?device={device}")
    expect(page.locator(".live-video")).to_have_attribute("data-state", "playing", timeout=20_000)


def _video_quality(page: Page, base: str, specs, channels_of: dict[str, str]) -> None:
    page.get_by_test_id("nav-vqd").click()
    expect(page).to_have_url(base + "/vqd")
    expect(page.get_by_test_id("vqd-progress")).to_have_attribute("data-running", "false")
    page.get_by_test_id("vqd-run").click()
    expect(page.get_by_test_id("vqd-message")).to_contain_text("巡检已开始")
    # A second start while the round runs: the API's 409 in words.
    page.get_by_test_id("vqd-run").click()
    expect(page.get_by_test_id("vqd-message")).to_contain_text("a patrol round is running")
    finished = page.get_by_test_id("vqd-round-finished").first
    expect(finished).to_have_attribute("data-finished", "true", timeout=60_000)
    expect(page.get_by_test_id("vqd-progress")).to_have_attribute("data-running", "false")
    expect(page.get_by_test_id("vqd-last-total")).to_have_text("2")
    expect(page.get_by_test_id("vqd-last-diagnosed")).to_have_text("2")
    expect(page.get_by_test_id("vqd-last-skipped")).to_have_text("0")
    shot(page, "4-vqd-round")

    first = specs[0]
    page.goto(f"{base}/devices/{first.id}")
    vqd_cell = page.get_by_test_id("device-channel-vqd")
    expect(vqd_cell).not_to_have_attribute("data-count", "-1")  # the round's findings are listed
    panel = page.get_by_test_id("vqd-panel")
    expect(panel).to_have_attribute("data-channel", channels_of[first.id])
    history = panel.get_by_test_id("vqd-history").locator("li[data-id]")
    expect(history).to_have_count(1)  # the round's result
    panel.get_by_test_id("vqd-diagnose").click()
    result = panel.get_by_test_id("vqd-result")
    expect(result).to_have_attribute("data-diagnosed", "true", timeout=40_000)
    expect(result).to_contain_text("诊断完成")
    expect(history).to_have_count(2)
    for tag in result.get_by_test_id("vqd-fault").all():  # any finding is named in words, not its code
        assert tag.inner_text().strip() != tag.get_attribute("data-type"), tag.inner_text()
    # Keep the picture as the reference, after the confirmation.
    panel.get_by_test_id("vqd-reference-keep").click()
    page.locator(".reference-confirm .el-button--primary").click()
    expect(panel.get_by_test_id("vqd-message")).to_contain_text("已保存参考画面", timeout=40_000)
    expect(panel.get_by_test_id("vqd-reference")).to_have_attribute("data-has", "true")
    shot(page, "5-vqd-device")


def _work_order(page: Page, base: str, http: int, sip: int, token: str, specs, platform, sim2) -> None:
    first = specs[0]
    page.get_by_test_id("logout").click()
    login(page, base, "ops")
    page.get_by_test_id("nav-alarms").click()
    expect(page.get_by_test_id("alarm-feed")).to_have_attribute("data-state", "live", timeout=15_000)
    stop(platform["sim"])  # both devices go offline: their alarms are raised
    offline = page.get_by_test_id("alarm-table").locator("tr.el-table__row").filter(has_text="health.offline")
    expect(offline).to_have_count(2, timeout=30_000)
    offline.filter(has_text=first.id).click()
    drawer = page.get_by_test_id("alarm-drawer")
    expect(drawer.get_by_test_id("alarm-state")).to_have_attribute("data-state", "open")
    drawer.get_by_test_id("alarm-open-order").click()
    opened = drawer.get_by_test_id("alarm-order-opened")
    expect(opened).to_contain_text("已为此告警生成工单")
    order_id = opened.get_attribute("data-order")
    shot(page, "6-alarm-order-opened")
    drawer.get_by_test_id("alarm-order-link").click()
    expect(page).to_have_url(f"{base}/work-orders?order={order_id}")

    od = page.get_by_test_id("order-drawer")
    state = od.get_by_test_id("order-state")
    expect(state).to_have_attribute("data-state", "open")
    expect(od.get_by_test_id("order-start")).to_have_count(0)  # only legal steps are offered
    od.get_by_test_id("order-assign").click()
    od.get_by_test_id("order-team-select").click()
    page.locator(".el-select-dropdown__item:visible").filter(has_text=TEAM).click()
    field(page, "order-assignee-input").fill("tech")
    od.get_by_test_id("order-submit").click()
    expect(state).to_have_attribute("data-state", "assigned")
    expect(od.get_by_test_id("order-team")).to_have_text(TEAM)
    expect(od.get_by_test_id("order-history").locator("li[data-action=assign]")).to_contain_text(f"派给 {TEAM} / tech")
    page.keyboard.press("Escape")
    row = page.get_by_test_id("order-table").locator("tr.el-table__row").filter(has_text=first.id)
    expect(row.get_by_test_id("order-row-state")).to_have_attribute("data-state", "assigned")
    expect(row.get_by_test_id("order-row-team")).to_have_text(TEAM)
    expect(row.get_by_test_id("order-row-assignee")).to_have_text("tech")
    expect(row.get_by_test_id("order-sla")).to_contain_text("内响应")  # priority deadline counting
    shot(page, "7-orders-operator")

    # The technician lands on their own work orders.
    page.get_by_test_id("logout").click()
    login(page, base, "tech")
    expect(page).to_have_url(base + "/work-orders?mine=1")
    expect(page.get_by_test_id("orders-title")).to_have_text("我的工单")
    expect(page.get_by_test_id("nav-my-orders")).to_be_visible()
    mine = page.get_by_test_id("order-table").locator("tr.el-table__row")
    expect(mine).to_have_count(1)
    mine.first.click()
    expect(state).to_have_attribute("data-state", "assigned")
    od.get_by_test_id("order-start").click()
    # Someone else starts it first: the technician's "start" is refused in words.
    call(http, f"/api/v1/work-orders/{order_id}/start", token, body={"note": "on my way"})
    od.get_by_test_id("order-submit").click()
    message = od.get_by_test_id("order-message")
    expect(message).to_contain_text("当前无法执行")
    expect(message).to_contain_text(f"work order {order_id} is in progress")
    expect(state).to_have_attribute("data-state", "in_progress")
    od.get_by_test_id("order-repaired").click()
    od.get_by_test_id("order-submit").click()
    expect(message).to_contain_text("请先填写内容")  # the repair needs its note
    textarea(page, "order-note-text").fill("更换了电源适配器")
    od.get_by_test_id("order-submit").click()
    expect(state).to_have_attribute("data-state", "verifying")
    expect(od.get_by_test_id("order-verifying")).to_be_visible()
    expect(od.get_by_test_id("order-history").locator("li[data-action=repaired]")).to_contain_text("更换了电源适配器")
    shot(page, "8-order-verifying")

    # The device comes back: the platform closes the order by itself, the drawer follows.
    page.evaluate("() => { window.__notReloaded = true }")
    sim2.append(start(["sim", "--server", f"127.0.0.1:{sip}", "--platform-id", PLATFORM_ID, "--devices", "2",
                       "--channels", "1", "--seed", SEED, "--keepalive", "1"], "sim: 2 devices", timeout=120))
    Lines(sim2[0])  # keep its pipe drained
    expect(state).to_have_attribute("data-state", "closed", timeout=60_000)
    expect(od.get_by_test_id("order-history").locator("li[data-action=closed]")).to_contain_text("system")
    assert page.evaluate("() => window.__notReloaded === true"), "the page was reloaded"
    shot(page, "9-order-closed")
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("order-empty")).to_contain_text("没有派给你的工单")  # "not finished" only: it left


def _many_points(page: Page, base: str, db_url: str) -> None:
    """100,000 channels with coordinates over a city, then the map zoomed out, in and panned."""
    engine = make_engine(db_url)
    rng = random.Random(7)
    now = utcnow()
    per_device = 100
    with engine.begin() as conn:
        conn.execute(devices.insert(), [new_device_row(f"3402000000132{9_000_000 + d:07d}", now=now)
                                        | {"status": "online" if d % 10 else "offline"} for d in range(MANY // per_device)])
        rows = []
        for n in range(MANY):
            d = n // per_device
            rows.append({"id": f"3402000000131{9_000_000 + n:07d}", "device_id": f"3402000000132{9_000_000 + d:07d}",
                         "name": f"cam {n}", "status": "online" if n % 13 else "offline", "type_code": "131",
                         "extra": {}, "updated_at": now, "longitude": round(117.0 + rng.random() * 0.6, 6),
                         "latitude": round(31.6 + rng.random() * 0.5, 6)})
        conn.execute(channels.insert(), rows)
    engine.dispose()

    page.goto(base + "/map")
    expect(page.get_by_test_id("map-located")).to_have_attribute("data-total", str(MANY + 2), timeout=15_000)
    expect(page.get_by_test_id("map-cluster").first).to_be_visible(timeout=15_000)
    window_start = page.evaluate("() => performance.now()")
    steps = []
    for action in ("setZoom(9)", "setZoom(11)", "setZoom(13)", "panBy([300, 200])", "setZoom(15)", "setZoom(10)"):
        t0 = time.time()
        # The zoom the map goes to (getZoom() answers the old one while the zoom is animated).
        target = action[8:-1] if action.startswith("setZoom(") else "z"
        zoom = page.evaluate(f"() => {{ const m = window.__camgridMap, z = m.getZoom(); m.{action}; return {target} }}")
        page.wait_for_timeout(300)  # the move ends, the page asks (150 ms after the last move)
        expect(page.get_by_test_id("map")).to_have_attribute("data-zoom", str(zoom), timeout=15_000)
        expect(page.get_by_test_id("map")).to_have_attribute("data-loading", "false", timeout=15_000)
        markers = page.evaluate("() => document.querySelectorAll('[data-test=map-cluster], [data-test=map-point]').length")
        shown = int(page.get_by_test_id("map-in-view").get_attribute("data-total"))
        steps.append({"action": action, "zoom": page.get_by_test_id("map").get_attribute("data-zoom"),
                      "markers": markers, "channels_in_view": shown, "wall_s": round(time.time() - t0, 2)})
        assert markers > 0, steps
    elapsed = page.evaluate("() => performance.now()") - window_start
    tasks = page.evaluate("(t) => (window.__longtasks ?? []).filter((e) => e.start >= t)", window_start)
    print(f"\nmap with {MANY + 2} channels, {len(steps)} zooms/pans in {elapsed / 1000:.1f} s: {len(tasks)} long task(s)"
          + "".join(f"\n  +{(e['start'] - window_start) / 1000:.2f} s: {e['duration']:.0f} ms" for e in tasks)
          + "".join(f"\n  {s}" for s in steps))
    (MAINT_ARTIFACTS / "map-longtasks.json").write_text(json.dumps(
        {"channels": MANY + 2, "window_ms": round(elapsed), "steps": steps, "longtasks": tasks}, indent=1))
    shot(page, "10-map-many")
    # Zoomed out over the whole city, the 100,000 are a few clusters with counts.
    page.evaluate("() => window.__camgridMap.setZoom(8)")
    page.wait_for_timeout(300)
    expect(page.get_by_test_id("map")).to_have_attribute("data-zoom", "8", timeout=15_000)
    counts = [int(c) for c in page.get_by_test_id("map-cluster").evaluate_all("(els) => els.map((e) => e.dataset.count)")]
    assert sum(counts) >= MANY and len(counts) < 50, counts
    # A click on a cluster zooms into it.
    page.get_by_test_id("map-cluster").first.click()
    expect(page.get_by_test_id("map")).not_to_have_attribute("data-zoom", "8", timeout=15_000)
    assert int(page.get_by_test_id("map").get_attribute("data-zoom")) > 8
