"""What the playback-start routes answer (issue 3, playback): recorded playback names the codec,
size and sound of the footage it starts with; device playback names the range the device was
asked for, its sound once known, and the link. The media side is a stand-in here (the signaling
and the node are tested with real parts in tests/signaling/test_device_playback_position.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

from api_helpers import chan_id, channel_row, dev_id, device_row, seed

from camgrid.media.client import NodeClient
from camgrid.signaling.media_sessions import MediaSession
from camgrid.store.tables import recordings

START = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
CHANNEL = chan_id(1, 1)


class StandInMedia:
    """The part of MediaSessions the routes use, with one real NodeClient (it signs links offline)."""

    def __init__(self) -> None:
        self.node = NodeClient("http://127.0.0.1:9", "node-secret")
        self.sessions: dict[str, MediaSession] = {}

    async def node_for(self, node_id: str) -> NodeClient:
        return self.node

    async def playback(self, device_id, channel_id, start, end, *, download_speed=None, transport=None):
        session = MediaSession("s1", device_id, channel_id, self.node, "udp", "1100000001", None, kind="Playback",
                               range_s=(int(start.timestamp()), int(end.timestamp())))
        session.state = "playing"
        session.stats = {"codec": "h264", "width": 320, "height": 240,
                         "audio": {"codec": "g711a", "sample_rate": 8000, "played": True}}
        self.sessions[session.session_id] = session
        return session

    async def wait_first_frame(self, session, timeout_s):
        return True

    async def control(self, session, action, value=None):
        session.paused = action == "pause"
        return session.describe()

    async def end(self, session, reason):
        session.state, session.end_reason = "ended", reason
        self.sessions.pop(session.session_id, None)


def add_recording(engine, start: datetime, seconds: float, audio_codec: str | None) -> None:
    with engine.begin() as conn:
        conn.execute(recordings.insert().values(
            id=uuid.uuid4().hex, channel_id=CHANNEL, device_id=dev_id(1), start_at=start,
            end_at=start + timedelta(seconds=seconds), bytes=1000, path=f"{CHANNEL}/{start:%H%M%S}.mp4", codec="h265",
            width=1920, height=1080, state="closed", audio_codec=audio_codec, node_id="n1", created_at=start))


def test_recorded_playback_names_the_sound_of_the_footage_it_starts_with(make_api, users):
    api = make_api(media=StandInMedia())
    api.tokens = users
    seed(api.ctx.engine, [device_row(1)], [channel_row(dev_id(1), CHANNEL)])
    add_recording(api.ctx.engine, START, 60, "g711a")
    add_recording(api.ctx.engine, START + timedelta(minutes=5), 60, None)

    resp = api.post(f"/api/v1/channels/{CHANNEL}/playback", "viewer",
                    json={"from": (START + timedelta(seconds=10)).isoformat(), "speed": 2})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["codec"], body["width"], body["height"], body["audio_codec"]) == ("h265", 1920, 1080, "g711a")
    assert body["first_recorded"] == (START + timedelta(seconds=10)).isoformat()
    assert parse_qs(urlparse(body["ws_url"]).query)["speed"] == ["2.0"]

    silent = api.post(f"/api/v1/channels/{CHANNEL}/playback", "viewer",
                      json={"from": (START + timedelta(minutes=5)).isoformat()}).json()
    assert silent["audio_codec"] is None and silent["first_recorded"] == (START + timedelta(minutes=5)).isoformat()


def test_device_playback_names_the_range_the_sound_and_the_link(make_api, users):
    api = make_api(media=StandInMedia())
    api.tokens = users
    seed(api.ctx.engine, [device_row(1)], [channel_row(dev_id(1), CHANNEL)])
    # A start with a fraction of a second, an end in +08:00: the device is asked for whole seconds, in UTC.
    asked_from = (START + timedelta(seconds=0.4)).isoformat()
    resp = api.post(f"/api/v1/channels/{CHANNEL}/device-playback", "viewer",
                    json={"from": asked_from, "to": "2026-11-30T16:30:00+08:00"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["kind"] == "Playback" and body["session_id"] == "s1"
    assert body["range"] == {"from": START.isoformat(), "to": (START + timedelta(minutes=30)).isoformat()}
    assert body["audio_codec"] == "g711a" and body["codec"] == "h264"
    assert (body["speed"], body["paused"]) == (1.0, False)
    assert body["ws_url"].startswith("ws://127.0.0.1:9/live/s1?token=") and body["link_valid_s"] > 0
    # A live stream's description has no range.
    live = MediaSession("s2", dev_id(1), CHANNEL, api.ctx.media.node, "udp", "0100000001", None)
    assert "range" not in live.describe() and live.describe()["audio_codec"] is None


def test_a_device_playback_is_its_starters_to_steer_and_stop(make_api, users, engine):
    from camgrid.governance.users import create_user, issue_token

    api = make_api(media=StandInMedia())
    api.tokens = {**users, "other viewer": issue_token(engine, create_user(engine, "viewer2", "Quiet-Harbor-Lantern-9713",
                                                                             "viewer")["id"], 3600)}
    seed(api.ctx.engine, [device_row(1)], [channel_row(dev_id(1), CHANNEL)])
    resp = api.post(f"/api/v1/channels/{CHANNEL}/device-playback", "viewer",
                    json={"from": START.isoformat(), "to": (START + timedelta(minutes=10)).isoformat()})
    assert resp.status_code == 200 and resp.json()["started_by"] == "viewer1"

    refused = api.post("/api/v1/live/s1/control", "other viewer", json={"action": "pause"})
    assert refused.status_code == 403 and "started by viewer1" in refused.json()["error"]["message"]
    assert api.client.delete("/api/v1/live/s1", headers=api.h("other viewer")).status_code == 403
    assert api.post("/api/v1/live/s1/control", "viewer", json={"action": "pause"}).json()["paused"] is True
    assert api.post("/api/v1/live/s1/control", "operator", json={"action": "resume"}).status_code == 200
    assert api.client.delete("/api/v1/live/s1", headers=api.h("viewer")).status_code == 200
    assert "s1" not in api.ctx.media.sessions

    # A live stream is shared by its viewers: stopping it for all of them needs commands:device.
    live = MediaSession("s2", dev_id(1), CHANNEL, api.ctx.media.node, "udp", "0100000001", None)
    api.ctx.media.sessions["s2"] = live
    assert api.client.delete("/api/v1/live/s2", headers=api.h("viewer")).status_code == 403
    assert api.client.delete("/api/v1/live/s2", headers=api.h("operator")).status_code == 200
