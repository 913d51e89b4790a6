"""The console's operations pages in a real browser (issue 4), against `camgrid serve` and
`camgrid sim` with two cameras (same processes and skips as test_console.py):

- the health page shows the point classes with their rates and targets (today so far: the
  devices registered a moment ago are online), the "no closed day yet" note, the trend and the
  worst channels; the long tasks of its first 5 s are written to
  test-artifacts/console/ops/health-longtasks.json;
- device detail (from the channel list): a catalog refresh comes back with its result, a PTZ
  preset "go to" and a reboot reach the simulated device;
- alarms: the simulator stops, the devices' offline alarms arrive over the live stream (no reload)
  with the header's badge; one is acknowledged, dispatched and resolved through the drawer, its
  state and history following; a step the alarm no longer allows answers a readable 409; a device
  alarm whose linkage says "popup" (the default for alarm.*) pops up and opens the channel live;
- a viewer sees alarms but no workflow buttons and no device commands.

Screenshots go to test-artifacts/console/ops/.
"""

from __future__ import annotations

import json
import time

import pytest

from camgrid.gb28181.ptz import PtzCommand, encode
from camgrid.governance.users import create_user
from camgrid.sim.devices import generate
from camgrid.store.engine import make_engine
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


OPS_ARTIFACTS = ARTIFACTS / "ops"
SEED = "e2e-ops"


@pytest.fixture
def ops_platform(tmp_path, db_url, monkeypatch):
    # The simulated devices do not state their keepalive interval: the platform assumes 2 s and
    # calls a device offline after 3 missed keepalives (6 s), so a stopped simulator shows soon.
    monkeypatch.setenv("CAMGRID__HEALTH__KEEPALIVE_INTERVAL_S", "2")
    monkeypatch.setenv("CAMGRID__HEALTH__KEEPALIVE_COUNT", "3")
    monkeypatch.setenv("CAMGRID__HEALTH__SWEEP_INTERVAL_S", "0.5")
    specs = generate(2, 1, seed=SEED, mix=False)
    with running_platform(tmp_path, db_url, specs, ["--seed", SEED, "--keepalive", "1"]) as running:
        engine = make_engine(db_url)
        create_user(engine, "watcher", PASSWORD, "viewer")
        engine.dispose()
        yield running


def shot(page: Page, name: str) -> None:
    OPS_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OPS_ARTIFACTS / f"{name}.png"), full_page=True)


