"""The pure parts: rules (event → candidate/clear), flap detection with a hand-moved clock,
workflow transitions, backoff and signatures; garbage event data never raises."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alarm_helpers import CHANNEL, DEVICE, SECRET, FakeClock
from hypothesis import given, settings
from hypothesis import strategies as st

from camgrid.config import AlarmSettings
from camgrid.ops.alarms import flap
from camgrid.ops.alarms.delivery import sign, verify
from camgrid.ops.alarms.model import Candidate, Clear, IllegalTransition, next_state, priority_for
from camgrid.ops.alarms.outbox import backoff_s, topic
from camgrid.ops.alarms.rules import Rules

AT = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def one(items):
    assert len(items) == 1, items
    return items[0]


def test_device_alarm_names_method_and_type_and_keeps_priority():
    rules = Rules(AlarmSettings())
    c = one(rules.evaluate("alarm.device", CHANNEL, {"device_id": DEVICE, "AlarmPriority": "1", "AlarmMethod": "5",
                                                     "Info.AlarmType": "2", "AlarmDescription": "Motion"}, AT))
    assert isinstance(c, Candidate)
    assert (c.type, c.source, c.priority, c.channel_id, c.device_id) == ("alarm.video.motion", "device", 1, CHANNEL, DEVICE)
    assert c.key == f"alarm.video.motion|{CHANNEL}" and c.at == AT and "Motion" in c.title
    fault = one(rules.evaluate("alarm.device", DEVICE, {"device_id": DEVICE, "AlarmPriority": "9", "AlarmMethod": "6",
                                                        "Info.AlarmType": "1"}, AT))
    assert (fault.type, fault.priority, fault.channel_id) == ("alarm.fault.disk", 3, None)  # 9 is no priority: default
    assert one(rules.evaluate("alarm.device", CHANNEL, {"AlarmMethod": "2", "Info.AlarmType": "77"}, AT)).type == "alarm.device.type77"


def test_priority_overrides_and_ignored_types():
    rules = Rules(AlarmSettings(priority_overrides={"vqd.*": 4, "vqd.blur": 1, "health.offline": 3},
                                ignore_types=["recording.gap"]))
    assert one(rules.evaluate("vqd.fault", CHANNEL, {"type": "blur", "severity": "warning"}, AT)).priority == 1
    assert one(rules.evaluate("vqd.fault", CHANNEL, {"type": "frozen", "severity": "critical"}, AT)).priority == 4
    assert one(rules.evaluate("device.offline", DEVICE, {"reason": "keepalive timeout"}, AT)).priority == 3
    assert rules.evaluate("recording.gap", CHANNEL, {"cause": "node killed"}, AT) == []
    assert priority_for("alarm.video.motion", 2, {"alarm.*": 3, "alarm.video.*": 4}) == 4  # the longest glob wins


def test_clears_name_the_alarm_they_clear():
    rules = Rules(AlarmSettings())
    assert one(rules.evaluate("device.online", DEVICE, {}, AT)) == Clear(f"health.offline|{DEVICE}", AT, "device online again")
    vqd = one(rules.evaluate("vqd.cleared", CHANNEL, {"type": "Blur"}, AT))
    assert vqd.key == f"vqd.blur|{CHANNEL}"
    assert one(rules.evaluate("vqd.fault", CHANNEL, {"type": "Blur", "score": 0.2, "severity": "major"}, AT)).key == vqd.key
    assert {c.key for c in rules.evaluate("channel.on", CHANNEL, {}, AT)} == {
        f"health.channel_off|{CHANNEL}", f"health.video_lost|{CHANNEL}", f"health.channel_defect|{CHANNEL}"}
    assert one(rules.evaluate("media.first_frame", CHANNEL, {}, AT)).key == f"media.stream_timeout|{CHANNEL}"


def test_only_actionable_stream_ends_are_alarms():
    rules = Rules(AlarmSettings())
    assert rules.evaluate("media.stream_ended", CHANNEL, {"reason": "no viewers for 30 s"}, AT) == []
    assert rules.evaluate("media.stream_ended", CHANNEL, {"reason": "the device ended the stream (BYE)"}, AT) == []
    timeout = one(rules.evaluate("media.stream_ended", CHANNEL, {"reason": "no video within 10 s: no packets"}, AT))
    assert (timeout.type, timeout.source) == ("media.stream_timeout", "media")
    assert one(rules.evaluate("media.stream_ended", CHANNEL, {"reason": "media node unreachable: x"}, AT)).type == "media.node_lost"


def test_recording_and_low_space():
    rules = Rules(AlarmSettings())
    failed = one(rules.evaluate("recording.write_failed", CHANNEL, {"cause": "disk full", "device_id": DEVICE}, AT))
    assert (failed.type, failed.priority, failed.device_id) == ("recording.write_failed", 1, DEVICE)
    low = one(rules.evaluate("recording.low_space", "node-a", {"severity": "critical", "message": "full"}, AT))
    assert (low.priority, low.key) == (1, "recording.low_space|node-a")
    assert one(rules.evaluate("recording.low_space", "node-a", {"severity": "warning"}, AT)).priority == 2
    assert rules.evaluate("recording.started", CHANNEL, {}, AT)[0].key == f"recording.interrupted|{CHANNEL}"
    assert rules.evaluate("device.registered", DEVICE, {}, AT) == []


# -- flap detection -------------------------------------------------------------------------------

def test_flapping_starts_at_the_threshold_within_the_window():
    clock = FakeClock()
    det = flap.FlapDetector(threshold=3, window_s=60, stable_s=120, clock=clock)
    assert det.transition("d", online=False) == flap.NORMAL
    clock.advance(10)
    assert det.transition("d", online=True) == flap.NORMAL
    assert det.transition("d", online=False) == flap.NORMAL
    clock.advance(10)
    det.transition("d", online=True)
    assert det.transition("d", online=False) == flap.STARTED
    assert det.is_flapping("d") and det.offline_count("d") == 3
    assert det.transition("d", online=True) == flap.FLAPPING
    assert det.transition("d", online=False) == flap.FLAPPING
    assert det.offline_count("d") == 4


def test_offline_transitions_outside_the_window_do_not_count():
    clock = FakeClock()
    det = flap.FlapDetector(threshold=3, window_s=60, stable_s=120, clock=clock)
    for _ in range(10):
        assert det.transition("d", online=False) == flap.NORMAL
        det.transition("d", online=True)
        clock.advance(31)  # two offlines per 60 s at most
    assert not det.is_flapping("d")


def test_stable_after_quiet_period_reports_last_state_and_forgets():
    clock = FakeClock()
    det = flap.FlapDetector(threshold=2, window_s=60, stable_s=100, clock=clock)
    det.transition("a", online=False)
    det.transition("a", online=False)
    det.transition("b", online=False)
    det.transition("b", online=False)
    det.transition("b", online=True)
    clock.advance(99)
    assert det.tick() == []
    clock.advance(1)
    assert sorted(det.tick()) == [("a", False), ("b", True)]
    assert not det.is_flapping("a") and len(det) == 0
    assert det.transition("a", online=False) == flap.NORMAL  # a fresh start


def test_flap_threshold_below_two_is_refused():
    with pytest.raises(ValueError):
        flap.FlapDetector(threshold=1, window_s=60, stable_s=60)


# -- workflow -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("state", "action", "after"), [
    ("open", "acknowledge", "acknowledged"), ("acknowledged", "dispatch", "dispatched"),
    ("dispatched", "dispatch", "dispatched"), ("open", "resolve", "resolved"),
    ("acknowledged", "resolve", "resolved"), ("dispatched", "resolve", "resolved"),
])
def test_legal_transitions(state, action, after):
    assert next_state(1, state, action) == after


@pytest.mark.parametrize(("state", "action", "says"), [
    ("acknowledged", "acknowledge", "already acknowledged"), ("dispatched", "acknowledge", "already dispatched"),
    ("open", "dispatch", "acknowledge it before"), ("resolved", "resolve", "was resolved"),
    ("resolved", "acknowledge", "was resolved"), ("resolved", "dispatch", "was resolved"),
])
def test_illegal_transitions_say_why(state, action, says):
    with pytest.raises(IllegalTransition, match=says) as info:
        next_state(7, state, action, {"acknowledged_by": "op", "resolved_by": "op", "resolution": "fixed"})
    assert info.value.status == 409 and "alarm 7" in str(info.value)


# -- delivery pieces ---------------------------------------------------------------------------------

def test_backoff_doubles_is_capped_and_jittered():
    low = [backoff_s(n, 1.0, 60.0, rand=lambda: 0.0) for n in range(1, 10)]
    high = [backoff_s(n, 1.0, 60.0, rand=lambda: 1.0) for n in range(1, 10)]
    assert high == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert low == [h / 2 for h in high]
    assert backoff_s(10_000, 1.0, 60.0) <= 60.0


def test_signature_covers_timestamp_and_body():
    body = b'{"a":1}'
    sig = sign(SECRET, "1700000000", body)
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert verify(SECRET, "1700000000", body, sig, now=1700000010)
    assert not verify(SECRET, "1700000000", body + b" ", sig, now=1700000010)
    assert not verify(SECRET, "1700000001", body, sig, now=1700000010)
    assert not verify("another-secret-1234", "1700000000", body, sig, now=1700000010)
    assert not verify(SECRET, "1700000000", body, sig, now=1700009999)  # too old: replay


def test_mqtt_topic_has_priority_and_type_and_no_wildcards():
    assert topic("camgrid/alarms/", {"priority": 1, "type": "alarm.video.motion"}) == "camgrid/alarms/1/alarm.video.motion"
    assert "+" not in topic("x", {"priority": 2, "type": "vqd.a+b#"})


# -- garbage in -----------------------------------------------------------------------------------

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                     max_leaves=12)
_kinds = st.sampled_from(["alarm.device", "device.offline", "device.online", "vqd.fault", "vqd.cleared",
                          "media.stream_ended", "recording.gap", "recording.low_space", "recording.missed",
                          "channel.off", "channel.on", "media.first_frame", "recording.started", "nothing.at_all"])
_fields = st.dictionaries(st.sampled_from(["device_id", "AlarmPriority", "AlarmMethod", "Info.AlarmType", "type",
                                           "severity", "score", "reason", "cause", "message", "node_id"]) | st.text(max_size=8),
                          _json, max_size=8)


@settings(max_examples=300, deadline=None)
@given(kind=_kinds, subject=st.one_of(st.text(max_size=80), st.none(), st.integers()),
       data=st.one_of(_fields, _json), at=st.one_of(st.datetimes(), st.none(), st.text(max_size=5)))
def test_rules_never_raise_and_stay_in_bounds(kind, subject, data, at):
    for item in Rules(AlarmSettings()).evaluate(kind, subject, data, at):
        assert len(item.key) <= 255
        if isinstance(item, Candidate):
            assert 1 <= item.priority <= 4 and len(item.type) <= 64 and len(item.title) <= 300
            assert item.channel_id is None or len(item.channel_id) <= 20
            assert item.device_id is None or len(item.device_id) <= 20
            assert item.at.tzinfo is not None
            import json
            json.dumps(item.detail, allow_nan=False)
