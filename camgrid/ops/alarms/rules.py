"""Bus events → alarm candidates and clears. Pure: no I/O, and no input makes it raise.

Types are named by where they come from:
- `alarm.<method>[.<kind>]`: a device's GB/T 28181 Alarm NOTIFY (source device), e.g.
  alarm.video.motion, alarm.device.tamper, alarm.fault.disk; priority from AlarmPriority.
- `health.offline`, `health.flapping` (a device), `health.channel_off`, `health.video_lost`,
  `health.channel_defect` (a channel's catalog status).
- `vqd.<fault>`: video quality diagnosis, e.g. vqd.blur.
- `recording.gap`, `recording.write_failed`, `recording.low_space`, `recording.interrupted`,
  `recording.missed`.
- `media.stream_timeout` (no video / no media from the device), `media.node_lost`.
The de-duplication key is `<type>|<subject>`: one unresolved alarm per condition and subject.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from camgrid.ops.alarms.model import Candidate, Clear, clamp_priority, matches, priority_for

# GB/T 28181-2016 A.2.5 / 9.4: AlarmMethod and, per method, Info.AlarmType.
METHODS = {"1": "phone", "2": "device", "3": "sms", "4": "gps", "5": "video", "6": "fault", "7": "other"}
ALARM_KINDS = {
    "device": {"1": "video_lost", "2": "tamper", "3": "storage_full", "4": "over_temperature", "5": "under_temperature"},
    "video": {"1": "manual", "2": "motion", "3": "left_object", "4": "object_removed", "5": "tripwire", "6": "intrusion",
              "7": "retrograde", "8": "loitering", "9": "flow_statistics", "10": "density", "11": "video_anomaly",
              "12": "fast_moving"},
    "fault": {"1": "disk", "2": "fan"},
}
DEFAULT_PRIORITY = {
    "health.offline": 2, "health.flapping": 2, "health.channel_off": 3, "health.video_lost": 2,
    "health.channel_defect": 3, "recording.gap": 3, "recording.write_failed": 1, "recording.interrupted": 3,
    "recording.missed": 2, "media.stream_timeout": 3, "media.node_lost": 2,
}
CHANNEL_STATUS = {"channel.off": ("health.channel_off", "channel off"),
                  "channel.vlost": ("health.video_lost", "video lost"),
                  "channel.defect": ("health.channel_defect", "channel defect")}
VQD_SEVERITY = {"critical": 1, "high": 2, "major": 2, "error": 2, "medium": 3, "warning": 3, "minor": 3,
                "low": 4, "info": 4}
MAX_DETAIL_CHARS = 4000
_NAME = re.compile(r"[^a-z0-9_]+")


def _text(value: Any, limit: int) -> str:
    return (value if isinstance(value, str) else "" if value is None else str(value))[:limit]


def _id(value: Any) -> str | None:
    text = _text(value, 20).strip()
    return text or None


def _name(value: Any, default: str = "unknown") -> str:
    name = _NAME.sub("_", _text(value, 64).strip().lower()).strip("_")[:32]
    return name or default


def plain(data: Any) -> dict[str, Any]:
    """JSON-safe, bounded copy of event data for an alarm's detail."""
    if not isinstance(data, dict):
        return {"value": _text(repr(data), 500)} if data not in (None, "", {}) else {}
    out: dict[str, Any] = {}
    for key, value in list(data.items())[:50]:
        k = _text(key, 64)
        if isinstance(value, bool | int | float) or value is None:
            out[k] = value if not isinstance(value, float) or value == value and abs(value) != float("inf") else str(value)
        elif isinstance(value, str):
            out[k] = value[:1000]
        else:
            try:
                out[k] = json.loads(json.dumps(value, default=str, allow_nan=False)[:MAX_DETAIL_CHARS])
            except (TypeError, ValueError, RecursionError):
                out[k] = _text(repr(value), 500)
    return out


