"""Login, logout, token expiry, throttling, password change, through the HTTP API."""

from __future__ import annotations

from datetime import timedelta

from api_helpers import PASSWORD
from sqlalchemy import select

from camgrid.config import Settings
from camgrid.governance.users import create_user, issue_token
from camgrid.store.engine import utcnow
from camgrid.store.tables import audit_log, tokens


def _login(client, username, password):
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def test_login_me_logout(make_api, engine):
    create_user(engine, "alice", PASSWORD, "operator")
    api = make_api()
    resp = _login(api.client, "Alice", PASSWORD)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "bearer" and body["must_change_password"] is False and body["expires_at"]
    h = {"Authorization": f"Bearer {body['access_token']}"}
    me = api.client.get("/api/v1/auth/me", headers=h).json()
    assert me["username"] == "alice" and me["role"] == "operator" and "commands:ptz" in me["permissions"]
    with engine.connect() as conn:
        stored = conn.execute(select(tokens.c.token_hash)).scalars().all()
        actions = conn.execute(select(audit_log.c.action)).scalars().all()
    assert body["access_token"] not in stored and len(stored[0]) == 64  # only the SHA-256 is kept
    assert "auth.login" in actions
    assert api.client.post("/api/v1/auth/logout", headers=h).status_code == 204
    assert api.client.get("/api/v1/auth/me", headers=h).status_code == 401


def test_wrong_password_and_unknown_user_look_the_same(make_api, engine):
    create_user(engine, "bob", PASSWORD, "viewer")
    api = make_api()
    wrong, unknown = _login(api.client, "bob", "nope"), _login(api.client, "nobody", "nope")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.headers["www-authenticate"] == "Bearer"


def test_throttle_gives_429_with_retry_after(make_api, engine):
    create_user(engine, "carol", PASSWORD, "viewer")
    api = make_api(settings=Settings(http={"login_max_failures": 3, "login_window_s": 120}))
    for _ in range(3):
        assert _login(api.client, "carol", "wrong-guess").status_code == 401
    throttled = _login(api.client, "carol", PASSWORD)  # even the right password waits
    assert throttled.status_code == 429
    assert 0 < int(throttled.headers["retry-after"]) <= 120
    assert throttled.json()["error"]["code"] == "too_many_requests"
    # The address is throttled too: guessing another account from it is refused.
    assert _login(api.client, "someone-else", "x").status_code == 429


def test_expired_token_is_refused(make_api, engine):
    user = create_user(engine, "dave", PASSWORD, "viewer")
    api = make_api()
    token = issue_token(engine, user["id"], 60, now=utcnow() - timedelta(minutes=5))
    resp = api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "invalid_token"
    assert 'error="invalid_token"' in resp.headers["www-authenticate"]


def test_disabled_user_cannot_log_in_or_use_tokens(api, engine):
    create_user(engine, "erin", PASSWORD, "viewer", must_change_password=False)
    token = _login(api.client, "erin", PASSWORD).json()["access_token"]
    patched = api.client.patch("/api/v1/users/erin", headers=api.h("admin"), json={"disabled": True})
    assert patched.status_code == 200 and patched.json()["disabled"] is True
    assert api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert _login(api.client, "erin", PASSWORD).status_code == 401


def test_change_password(make_api, engine):
    create_user(engine, "frank", PASSWORD, "viewer")
    api = make_api()
    token = _login(api.client, "frank", PASSWORD).json()["access_token"]
    other = _login(api.client, "frank", PASSWORD).json()["access_token"]
    h = {"Authorization": f"Bearer {token}"}
    wrong = api.client.post("/api/v1/auth/password", headers=h,
                            json={"current_password": "bad", "new_password": "New-Password-99"})
    assert wrong.status_code == 403
    weak = api.client.post("/api/v1/auth/password", headers=h,
                           json={"current_password": PASSWORD, "new_password": "short"})
    assert weak.status_code == 422 and weak.json()["error"]["code"] == "weak_password"
    assert "12" in weak.json()["error"]["message"]
    ok = api.client.post("/api/v1/auth/password", headers=h,
                         json={"current_password": PASSWORD, "new_password": "New-Password-99"})
    assert ok.status_code == 204
    assert api.client.get("/api/v1/auth/me", headers=h).status_code == 200  # this session stays
    assert api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {other}"}).status_code == 401
    assert _login(api.client, "frank", "New-Password-99").status_code == 200


def test_bad_login_body_is_a_readable_422(make_api):
    resp = make_api().client.post("/api/v1/auth/login", json={"username": "x"})
    assert resp.status_code == 422
    assert "password" in resp.json()["error"]["message"]
