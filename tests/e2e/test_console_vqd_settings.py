"""The console's patrol settings in a real browser, against `camgrid serve` and `camgrid sim` with
two cameras (same processes and skips as test_console.py):

- the video-quality page's "patrol settings" tab shows the configuration in effect and both
  devices with their sub-stream selector, where it comes from, and what the patrol learned (one
  of them refused the sub-stream: remembered in the database as the patrol does);
- an operator finds a device by its ID, sets its selector and turns its PTZ check off; the table
  says so, a reload shows it again, the API and the audit log have it;
- "try the sub-stream again" on the refusing device forgets the refusal;
- a selector for every device of a manufacturer: the configuration's entry is shown read-only,
  the operator adds one (the other device follows it, the one with its own selector does not),
  changes it in place after a reload and removes it; audited;
- the device's own page shows its patrol state with the operator's selector;
- a viewer sees the same and is offered nothing to change.

Screenshots go to test-artifacts/console/vqd-settings/.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from camgrid.governance.users import create_user
from camgrid.ops.vqd import patrol_store
from camgrid.sim.devices import generate
from camgrid.store.engine import make_engine, utcnow
from camgrid.store.tables import audit_log, vqd_devices
from tests.e2e.test_console import (  # noqa: F401  (db_url: a fixture)
    ARTIFACTS,
    browser_page,
    browser_skip,
    db_url,
    expect,
    field,
    Page,
    running_platform,
)
from tests.e2e.test_live_processes import PASSWORD, call, wait_channel

pytestmark = browser_skip()

SHOTS = ARTIFACTS / "vqd-settings"
SEED = "e2e-vqd-settings"


@pytest.fixture
def settings_platform(tmp_path, db_url, monkeypatch):
    # a configuration entry per manufacturer that matches neither simulated camera ("camgrid-sim")
    monkeypatch.setenv("CAMGRID__VQD__SUBSTREAM__MANUFACTURERS", '{"acme": "streamprofile"}')
    specs = generate(2, 1, seed=SEED, mix=False)
    with running_platform(tmp_path, db_url, specs, ["--seed", SEED, "--keepalive", "5"]) as running:
        yield {**running, "db_url": db_url}


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def rows(db_url, table, *where):
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(table).where(*where)).mappings()]
    finally:
        engine.dispose()


def test_an_operator_sets_a_devices_patrol_and_it_stays(settings_platform):
    http, specs, db_url = settings_platform["http"], settings_platform["specs"], settings_platform["db_url"]
    token = call(http, "/api/v1/auth/login", body={"username": "ops", "password": PASSWORD})["access_token"]
    for spec in specs:
        wait_channel(http, token, spec.id)
    mine, refusing = specs[0].id, specs[1].id
    engine = make_engine(db_url)  # the patrol remembered that this device refused the sub-stream
    patrol_store.set_substream_refused(engine, refusing, utcnow(), "all", "488 Not Acceptable Here")
    create_user(engine, "watcher", PASSWORD, "viewer")
    engine.dispose()
    base = f"http://127.0.0.1:{http}"

    with browser_page(1000, "vqd-settings/failure") as (page, problems):
        page.goto(base + "/login")
        field(page, "username").fill("ops")
        field(page, "password").fill(PASSWORD)
        page.get_by_test_id("login-submit").click()
        expect(page.get_by_test_id("current-user")).to_contain_text("ops")
        page.get_by_test_id("nav-vqd").click()
        page.get_by_role("tab", name="巡检设置").click()
        expect(page).to_have_url(base + "/vqd?tab=settings")
        expect(page.get_by_test_id("vqd-settings-dialect").first).to_be_visible()
        expect(page.get_by_test_id("vqd-settings-effective")).to_contain_text("all（全部选择方式）")
        expect(page.get_by_test_id("vqd-settings-device")).to_have_count(2)
        dialect = page.locator(f"[data-test=vqd-settings-dialect][data-device='{mine}']")
        expect(dialect).to_have_attribute("data-source", "default")
        refused = page.locator(f"[data-test=vqd-settings-substream][data-device='{refusing}']")
        expect(refused).to_have_attribute("data-refused", "true")
        expect(refused).to_contain_text("前只取主码流")
        shot(page, "1-settings")

        field(page, "vqd-settings-search").fill(mine)
        expect(page.get_by_test_id("vqd-settings-device")).to_have_count(1)
        page.locator(f"[data-test=vqd-settings-edit][data-device='{mine}']").click()
        dialog = page.get_by_test_id("vqd-settings-dialog")
        expect(dialog.get_by_test_id("vqd-device-settings")).to_have_attribute("data-device", mine)
        dialog.get_by_test_id("vqd-dev-dialect-select").click()
        page.locator(".el-select-dropdown__item:visible").filter(has_text="stream（大华风格）").click()
        dialog.get_by_test_id("vqd-dev-ptz-select").click()
        page.locator(".el-select-dropdown__item:visible").filter(has_text="从不转动其摄像机").click()
        dialog.get_by_test_id("vqd-dev-save").click()
        expect(dialog.get_by_test_id("vqd-dev-message")).to_contain_text("已保存")
        expect(dialog.get_by_test_id("vqd-dev-dialect")).to_have_attribute("data-source", "override")
        shot(page, "2-edited")
        page.keyboard.press("Escape")
        expect(dialect).to_have_attribute("data-dialect", "stream")
        expect(dialect).to_have_attribute("data-source", "override")
        expect(page.locator(f"[data-test=vqd-settings-ptz][data-device='{mine}']")).to_have_attribute("data-override", "false")

        page.reload()  # kept by the platform, not by the page
        expect(page.get_by_test_id("vqd-settings-device")).to_have_count(2)
        expect(dialect).to_have_attribute("data-dialect", "stream")
        page.get_by_test_id("vqd-settings-only").get_by_text("已单独设置").click()
        expect(page.get_by_test_id("vqd-settings-device")).to_have_count(1)
        expect(page.get_by_test_id("vqd-settings-device")).to_have_attribute("data-device", mine)
        page.get_by_test_id("vqd-settings-only").get_by_text("全部设备").click()
        expect(page.get_by_test_id("vqd-settings-device")).to_have_count(2)

        page.locator(f"[data-test=vqd-settings-retry][data-device='{refusing}']").click()
        expect(page.get_by_test_id("vqd-settings-message")).to_contain_text("下次诊断时将重新请求子码流")
        expect(refused).to_have_attribute("data-refused", "false")
        expect(page.locator(f"[data-test=vqd-settings-retry][data-device='{refusing}']")).to_have_count(0)
        shot(page, "3-retried")

        # a selector for all devices of a manufacturer, beside the configuration's (read-only)
        makers = page.get_by_test_id("vqd-makers")
        expect(makers.locator("[data-test=vqd-maker][data-key=acme]")).to_have_attribute("data-origin", "config")
        expect(makers.locator("[data-test=vqd-maker-dialect][data-key=acme]")).to_have_attribute(
            "data-dialect", "streamprofile")
        expect(makers.get_by_test_id("vqd-maker-remove")).to_have_count(0)
        other = page.locator(f"[data-test=vqd-settings-dialect][data-device='{refusing}']")
        expect(other).to_have_attribute("data-source", "default")
        field(page, "vqd-maker-key").fill("CamGrid-Sim")
        page.get_by_test_id("vqd-maker-new-dialect").click()
        page.locator(".el-select-dropdown__item:visible").filter(has_text="streamMode（TP-LINK）").click()
        page.get_by_test_id("vqd-maker-add").click()
        expect(page.get_by_test_id("vqd-makers-message")).to_contain_text("厂商为 camgrid-sim 的设备从下一轮起按")
        added = makers.locator("[data-test=vqd-maker][data-key='camgrid-sim']")
        expect(added).to_have_attribute("data-origin", "operator")
        expect(other).to_have_attribute("data-dialect", "streammode")
        expect(other).to_have_attribute("data-source", "manufacturer_operator")
        expect(dialect).to_have_attribute("data-source", "override")  # a device's own selector comes first
        shot(page, "4-manufacturer")
        page.reload()  # kept by the platform; changed in place
        expect(added).to_have_attribute("data-origin", "operator")
        expect(other).to_have_attribute("data-source", "manufacturer_operator")
        makers.locator("[data-test=vqd-maker-select][data-key='camgrid-sim']").click()
        page.locator(".el-select-dropdown__item:visible").filter(has_text="streamnumber（GB/T 28181-2022）").click()
        expect(other).to_have_attribute("data-dialect", "streamnumber")
        makers.locator("[data-test=vqd-maker-remove][data-key='camgrid-sim']").click()
        expect(page.get_by_test_id("vqd-makers-message")).to_contain_text("已删除")
        expect(added).to_have_count(0)
        expect(other).to_have_attribute("data-source", "default")

        page.locator(f"[data-test=vqd-settings-device][data-device='{mine}']").click()
        expect(page).to_have_url(f"{base}/devices/{mine}")
        card = page.get_by_test_id("device-patrol")
        expect(card.get_by_test_id("vqd-dev-dialect")).to_have_attribute("data-dialect", "stream")
        expect(card.get_by_test_id("vqd-dev-ptz")).to_have_attribute("data-override", "false")
        shot(page, "5-device")

        # a viewer reads the same, and is offered nothing to change
        page.get_by_test_id("logout").click()
        field(page, "username").fill("watcher")
        field(page, "password").fill(PASSWORD)
        page.get_by_test_id("login-submit").click()
        expect(page.get_by_test_id("current-user")).to_contain_text("watcher")
        page.goto(base + "/vqd?tab=settings")
        expect(dialect).to_have_attribute("data-dialect", "stream")
        expect(page.get_by_test_id("vqd-settings")).to_contain_text("此账号可以查看巡检设置，但不能修改")
        page.locator(f"[data-test=vqd-settings-edit][data-device='{mine}']").click()
        expect(page.get_by_test_id("vqd-settings-dialog").get_by_test_id("vqd-dev-dialect")).to_have_attribute(
            "data-dialect", "stream")
        expect(page.get_by_test_id("vqd-dev-save")).to_have_count(0)
        page.keyboard.press("Escape")
        expect(page.locator("[data-test=vqd-maker][data-key=acme]")).to_be_visible()
        expect(page.get_by_test_id("vqd-maker-add")).to_have_count(0)
        errors = [p for p in problems if "Content Security Policy" in p or "page error" in p]
        assert not errors, problems

    state = call(http, f"/api/v1/devices/{mine}/vqd", token)
    assert state["override"]["dialect"] == "stream" and state["override"]["ptz_check"] is False
    assert state["override"]["by"] == "ops"
    assert rows(db_url, vqd_devices, vqd_devices.c.device_id == refusing)[0]["substream_refused_at"] is None
    audited = rows(db_url, audit_log, audit_log.c.action.in_(["vqd.device_settings", "vqd.substream_retry"]))
    assert [(a["action"], a["actor"], a["target"]) for a in audited] == [
        ("vqd.device_settings", "ops", mine), ("vqd.substream_retry", "ops", refusing)]
    assert audited[0]["detail"]["after"] == {"dialect": "stream", "ptz_check": False}
    makers = rows(db_url, audit_log, audit_log.c.action == "vqd.manufacturer_dialect")
    assert [(a["actor"], a["target"], a["detail"]["after"]["dialect"]) for a in makers] == [
        ("ops", "camgrid-sim", "streammode"), ("ops", "camgrid-sim", "streamnumber"), ("ops", "camgrid-sim", None)]
    assert call(http, "/api/v1/vqd/settings", token)["operator_manufacturers"] == []
