"""Linkage: what happens when an alarm is raised or comes back, by rule (alarms.linkage).

- bookmark: a row in alarm_bookmarks marking the alarm's time on the channel's recording
  timeline (written in the same transaction as the alarm);
- record: event recording (the seconds before and after, camgrid.signaling.recording_plans) on
  the rule's record channels, or the alarm's own; a device alarm's own channel is left to the
  recording plans, which trigger on every device alarm already;
- popup: the live alarm stream tells the console to open the channel's video.
Matching is pure; only `run` does I/O.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from camgrid.ops.alarms.model import matches
from camgrid.ops.alarms.store import Change

log = logging.getLogger(__name__)
TRIGGERING = ("raised", "recurred")


@dataclass(slots=True)
class Plan:
    bookmark: list[str] = field(default_factory=list)  # channels
    record: list[str] = field(default_factory=list)  # channels
    popup: bool = False

    def __bool__(self) -> bool:
        return bool(self.bookmark or self.record or self.popup)


def plan(change: Change, rules: list[Any]) -> Plan:
    """The actions the rules ask for on this change (only raised and recurred alarms act)."""
    out = Plan()
    if change.event not in TRIGGERING:
        return out
    alarm = change.alarm
    channel = alarm.get("channel_id")
    for rule in rules:
        if not matches(alarm["type"], rule.types) or alarm["priority"] > rule.max_priority:
            continue
        if rule.channels and channel not in rule.channels:
            continue
        if "bookmark" in rule.actions and channel and channel not in out.bookmark:
            out.bookmark.append(channel)
        if "popup" in rule.actions and channel:
            out.popup = True
        if "record" in rule.actions:
            for target in rule.record_channels or ([channel] if channel else []):
                if alarm["source"] == "device" and target == channel:
                    continue  # the recording plans trigger on the device's alarm themselves
                if target not in out.record:
                    out.record.append(target)
    return out


def bookmark_rows(change: Change, p: Plan, now: datetime) -> list[dict[str, Any]]:
    alarm = change.alarm
    return [{"channel_id": ch, "at": change.at, "alarm_id": alarm.get("id"), "label": alarm["title"][:300],
             "created_at": now} for ch in p.bookmark]


async def run(change: Change, p: Plan, recording_plans: Any) -> dict[str, str]:
    """Carry out the record actions; what became of each channel (triggered, missed, not_event,
    failed, unavailable)."""
    results: dict[str, str] = {}
    for channel_id in p.record:
        if recording_plans is None:
            results[channel_id] = "unavailable"
            continue
        try:
            results[channel_id] = await recording_plans.trigger_event(channel_id, {
                "alarm_id": change.alarm.get("id"), "type": change.alarm["type"], "priority": change.alarm["priority"]})
        except Exception as exc:  # noqa: BLE001 - one channel's failure must not stop the others
            log.warning("linkage: event recording of %s for alarm %s failed: %s", channel_id, change.alarm.get("id"), exc)
            results[channel_id] = "failed"
    return results
