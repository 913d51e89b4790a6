"""GET /api/v1/map/clusters and /map/settings on SQLite and PostgreSQL: channels grouped into
cells per zoom level with online/offline counts, single channels for cells with few, the
effective status (channel and device), channels without coordinates (or at 0,0) left out and
counted, bad boxes refused in words, permissions; the tile server's origin in the console's
Content-Security-Policy."""

from __future__ import annotations

import pytest
from api_helpers import PASSWORD, channel_row, dev_id, device_row, seed
from fastapi.testclient import TestClient

from camgrid.api.app import ApiContext, create_api
from camgrid.api.routes.maps import cell_deg
from camgrid.config import Settings
from camgrid.governance.users import create_user, issue_token

# Two places 0.5° apart: a crowd of 30 channels (device 1, 20 of them online, device 2's 10 on an
# offline device) around (117.2, 31.8), and two lone cameras near (117.7, 31.3).
CROWD = (117.2, 31.8)


@pytest.fixture
def mapped(api, engine):
    seed(engine, [device_row(1, status="online"), device_row(2, status="offline"), device_row(3, status="online")], [
        *(channel_row(dev_id(1), f"3402000000131{n:07d}", longitude=CROWD[0] + n * 1e-4, latitude=CROWD[1] + n * 1e-4,
                      status="online" if n < 20 else "offline") for n in range(25)),
        *(channel_row(dev_id(2), f"3402000000131{100 + n:07d}", longitude=CROWD[0] - n * 1e-4, latitude=CROWD[1])
          for n in range(5)),
        channel_row(dev_id(3), "34020000001310000200", name="gate", longitude=117.7, latitude=31.3),
        channel_row(dev_id(3), "34020000001310000201", name="yard", longitude=117.9, latitude=31.1, status="offline"),
        channel_row(dev_id(3), "34020000001310000202", name="nowhere"),  # no coordinates
        channel_row(dev_id(3), "34020000001310000203", name="null island", longitude=0.0, latitude=0.0),
    ])
    return api


def test_clusters_count_by_status_and_open_small_cells(mapped):
    r = mapped.get("/api/v1/map/clusters", "viewer", params={"bbox": "116,30,119,33", "zoom": 8})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["zoom"] == 8 and body["cell_deg"] == pytest.approx(cell_deg(8))
    assert body["total"] == 32  # the two without a place are not on the map
    [crowd] = body["clusters"]
    assert (crowd["count"], crowd["online"], crowd["offline"]) == (30, 20, 10)  # device 2 offline: its channels too
    assert abs(crowd["lon"] - CROWD[0]) < 0.01 and abs(crowd["lat"] - CROWD[1]) < 0.01
    w, s, e, n = crowd["bounds"]
    assert w <= crowd["lon"] <= e and s <= crowd["lat"] <= n and e - w == pytest.approx(cell_deg(8))
    singles = {c["name"]: c for c in body["channels"]}
    assert set(singles) == {"gate", "yard"}
    assert singles["gate"]["status"] == "online" and singles["yard"]["status"] == "offline"
    assert singles["gate"]["device_id"] == dev_id(3) and singles["gate"]["lon"] == 117.7


def test_zooming_in_splits_the_crowd_into_channels(mapped):
    # At zoom 18 a cell is ~0.00034°: the crowd's channels (0.0001° apart on a diagonal) fall apart.
    r = mapped.get("/api/v1/map/clusters", "viewer", params={"bbox": "117.195,31.795,117.21,31.81", "zoom": 18})
    body = r.json()
    on_map = sum(c["count"] for c in body["clusters"]) + len(body["channels"])
    assert on_map == body["total"] == 30
    assert body["channels"], body
    assert all(c["count"] > 4 for c in body["clusters"])  # small cells were opened
    # The box bounds the answer: nothing outside it.
    assert all(117.195 <= c["lon"] <= 117.21 for c in body["channels"])


def test_world_view_is_one_cluster(mapped):
    body = mapped.get("/api/v1/map/clusters", "viewer", params={"bbox": "-180,-90,180,90", "zoom": 0}).json()
    assert [c["count"] for c in body["clusters"]] == [32] and body["channels"] == []


