"""The alarm model, pure: what an alarm candidate is, priorities, states and the workflow's
legal transitions. No I/O here; rules.py turns bus events into candidates, store.py keeps them.

States: open → acknowledged → dispatched → resolved. An alarm may be resolved from any state that
is not resolved (a false alarm needs no dispatch), dispatched again to someone else, and given
notes at any time, even resolved. Whether the condition is still there is a separate fact
(`cleared_at`): a device that came back online clears its offline alarm, which stays in the
workflow until someone resolves it, unless an auto-resolve rule says otherwise.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

OPEN, ACKNOWLEDGED, DISPATCHED, RESOLVED = "open", "acknowledged", "dispatched", "resolved"
STATES = (OPEN, ACKNOWLEDGED, DISPATCHED, RESOLVED)
UNRESOLVED = (OPEN, ACKNOWLEDGED, DISPATCHED)

# Priorities follow GB/T 28181 AlarmPriority: 1 is the most urgent, 4 the least.
PRIORITIES = (1, 2, 3, 4)
PRIORITY_NAMES = {1: "critical", 2: "major", 3: "minor", 4: "info"}

SOURCES = ("device", "health", "vqd", "recording", "media", "platform")

# Resolutions a person may give; "cleared" and "superseded" are the system's own.
RESOLUTIONS = ("fixed", "false_alarm", "duplicate", "no_action", "other")
SYSTEM_RESOLUTIONS = ("cleared", "superseded")

SYSTEM_ACTOR = "system"


@dataclass(frozen=True, slots=True)
class Candidate:
    """An alarm raised by an event, before de-duplication: `key` names the condition (one
    unresolved alarm per key), so a repeat of the same condition adds to that alarm's count."""

    type: str
    source: str
    priority: int
    key: str
    title: str
    at: datetime
    device_id: str | None = None
    channel_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Clear:
    """The condition behind the alarm with `key` went away (device back online, VQD clear ...)."""

    key: str
    at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Supersede:
    """Open alarms with these keys are replaced by the alarm with `by_key` (flapping)."""

    keys: tuple[str, ...]
    by_key: str
    at: datetime


class WorkflowError(Exception):
    """A workflow step that cannot be taken; `status` is the HTTP status it maps to."""

    status = 400


class IllegalTransition(WorkflowError):
    status = 409


class AlarmNotFound(WorkflowError):
    status = 404


# action → states it may be taken from
_FROM: dict[str, tuple[str, ...]] = {
    "acknowledge": (OPEN,),
    "dispatch": (ACKNOWLEDGED, DISPATCHED),
    "resolve": UNRESOLVED,
}
_TO = {"acknowledge": ACKNOWLEDGED, "dispatch": DISPATCHED, "resolve": RESOLVED}


def next_state(alarm_id: int, state: str, action: str, row: dict[str, Any] | None = None) -> str:
    """The state after `action`, or IllegalTransition saying why not and what to do instead."""
    if action not in _FROM:
        raise WorkflowError(f"unknown action {action!r}")
    if state in _FROM[action]:
        return _TO[action]
    row = row or {}
    if state == RESOLVED:
        raise IllegalTransition(f"alarm {alarm_id} was resolved by {row.get('resolved_by') or '?'} "
                                f"({row.get('resolution') or '?'}); it cannot be {_TO[action]} any more — "
                                "add a note, or wait for a new alarm if the condition comes back")
    if action == "acknowledge":
        raise IllegalTransition(f"alarm {alarm_id} is already {state} (by "
                                f"{row.get('acknowledged_by') or '?'}); dispatch or resolve it instead")
    if action == "dispatch":
        raise IllegalTransition(f"alarm {alarm_id} is {state}: acknowledge it before dispatching it")
    raise IllegalTransition(f"alarm {alarm_id} is {state}; {action} is not possible")  # pragma: no cover


def matches(name: str, patterns: Iterable[str]) -> bool:
    """Whether a type matches any pattern: exact names, or shell-style globs (vqd.*, alarm.video.*)."""
    return any(p == name or fnmatch.fnmatchcase(name, p) for p in patterns)


def priority_for(type_: str, default: int, overrides: dict[str, int]) -> int:
    """The configured override for a type (exact name first, then the longest matching glob)."""
    if type_ in overrides:
        return overrides[type_]
    globs = [p for p in overrides if fnmatch.fnmatchcase(type_, p)]
    return overrides[max(globs, key=len)] if globs else default


def clamp_priority(value: Any, default: int) -> int:
    """A GB/T 28181 priority from whatever a device sent: 1-4, else `default`."""
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        return default
    return n if 1 <= n <= 4 else default
