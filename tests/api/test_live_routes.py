"""Live-video routes without media nodes: clear refusals, and who may do what.
(With real media nodes: tests/signaling/test_media_sessions.py and tests/e2e/test_live_processes.py.)"""

from __future__ import annotations

from api_helpers import chan_id, channel_row, dev_id, device_row, seed


def test_without_media_nodes_live_video_is_503_with_the_reason(api):
    seed(api.ctx.engine, [device_row(1)], [channel_row(dev_id(1), chan_id(1, 1))])
    resp = api.post(f"/api/v1/channels/{chan_id(1, 1)}/live", "viewer", json={})
    assert resp.status_code == 503 and "without media nodes" in resp.json()["error"]["message"]
    assert api.get("/api/v1/live", "viewer").status_code == 503


def test_stopping_a_stream_needs_a_token_and_a_playback_role(api, engine):
    # who may stop which stream: tests/api/test_playback_routes.py (a device playback is its starter's)
    from camgrid.governance.users import create_user, issue_token

    assert api.client.delete("/api/v1/live/abc").status_code == 401
    fixer = issue_token(engine, create_user(engine, "fixer1", "Quiet-Harbor-Lantern-9713", "maintainer")["id"], 3600)
    resp = api.client.delete("/api/v1/live/abc", headers={"Authorization": f"Bearer {fixer}"})
    assert resp.status_code == 403 and "video:playback" in resp.json()["error"]["message"]


def test_live_needs_a_token(api):
    assert api.client.post(f"/api/v1/channels/{chan_id(1, 1)}/live", json={}).status_code == 401
