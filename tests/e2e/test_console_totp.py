"""The one-time code in the console: an operator turns it on from the account page (the QR code
and the key are shown, a first code confirms), signing in then asks for the code in a second
step (a wrong one is refused in words), and a current code gets in."""

from __future__ import annotations

import time


from camgrid.governance import totp
from camgrid.sim.devices import generate
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


SEED = "e2e-totp"


def fresh_code(secret: str, after_step: int | None = None) -> tuple[str, int]:
    """The current code, waiting for the next step when this one was used already."""
    while True:
        step = totp.step_of()
        if after_step is None or step > after_step:
            return totp.code_at(secret, step), step
        time.sleep(0.5)


def test_an_operator_turns_the_one_time_code_on_and_signs_in_with_it(tmp_path, db_url):
    specs = generate(1, 1, seed=SEED, mix=False)
    with running_platform(tmp_path, db_url, specs, ["--seed", SEED]) as running:
        base = f"http://127.0.0.1:{running['http']}"
        with browser_page(900, "totp-failure") as (page, problems):
            page.goto(base + "/login")
            field(page, "username").fill("ops")
            field(page, "password").fill(PASSWORD)
            page.get_by_test_id("login-submit").click()
            page.get_by_test_id("current-user").click()  # the name in the header opens the account page
            expect(page.get_by_test_id("totp-state")).to_contain_text("未开启")
            field(page, "totp-password").fill(PASSWORD)
            page.get_by_test_id("totp-begin").click()
            expect(page.get_by_test_id("totp-qr")).to_be_visible()
            secret = page.get_by_test_id("totp-secret").inner_text().replace(" ", "")
            assert len(secret) == 32
            code, used = fresh_code(secret)
            field(page, "totp-code").fill(code)
            page.get_by_test_id("totp-confirm").click()
            expect(page.get_by_test_id("totp-state")).to_contain_text("已开启")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "totp-on.png"))
            page.get_by_test_id("logout").click()

            # Signing in: the password first, then the code in a second step.
            field(page, "username").fill("ops")
            field(page, "password").fill(PASSWORD)
            page.get_by_test_id("login-submit").click()
            expect(field(page, "totp")).to_be_visible()
            field(page, "totp").fill(code)  # the code that turned it on: used already
            page.get_by_test_id("login-submit").click()
            expect(page.get_by_test_id("login-error")).to_contain_text("one-time code")
            code, _ = fresh_code(secret, after_step=used)
            field(page, "totp").fill(code)
            page.get_by_test_id("login-submit").click()
            expect(page.get_by_test_id("current-user")).to_contain_text("ops")
            page.screenshot(path=str(ARTIFACTS / "totp-signed-in.png"))
        unexpected = [p for p in problems if "401" not in p]
        assert not unexpected, unexpected
