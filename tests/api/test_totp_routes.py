"""The optional one-time code through the API: set up, enable with a first code, login asks for
it (and refuses a wrong or reused one), turn off, an administrator's reset; audited."""

from __future__ import annotations

import pytest
from api_helpers import PASSWORD

from camgrid.governance import totp
from camgrid.store.tables import audit_log, users


def login(api, **extra):
    return api.client.post("/api/v1/auth/login", json={"username": "operator1", "password": PASSWORD, **extra})


def test_the_one_time_code_from_setup_to_reset(api, engine):
    setup = api.post("/api/v1/auth/totp/setup", "operator", json={"password": PASSWORD})
    assert setup.status_code == 200, setup.text
    secret = setup.json()["secret"]
    assert setup.json()["otpauth_uri"].startswith("otpauth://totp/camgrid%3Aoperator1")
    assert login(api).status_code == 200  # not required before it is enabled
    wrong = api.post("/api/v1/auth/totp/enable", "operator", json={"code": "000000" if totp.code_at(
        secret, totp.step_of()) != "000000" else "111111"})
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "totp_invalid"
    step = totp.step_of()
    assert api.post("/api/v1/auth/totp/enable", "operator", json={"code": totp.code_at(secret, step)}).status_code == 204
    with engine.connect() as conn:
        stored = conn.execute(users.select().where(users.c.username == "operator1")).mappings().one()
    assert stored["totp_enabled"] and secret.encode() not in stored["totp_secret"]
    assert api.get("/api/v1/auth/me", "operator").json()["totp_enabled"] is True

    needed = login(api)
    assert needed.status_code == 401 and needed.json()["error"]["code"] == "totp_required"
    reused = login(api, totp=totp.code_at(secret, step))  # the code that enabled it: used already
    assert reused.status_code == 401 and reused.json()["error"]["code"] == "totp_invalid"
    ok = login(api, totp=totp.code_at(secret, step + 1))
    assert ok.status_code == 200 and ok.json()["access_token"]
    assert login(api, totp=totp.code_at(secret, step + 1)).status_code == 401  # never twice

    again = api.post("/api/v1/auth/totp/setup", "operator", json={"password": PASSWORD})
    assert again.status_code == 409  # on already: turn it off first
    bad_pw = api.post("/api/v1/auth/totp/disable", "operator", json={"password": "nope", "code": "123456"})
    assert bad_pw.status_code == 403

    reset = api.client.patch("/api/v1/users/operator1", headers=api.h("admin"), json={"totp_reset": True})
    assert reset.status_code == 200 and reset.json()["totp_enabled"] is False
    assert login(api).status_code == 200
    with engine.connect() as conn:
        actions = [r.action for r in conn.execute(audit_log.select().order_by(audit_log.c.id))]
    for action in ("auth.totp_setup", "auth.totp_enable", "auth.totp_failed", "user.update"):
        assert action in actions


def test_turning_it_off_needs_the_password_and_a_current_code(api):
    secret = api.post("/api/v1/auth/totp/setup", "operator", json={"password": PASSWORD}).json()["secret"]
    step = totp.step_of()
    api.post("/api/v1/auth/totp/enable", "operator", json={"code": totp.code_at(secret, step)})
    stale = api.post("/api/v1/auth/totp/disable", "operator",
                     json={"password": PASSWORD, "code": totp.code_at(secret, step)})
    assert stale.status_code == 403
    off = api.post("/api/v1/auth/totp/disable", "operator",
                   json={"password": PASSWORD, "code": totp.code_at(secret, step + 1)})
    assert off.status_code == 204
    assert login(api).status_code == 200


@pytest.mark.parametrize("body", [{}, {"code": "12"}])
def test_malformed_requests_are_refused(api, body):
    assert api.post("/api/v1/auth/totp/enable", "operator", json=body).status_code == 422