@pytest.mark.parametrize("bbox, words", [
    ("1,2,3", "four numbers"),
    ("a,b,c,d", "four numbers"),
    ("10,0,5,1", "west < east"),
    ("0,10,1,5", "south < north"),
    ("-190,0,0,1", "-180 <= west"),
    ("0,0,nan,1", "finite"),
])
def test_bad_bbox_is_422_in_words(mapped, bbox, words):
    r = mapped.get("/api/v1/map/clusters", "viewer", params={"bbox": bbox, "zoom": 5})
    assert r.status_code == 422 and words in r.json()["error"]["message"], r.text


def test_box_too_large_for_the_zoom_and_zoom_out_of_range(mapped):
    r = mapped.get("/api/v1/map/clusters", "viewer", params={"bbox": "-180,-90,180,90", "zoom": 16})
    assert r.status_code == 422 and "too large for zoom 16" in r.json()["error"]["message"]
    assert mapped.get("/api/v1/map/clusters", "viewer", params={"bbox": "0,0,1,1", "zoom": 23}).status_code == 422
    assert mapped.get("/api/v1/map/clusters", "viewer", params={"zoom": 3}).status_code == 422


def test_settings_count_located_channels(mapped):
    body = mapped.get("/api/v1/map/settings", "viewer").json()
    assert body["total"] == 34 and body["located"] == 32 and body["located_share"] == round(32 / 34, 4)
    assert body["tile_url"] is None
    assert body["bounds"] == [pytest.approx(CROWD[0] - 4e-4), 31.1, 117.9, pytest.approx(CROWD[1] + 24e-4)]


def test_permissions(mapped, engine):
    assert mapped.client.get("/api/v1/map/clusters", params={"bbox": "0,0,1,1", "zoom": 3}).status_code == 401
    assert mapped.client.get("/api/v1/map/settings").status_code == 401
    # A maintainer reads channels: the map is theirs too.
    tech = create_user(engine, "tech1", PASSWORD, "maintainer")
    headers = {"Authorization": f"Bearer {issue_token(engine, tech['id'], 600)}"}
    assert mapped.client.get("/api/v1/map/settings", headers=headers).status_code == 200


def test_empty_platform(api):
    assert api.get("/api/v1/map/settings", "viewer").json() == {
        "tile_url": None, "tile_attribution": "", "located": 0, "total": 0, "located_share": None, "bounds": None}
    assert api.get("/api/v1/map/clusters", "viewer", params={"bbox": "0,0,1,1", "zoom": 3}).json()["clusters"] == []


def test_configured_tiles_reach_the_console_and_its_policy(engine, tmp_path, monkeypatch):
    (tmp_path / "index.html").write_text("<!doctype html><title>console</title>")
    monkeypatch.setenv("CAMGRID_CONSOLE_DIR", str(tmp_path))
    plain = TestClient(create_api(ApiContext(engine=engine, settings=Settings())))
    assert "img-src 'self' data: blob:;" in plain.get("/map").headers["content-security-policy"]
    settings = Settings(http={"map_tile_url": "http://tiles.city.local:8080/{z}/{x}/{y}.png",
                              "map_tile_attribution": "City GIS"})
    client = TestClient(create_api(ApiContext(engine=engine, settings=settings)))
    csp = client.get("/map").headers["content-security-policy"]
    assert "img-src 'self' data: blob: http://tiles.city.local:8080;" in csp
    user = create_user(engine, "viewer9", PASSWORD, "viewer")
    headers = {"Authorization": f"Bearer {issue_token(engine, user['id'], 600)}"}
    body = client.get("/api/v1/map/settings", headers=headers).json()
    assert body["tile_url"] == "http://tiles.city.local:8080/{z}/{x}/{y}.png" and body["tile_attribution"] == "City GIS"


def test_tile_origin_and_setting_check():
    from camgrid.api.routes.maps import tile_origin
    assert tile_origin("https://t.example.local/{z}/{x}/{y}.png") == "https://t.example.local"
    assert tile_origin("/tiles/{z}/{x}/{y}.png") is None  # this server: 'self'
    assert tile_origin("http://evil; script-src *") is None
    with pytest.raises(ValueError):
        Settings(http={"map_tile_url": "ftp://x/{z}"})
