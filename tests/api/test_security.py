"""Deny by default: every route states a permission, and nothing answers without a token."""

from __future__ import annotations

import re

import pytest

from camgrid.api.app import api_routes
from camgrid.api.routes.vqd import local_control
from camgrid.api.security import route_permissions
from camgrid.governance.roles import ALL_PERMISSIONS
from camgrid.governance.users import create_user, issue_token

from api_helpers import PASSWORD

PUBLIC = {("POST", "/api/v1/auth/login"), ("GET", "/api/v1/health/live")}
# The same machine's command line (`camgrid vqd patrol`): the running platform's own secret, from
# a loopback address, instead of a user's token (camgrid/api/routes/vqd.py local_control).
LOCAL = {("GET", "/api/v1/local/vqd/patrol"), ("POST", "/api/v1/local/vqd/patrol/run")}


def _dependencies(dependant):  # noqa: ANN001, ANN202
    for dep in dependant.dependencies:
        yield dep.call
        yield from _dependencies(dep)


def test_every_route_requires_a_permission(api):
    app = api.client.app
    checked = 0
    for method, path, route in api_routes(app):
        if (method, path) in PUBLIC:
            assert not route_permissions(route.dependant), f"{method} {path} should be public"
            continue
        if (method, path) in LOCAL:
            assert local_control in set(_dependencies(route.dependant)), f"{method} {path} must need the local secret"
            continue
        perms = route_permissions(route.dependant)
        assert perms, f"{method} {path} has no require(...) permission"
        assert perms <= ALL_PERMISSIONS
        checked += 1
    assert checked >= 15
    paths = {path for _, path, _ in api_routes(app)}
    assert "/metrics" in paths and all(p.startswith("/api/v1/") or p == "/metrics" for p in paths)


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "34020000001320000001", path)


@pytest.mark.parametrize("auth", [None, "Bearer not-a-real-token", "Basic YWRtaW46YWRtaW4="])
def test_every_protected_route_answers_401_without_a_valid_token(api, auth):
    headers = {"Authorization": auth} if auth else {}
    for method, path, _ in api_routes(api.client.app):
        if (method, path) in PUBLIC:
            continue
        resp = api.client.request(method, _fill(path), headers=headers, json={})
        if (method, path) in LOCAL:  # no token helps here: only the platform's own secret
            assert resp.status_code == 403, (method, path, resp.status_code, resp.text)
            continue
        assert resp.status_code == 401, (method, path, resp.status_code, resp.text)
        assert resp.headers["www-authenticate"].startswith("Bearer")
        assert resp.json()["error"]["code"] in ("unauthorized", "invalid_token")


def test_public_routes_and_openapi(api):
    assert api.client.get("/api/v1/health/live").json() == {"ok": True}
    spec = api.client.get("/api/v1/openapi.json")
    assert spec.status_code == 200
    doc = spec.json()
    assert "/api/v1/channels" in doc["paths"] and "/api/v1/auth/login" in doc["paths"]
    assert "HTTPBearer" in doc["components"]["securitySchemes"]
    docs = api.client.get("/api/v1/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_role_checks(api):
    body = {"id": "34020000001320000001", "password": "Dev-Secret-991", "name": "x"}
    viewer = api.post("/api/v1/devices", "viewer", json=body)
    assert viewer.status_code == 403
    assert viewer.json()["error"]["code"] == "forbidden" and "devices:write" in viewer.json()["error"]["message"]
    assert api.post("/api/v1/devices", "operator", json=body).status_code == 403
    assert api.get("/api/v1/users", "operator").status_code == 403
    assert api.get("/metrics", "viewer").status_code == 403
    assert api.get("/api/v1/devices", "viewer").status_code == 200
    assert api.post("/api/v1/devices", "admin", json=body).status_code == 201


def test_must_change_password_limits_the_account(api, engine):
    user = create_user(engine, "fresh", PASSWORD, "admin", must_change_password=True)
    h = {"Authorization": f"Bearer {issue_token(engine, user['id'], 600)}"}
    blocked = api.client.get("/api/v1/devices", headers=h)
    assert blocked.status_code == 403 and blocked.json()["error"]["code"] == "password_change_required"
    assert api.client.get("/api/v1/auth/me", headers=h).json()["must_change_password"] is True
    changed = api.client.post("/api/v1/auth/password", headers=h,
                              json={"current_password": PASSWORD, "new_password": "Another-Pass-77"})
    assert changed.status_code == 204
    assert api.client.get("/api/v1/devices", headers=h).status_code == 200


def test_unknown_route_and_validation_errors_are_json(api):
    missing = api.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    bad = api.get("/api/v1/channels", params={"limit": 5000})
    assert bad.status_code == 422
    err = bad.json()["error"]
    assert err["code"] == "validation_error" and "limit" in err["message"]
    bad_cursor = api.get("/api/v1/channels", params={"cursor": "garbage!!"})
    assert bad_cursor.status_code == 422 and bad_cursor.json()["error"]["code"] == "invalid_cursor"
