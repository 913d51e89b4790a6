"""The console's files as `camgrid serve` answers them (camgrid/api/console.py), without a browser:
the page for / and for the console's own routes, long-cached hashed assets, gzip from the build,
and never a shadow over the API (/api/v1, its docs, /metrics)."""

from __future__ import annotations

import gzip

import pytest
from fastapi.testclient import TestClient

from camgrid.api.app import ApiContext, api_routes, create_api
from camgrid.api.console import CONSOLE_DIR_ENV, default_console_dir
from camgrid.config import Settings

INDEX = '<!doctype html><html><head><script type="module" src="/assets/index-abc123.js"></script></head></html>'
SCRIPT = "console.log('camgrid');" * 50


@pytest.fixture
def dist(tmp_path):
    d = tmp_path / "dist"
    (d / "assets").mkdir(parents=True)
    (d / ".vite").mkdir()
    (d / "index.html").write_text(INDEX)
    (d / "assets" / "index-abc123.js").write_text(SCRIPT)
    (d / "assets" / "index-abc123.js.gz").write_bytes(gzip.compress(SCRIPT.encode()))
    (d / ".vite" / "manifest.json").write_text("{}")
    return d


@pytest.fixture
def client_for(sqlite_engine, monkeypatch):
    def build(dist_dir):
        monkeypatch.setenv(CONSOLE_DIR_ENV, str(dist_dir))
        return TestClient(create_api(ApiContext(engine=sqlite_engine, settings=Settings())))
    return build


def test_page_for_root_and_console_routes(client_for, dist):
    client = client_for(dist)
    for path in ("/", "/channels", "/channels/34020000001320000001/live?device=34020000001320000001", "/login"):
        resp = client.get(path)
        assert resp.status_code == 200, path
        assert resp.text == INDEX
        assert resp.headers["cache-control"] == "no-cache"
        assert resp.headers["content-type"].startswith("text/html")
        csp = resp.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert resp.headers["x-content-type-options"] == "nosniff"


def test_assets_are_cached_and_sent_gzipped(client_for, dist):
    client = client_for(dist)
    resp = client.get("/assets/index-abc123.js", headers={"Accept-Encoding": "gzip"})
    assert resp.status_code == 200 and resp.text == SCRIPT  # the client undoes the gzip
    assert resp.headers["content-encoding"] == "gzip"
    assert int(resp.headers["content-length"]) < len(SCRIPT)
    assert resp.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "javascript" in resp.headers["content-type"]
    plain = client.get("/assets/index-abc123.js", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "content-encoding" not in plain.headers and plain.text == SCRIPT
    head = client.head("/assets/index-abc123.js")
    assert head.status_code == 200 and head.content == b""


def test_missing_files_and_hidden_paths_are_not_the_page(client_for, dist):
    client = client_for(dist)
    assert client.get("/assets/index-old999.js").status_code == 404  # an old build's asset: not HTML
    assert client.get("/.vite/manifest.json").status_code == 404
    assert client.get("/assets/../.vite/manifest.json").status_code == 404
    assert client.get("/%2e%2e/%2e%2e/etc/passwd").status_code == 404
    assert client.post("/channels").status_code == 404  # only GET and HEAD


def test_the_api_is_never_shadowed(client_for, dist):
    client = client_for(dist)
    for method in ("GET", "POST", "DELETE"):
        resp = client.request(method, "/api/v1/nothing-here")
        assert resp.status_code == 404, method
        assert resp.json()["error"]["code"] == "not_found"
    assert client.get("/api").json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/health/live").json() == {"ok": True}
    assert client.get("/api/v1/openapi.json").json()["info"]["title"] == "camgrid"
    assert "swagger" in client.get("/api/v1/docs").text.lower()
    assert client.get("/api/v1/channels").status_code == 401
    assert client.get("/metrics").status_code == 401
    # The console adds no API route (the security test walks these).
    assert all(path.startswith("/api/v1/") or path == "/metrics" for _, path, _ in api_routes(client.app))


def test_without_a_build_the_root_says_how_to_make_one(client_for, tmp_path):
    client = client_for(tmp_path / "no-such-dist")
    resp = client.get("/")
    assert resp.status_code == 200 and "make web" in resp.text
    assert client.get("/channels").status_code == 200
    assert client.get("/api/v1/nothing").json()["error"]["code"] == "not_found"


def test_default_dir_is_the_repository_build(monkeypatch):
    monkeypatch.delenv(CONSOLE_DIR_ENV, raising=False)
    assert default_console_dir().parts[-2:] == ("web", "dist")
    assert (default_console_dir().parent / "package.json").is_file()