def wait_rates_online(http: int, token: str, timeout: float = 30) -> dict:
    """Today's rates count the registered devices as online (the service caches a few seconds)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        answer = call(http, "/api/v1/rates", token)
        if answer["total"]["online_rate"] == 1.0 and answer["total"]["channels"] == 2:
            return answer
        time.sleep(0.5)
    raise AssertionError(f"the online rate never reached 100 %: {answer['total']}")


def login(page: Page, base: str, username: str) -> None:
    page.goto(base + "/login")
    field(page, "username").fill(username)
    field(page, "password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("current-user")).to_contain_text(username)


def note_field(page: Page):
    return page.locator("textarea[data-test=alarm-note-text], [data-test=alarm-note-text] textarea").first


def alarm_rows(page: Page):
    return page.get_by_test_id("alarm-table").locator("tr.el-table__row")


def test_health_device_detail_and_alarm_workflow(ops_platform):
    http, sip, specs, sim_output = ops_platform["http"], ops_platform["sip"], ops_platform["specs"], ops_platform["sim_output"]
    token = call(http, "/api/v1/auth/login", body={"username": "ops", "password": PASSWORD})["access_token"]
    channels = {spec.id: wait_channel(http, token, spec.id) for spec in specs}
    wait_rates_online(http, token)
    base = f"http://127.0.0.1:{http}"
    first, second = specs
    OPS_ARTIFACTS.mkdir(parents=True, exist_ok=True)
    sim2 = []
    try:
        _walk_through(page_args=(http, sip, specs, sim_output, token, channels, base), platform=ops_platform, sim2=sim2)
    finally:
        for proc in sim2:
            stop(proc)


def _walk_through(page_args, platform, sim2) -> None:  # noqa: ANN001
    http, sip, specs, sim_output, token, channels, base = page_args
    first, second = specs
    with browser_page(900, "ops/failure") as (page, problems):
        login(page, base, "ops")

        # -- health ------------------------------------------------------------------------------
        window_start = page.evaluate("() => performance.now()")
        page.get_by_test_id("nav-health").click()
        expect(page).to_have_url(base + "/health")
        table = page.get_by_test_id("class-table")
        expect(table.get_by_test_id("class-1")).to_have_text("一类点")
        expect(table.get_by_test_id("class-2")).to_have_text("二类点")
        # The simulated channels carry no point class: "unclassified", then all channels.
        expect(table.get_by_test_id("class-0")).to_have_text("未分类")
        all_row = table.locator("tr.class-all")
        expect(all_row.locator("[data-test=online-cell] [data-test=rate-value]")).to_have_text("100.00 %")
        expect(all_row.locator("[data-test=intact-cell]")).to_have_attribute("data-verdict", "met")
        class_one = table.locator("tr.class-1")
        expect(class_one.locator("[data-test=online-cell]")).to_contain_text("目标 ≥ 98 %")
        expect(class_one.locator("[data-test=online-cell]")).to_have_attribute("data-verdict", "none")  # no class-one point yet
        expect(table.locator("tr.class-2 [data-test=online-cell]")).to_contain_text("目标 ≥ 95 %")
        expect(table.locator("tr.class-0 [data-test=online-cell]")).to_have_attribute("data-verdict", "untargeted")
        expect(page.get_by_test_id("health-no-closed-day")).to_contain_text("本地零点")
        expect(page.get_by_test_id("channels-online")).to_have_text("2 / 2")
        expect(page.get_by_test_id("trend-chart")).to_have_attribute("data-days", "1")
        expect(page.get_by_test_id("worst-empty")).to_contain_text("均达标")
        expect(page.get_by_test_id("breakdown-group").first).to_be_visible()
        page.get_by_test_id("breakdown-by").get_by_text("按厂商").click()
        expect(page.get_by_test_id("breakdown-group")).to_have_text(["camgrid-sim"])
        page.wait_for_timeout(max(0.0, 5000 - (page.evaluate("() => performance.now()") - window_start)))
        tasks = page.evaluate("(t) => (window.__longtasks ?? []).filter((e) => e.start >= t)", window_start)
        print(f"\nlong tasks in the health page's first 5 s: {len(tasks)}"
              + "".join(f"\n  +{(e['start'] - window_start) / 1000:.2f} s: {e['duration']:.0f} ms" for e in tasks))
        OPS_ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (OPS_ARTIFACTS / "health-longtasks.json").write_text(json.dumps({"window_ms": 5000, "longtasks": tasks}, indent=1))
        shot(page, "1-health")

        # -- device detail -----------------------------------------------------------------------
        page.get_by_test_id("nav-channels").click()
        page.get_by_test_id("device-link").filter(has_text=first.id).click()
        expect(page).to_have_url(f"{base}/devices/{first.id}")
        expect(page.get_by_test_id("device-status")).to_have_attribute("data-status", "online")
        expect(page.get_by_test_id("device-channel-name")).to_have_count(1)
        page.get_by_test_id("catalog-refresh").click()
        outcome = page.get_by_test_id("device-outcome")
        expect(outcome).to_have_attribute("data-outcome", "done", timeout=30_000)
        expect(outcome).to_contain_text("目录已收到")
        expect(page.get_by_test_id("device-steering")).to_contain_text(first.channels[0].name)
        field(page, "preset-number").fill("5")
        page.get_by_test_id("preset-goto").click()
        expect(page.get_by_test_id("presets")).to_have_attribute("data-last-sent", "preset_call:5")
        goto_line = f"PTZ {channels[first.id]} {encode(PtzCommand.preset_call(5))}"
        assert sim_output.wait_for(lambda line: line == goto_line, timeout=10), sim_output.lines[-20:]
        page.get_by_test_id("device-reboot").click()
        page.locator(".reboot-confirm .el-button--primary").click()
        expect(outcome).to_have_attribute("data-outcome", "reboot-sent", timeout=15_000)
        assert sim_output.wait_for(lambda line: line == f"REBOOT {first.id}", timeout=10)
        shot(page, "2-device")

        # -- alarms: the offline alarms arrive live ---------------------------------------------
        page.get_by_test_id("nav-alarms").click()
        expect(page.get_by_test_id("alarm-feed")).to_have_attribute("data-state", "live", timeout=15_000)
        expect(page.get_by_test_id("alarm-empty")).to_contain_text("暂无告警")
        page.evaluate("() => { window.__notReloaded = true }")
        stop(platform["sim"])  # the devices unregister: each one's offline alarm is raised
        expect(alarm_rows(page)).to_have_count(2, timeout=30_000)
        expect(page.get_by_test_id("alarm-badge")).to_have_attribute("data-count", "2", timeout=10_000)
        assert page.evaluate("() => window.__notReloaded === true"), "the page was reloaded"
        shot(page, "3-alarms-live")

        alarm_rows(page).filter(has_text=first.id).click()
        drawer = page.get_by_test_id("alarm-drawer")
        state = drawer.get_by_test_id("alarm-state")
        expect(state).to_have_attribute("data-state", "open")
        expect(drawer.get_by_test_id("alarm-dispatch")).to_have_count(0)  # only legal steps are offered
        drawer.get_by_test_id("alarm-acknowledge").click()
        note_field(page).fill("看到离线，正在联系现场")
        drawer.get_by_test_id("alarm-submit").click()
        expect(state).to_have_attribute("data-state", "acknowledged")
        history = drawer.get_by_test_id("alarm-history")
        expect(history.locator("li[data-action=acknowledged]")).to_contain_text("看到离线，正在联系现场")
        expect(drawer.get_by_test_id("alarm-acknowledge")).to_have_count(0)
        drawer.get_by_test_id("alarm-dispatch").click()
        field(page, "alarm-to").fill("维修一组")
        drawer.get_by_test_id("alarm-submit").click()
        expect(state).to_have_attribute("data-state", "dispatched")
        expect(history.locator("li[data-action=dispatched]")).to_contain_text("派给 维修一组")
        drawer.get_by_test_id("alarm-resolve").click()
        note_field(page).fill("已恢复供电")
        drawer.get_by_test_id("alarm-submit").click()
        expect(state).to_have_attribute("data-state", "resolved")
        expect(history.locator("li[data-action=resolved]")).to_contain_text("已修复")
        expect(history.locator("li[data-action=resolved]")).to_contain_text("ops")
        expect(drawer.get_by_test_id("alarm-resolve")).to_have_count(0)
        shot(page, "4-alarm-resolved")
        page.keyboard.press("Escape")
        expect(alarm_rows(page)).to_have_count(1)  # unresolved only: the resolved one left the list

        # A step the alarm no longer allows: another operator resolves it while this one acknowledges.
        alarm_rows(page).first.click()
        expect(state).to_have_attribute("data-state", "open")
        other_id = int(page.get_by_test_id("alarm-table").get_by_test_id("alarm-row-title").first.get_attribute("data-id"))
        drawer.get_by_test_id("alarm-acknowledge").click()
        call(http, f"/api/v1/alarms/{other_id}/resolve", token, body={"resolution": "duplicate", "note": "elsewhere"})
        expect(state).to_have_attribute("data-state", "resolved", timeout=10_000)  # the live stream told the drawer
        drawer.get_by_test_id("alarm-submit").click()
        expect(drawer.get_by_test_id("alarm-message")).to_contain_text("当前无法执行")
        expect(drawer.get_by_test_id("alarm-message")).to_contain_text(f"alarm {other_id}")
        shot(page, "5-alarm-conflict")
        page.keyboard.press("Escape")
        expect(page.get_by_test_id("alarm-badge")).to_have_attribute("data-count", "0", timeout=10_000)

        # -- a device alarm pops up (linkage "popup") and opens the channel live ------------------
        sim2.append(start(["sim", "--server", f"127.0.0.1:{sip}", "--platform-id", PLATFORM_ID, "--devices", "2",
                      "--channels", "1", "--seed", SEED, "--keepalive", "1", "--alarm-every", "1"],
                          "sim: 2 devices", timeout=120))
        Lines(sim2[0])  # keep its pipe drained
        popup = page.locator(".alarm-popup").first
        expect(popup).to_be_visible(timeout=30_000)
        expect(popup).to_contain_text("点击查看通道")
        expect(alarm_rows(page).filter(has_text="alarm.video").first).to_be_visible(timeout=10_000)
        shot(page, "6-alarm-popup")
        body = popup.get_by_test_id("alarm-popup-body").inner_text()
        popped = next(cid for cid in channels.values() if cid in body)
        # The sim alarms every second: a second popup may be sliding in over this one, so the click
        # goes to this element itself rather than to where it is drawn.
        popup.dispatch_event("click")
        expect(page).to_have_url(f"{base}/channels/{popped}/live?device={next(d for d, c in channels.items() if c == popped)}")

        # -- a viewer reads alarms but has no workflow and no device commands ---------------------
        page.get_by_test_id("logout").click()
        login(page, base, "watcher")
        page.goto(base + "/alarms?state=all")
        alarm_rows(page).first.click()
        expect(page.get_by_test_id("alarm-view-only")).to_contain_text("只能查看告警")
        expect(page.get_by_test_id("alarm-workflow")).to_have_count(0)
        shot(page, "7-viewer-alarm")
        page.goto(f"{base}/devices/{second.id}")
        expect(page.get_by_test_id("device-channel-name")).to_have_count(1)
        expect(page.get_by_test_id("catalog-refresh")).to_have_count(0)
        # The API refuses the viewer anyway, in words.
        viewer = call(http, "/api/v1/auth/login", body={"username": "watcher", "password": PASSWORD})["access_token"]
        refused = page.evaluate("""async ([token, id]) => {
            const r = await fetch(`/api/v1/alarms/${id}/acknowledge`, { method: 'POST',
              headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: '{}' })
            return [r.status, (await r.json()).error?.message ?? ''] }""", [viewer, other_id])
        assert refused[0] == 403 and refused[1], refused

        errors = [p for p in problems if "Content Security Policy" in p or "page error" in p]
        assert not errors, problems
        if problems:
            print("browser console errors:\n  " + "\n  ".join(problems))