def _at(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.now(UTC)


class Rules:
    """Turns one bus event into candidates and clears, under the alarm settings."""

    def __init__(self, settings: Any) -> None:  # camgrid.config.AlarmSettings
        self.s = settings
        self._handlers: dict[str, Callable[[str, str, dict[str, Any], datetime], list[Candidate | Clear]]] = {
            "alarm.device": self._device_alarm,
            "device.offline": self._offline,
            "device.online": self._online,
            "vqd.fault": self._vqd_fault,
            "vqd.cleared": self._vqd_cleared,
            "media.stream_ended": self._stream_ended,
            "media.first_frame": lambda k, s, d, at: [Clear(f"media.stream_timeout|{s}", at, "video arrived again")],
            "recording.started": lambda k, s, d, at: [Clear(f"recording.interrupted|{s}", at, "recording again"),
                                                      Clear(f"recording.missed|{s}", at, "recording again")],
            "recording.gap": self._recording,
            "recording.write_failed": self._recording,
            "recording.interrupted": self._recording,
            "recording.missed": self._recording,
            "recording.low_space": self._low_space,
            "channel.off": self._channel_status, "channel.vlost": self._channel_status,
            "channel.defect": self._channel_status,
            "channel.on": self._channel_back, "channel.del": self._channel_back,
        }

    kinds = property(lambda self: tuple(self._handlers))

    def evaluate(self, kind: Any, subject: Any, data: Any, at: Any) -> list[Candidate | Clear]:
        """Candidates and clears for one event; [] for events that are no alarm."""
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            return []
        items = handler(kind, _text(subject, 64), data if isinstance(data, dict) else {}, _at(at))
        return [i for i in items if isinstance(i, Clear) or not matches(i.type, self.s.ignore_types)]

    def candidate(self, type_: str, source: str, subject: str, title: str, at: datetime, *, default_priority: int,
                  device_id: str | None = None, channel_id: str | None = None,
                  detail: dict[str, Any] | None = None) -> Candidate:
        priority = priority_for(type_, default_priority, self.s.priority_overrides)
        return Candidate(type=type_[:64], source=source, priority=priority, key=f"{type_}|{subject}"[:255],
                         title=title[:300], at=at, device_id=device_id, channel_id=channel_id, detail=detail or {})

    # -- devices ----------------------------------------------------------------------------------
    def _device_alarm(self, kind: str, subject: str, data: dict[str, Any], at: datetime) -> list[Candidate | Clear]:
        device_id = _id(data.get("device_id")) or _id(subject)
        method = METHODS.get(_text(data.get("AlarmMethod"), 8).strip(), "other")
        kind_code = _text(data.get("Info.AlarmType", data.get("AlarmType")), 8).strip()
        kind = ALARM_KINDS.get(method, {}).get(kind_code) or (f"type{_name(kind_code)}" if kind_code else "")
        type_ = f"alarm.{method}.{kind}" if kind else f"alarm.{method}"
        description = _text(data.get("AlarmDescription"), 200).strip()
        channel_id = _id(subject) if _id(subject) != device_id else None
        where = channel_id or device_id or "?"
        title = f"{description or type_.removeprefix('alarm.').replace('.', ' ').replace('_', ' ')} on {where}"
        return [self.candidate(type_, "device", subject or (device_id or ""), title, at,
                               default_priority=clamp_priority(data.get("AlarmPriority"), 3), device_id=device_id,
                               channel_id=channel_id, detail=plain(data))]

    def _offline(self, kind: str, subject: str, data: dict[str, Any], at: datetime) -> list[Candidate | Clear]:
        reason = _text(data.get("reason"), 200) or "unknown reason"
        return [self.candidate("health.offline", "health", subject, f"device {subject} offline: {reason}", at,
                               default_priority=DEFAULT_PRIORITY["health.offline"], device_id=_id(subject),
                               detail=plain(data))]

    def _online(self, kind: str, subject: str, data: dict[str, Any], at: datetime) -> list[Candidate | Clear]:
        return [Clear(f"health.offline|{subject}", at, "device online again")]

    def flapping(self, device_id: str, at: datetime, transitions: int, window_s: float) -> Candidate:
        return self.candidate("health.flapping", "health", device_id,
                              f"device {device_id} is flapping: offline {transitions} times in {window_s:.0f} s", at,
                              default_priority=DEFAULT_PRIORITY["health.flapping"], device_id=_id(device_id),
                              detail={"offline_transitions": transitions, "window_s": window_s})

    # -- channels ---------------------------------------------------------------------------------
    def _channel_status(self, kind: str, subject: str, data: dict[str, Any], at: datetime) -> list[Candidate | Clear]:
        type_, what = CHANNEL_STATUS[kind]
        return [self.candidate(type_, "health", subject, f"{what} on channel {subject}", at,
                               default_priority=DEFAULT_PRIORITY[type_], channel_id=_id(subject),
                               device_id=_id(data.get("device_id")), detail=plain(data))]

    # -- VQD --------------------------------------------------------------------------------------
    def _vqd_fault(self, kind: str, subject: str, data: dict[str, Any], at: datetime) -> list[Candidate | Clear]:
        fault = _name(data.get("type"))
        severity = data.get("severity")
        default = clamp_priority(severity, 0) or VQD_SEVERITY.get(_text(severity, 16).strip().lower(), 3)
        score = data.get("score")
        title = f"video quality: {fault.replace('_', ' ')} on {subject}"
        if isinstance(score, int | float) and not isinstance(score, bool):
            title += f" (score {score:.3g})"
        return [self.candidate(f"vqd.{fault}", "vqd", subject, title, at, default_priority=default,
                               channel_id=_id(subject), device_id=_id(data.get("device_id")), detail=plain(data))]

    def _vqd_cleared(self, kind: str, subject: str, data: dict[str, Any], at: datetime) -> list[Candidate | Clear]:
        return [Clear(f"vqd.{_name(data.get('type'))}|{subject}", at, "video quality back to normal")]

    # -- recording and media ------------------------------------------------------------------------
    def _recording(self, kind: str, subject: str, data: dict[str, Any], at: datetime) -> list[Candidate | Clear]:
        why = _text(data.get("cause") or data.get("reason") or data.get("detail"), 200) or "no cause given"
        what = {"recording.gap": "gap in the recording", "recording.write_failed": "recording cannot be written",
                "recording.interrupted": "recording interrupted",
                "recording.missed": "event recording missed"}[kind]
        return [self.candidate(kind, "recording", subject, f"{what} of {subject}: {why}", at,
                               default_priority=DEFAULT_PRIORITY[kind], channel_id=_id(subject),
                               device_id=_id(data.get("device_id")), detail=plain(data))]

    def _low_space(self, kind: str, subject: str, data: dict[str, Any], at: datetime) -> list[Candidate | Clear]:
        critical = _text(data.get("severity"), 16).lower() == "critical"
        message = _text(data.get("message"), 250)
        node = _text(data.get("node_id"), 64) or subject
        return [self.candidate("recording.low_space", "recording", node, f"recording disk low on {node}: {message}", at,
                               default_priority=1 if critical else 2, detail=plain(data))]

    def _stream_ended(self, kind: str, subject: str, data: dict[str, Any], at: datetime) -> list[Candidate | Clear]:
        reason = _text(data.get("reason"), 300)
        if not any(reason.startswith(p) for p in self.s.media_alarm_reasons):
            return []
        type_ = "media.node_lost" if reason.startswith("media node") else "media.stream_timeout"
        return [self.candidate(type_, "media", subject, f"stream of {subject} ended: {reason}", at,
                               default_priority=DEFAULT_PRIORITY[type_], channel_id=_id(subject),
                               device_id=_id(data.get("device_id")), detail=plain(data))]

    def _channel_back(self, kind: str, subject: str, data: dict[str, Any], at: datetime) -> list[Candidate | Clear]:
        return [Clear(f"{type_}|{subject}", at, "channel back on") for type_, _ in CHANNEL_STATUS.values()]
