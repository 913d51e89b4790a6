"""Work orders, pure: states and legal steps, SLA deadlines, which team a fault goes to, and
whether a fault's clearing can be checked by the platform.

    open ──assign──▶ assigned ──start──▶ in_progress ──repaired──▶ verifying ──(fault cleared)──▶ closed
      │                 │ ▲ (assign again)     │ ▲                      │
      │                 │ └────────────────────┘ └──(not cleared in time)┘
      └────────cancel (with a reason) from any state but closed──────────▶ cancelled

An active order that waits for something outside the team's hands (access to the site, a part)
can be put on hold with a reason: its SLA clocks stop until it is resumed, and its deadlines move
by the time it was held. It is not started or repaired while on hold.

A work order is closed only when the fault has cleared: for faults the platform sees heal
(device back online, a fresh video-quality diagnosis passing, video flowing again) the
technician's "repaired" moves it to verifying, and the platform closes it when the alarm's
condition is gone; for faults it cannot see heal (a device's own alarm) "repaired" closes it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

OPEN, ASSIGNED, IN_PROGRESS, VERIFYING, CLOSED, CANCELLED = (
    "open", "assigned", "in_progress", "verifying", "closed", "cancelled")
STATES = (OPEN, ASSIGNED, IN_PROGRESS, VERIFYING, CLOSED, CANCELLED)
ACTIVE = (OPEN, ASSIGNED, IN_PROGRESS, VERIFYING)
SYSTEM_ACTOR = "system"

_FROM: dict[str, tuple[str, ...]] = {
    "assign": (OPEN, ASSIGNED, IN_PROGRESS),
    "start": (ASSIGNED,),
    "repaired": (ASSIGNED, IN_PROGRESS),
    "cancel": ACTIVE,
}
_HINT = {
    OPEN: "assign it to a team first",
    ASSIGNED: "start it, or record the repair",
    IN_PROGRESS: "record the repair when the work is done",
    VERIFYING: "the platform is waiting for the fault to clear; it closes the order by itself",
}


class OrderError(Exception):
    """A step that cannot be taken; `status` is the HTTP status it maps to."""

    status = 400


class IllegalStep(OrderError):
    status = 409


class OrderNotFound(OrderError):
    status = 404


HOLDABLE = (OPEN, ASSIGNED, IN_PROGRESS)
_HELD_BLOCKS = ("start", "repaired")


def check_hold(order_id: int, order: Mapping, action: str) -> None:
    """IllegalStep unless `action` (hold, resume, or a step) suits the order's hold: hold an
    active order not on hold, resume one on hold; no start or repair while on hold."""
    held = order.get("on_hold_since") is not None
    if action == "hold":
        if order["state"] in (CLOSED, CANCELLED):
            raise IllegalStep(f"work order {order_id} is {order['state']}; there is nothing to hold")
        if order["state"] not in HOLDABLE:
            raise IllegalStep(f"work order {order_id} is {order['state'].replace('_', ' ')}: {_HINT[order['state']]}")
        if held:
            raise IllegalStep(f"work order {order_id} is on hold already ({order.get('hold_reason') or 'no reason'})")
    elif action == "resume":
        if not held:
            raise IllegalStep(f"work order {order_id} is not on hold")
    elif action in _HELD_BLOCKS and held:
        raise IllegalStep(f"work order {order_id} is on hold ({order.get('hold_reason') or 'no reason'}): resume it first")


def resumed_deadlines(order: Mapping, now: datetime) -> dict:
    """What resuming an order held since on_hold_since changes: the deadlines still running
    move by the time held (the respond one only if it was not started), held_s grows."""
    paused = max(timedelta(0), now - order["on_hold_since"])
    values = {"held_s": float(order.get("held_s") or 0.0) + paused.total_seconds(), "resolve_due_at": order["resolve_due_at"] + paused}
    if order.get("started_at") is None:
        values["respond_due_at"] = order["respond_due_at"] + paused
    return values


def next_state(order_id: int, state: str, action: str, *, verifiable: bool = True) -> str:
    """The state after `action`, or IllegalStep saying why not and what to do instead."""
    if action not in _FROM:
        raise OrderError(f"unknown action {action!r}")
    if state not in _FROM[action]:
        if state in (CLOSED, CANCELLED):
            raise IllegalStep(f"work order {order_id} is {state}; open a new one if the fault is back")
        raise IllegalStep(f"work order {order_id} is {state.replace('_', ' ')}: {_HINT[state]}")
    if action == "assign":
        return ASSIGNED if state == OPEN else state
    if action == "start":
        return IN_PROGRESS
    if action == "repaired":
        return VERIFYING if verifiable else CLOSED
    return CANCELLED


@dataclass(frozen=True, slots=True)
class Sla:
    """How long a work order of a priority may wait to be started (respond) and to be closed."""

    respond_s: float
    resolve_s: float


def deadlines(created_at: datetime, sla: Sla) -> tuple[datetime, datetime]:
    return created_at + timedelta(seconds=sla.respond_s), created_at + timedelta(seconds=sla.resolve_s)


def sla_view(order: Mapping, now: datetime) -> dict:
    """Remaining seconds (negative: overdue) and what is breached, for people and the console.
    On hold the clocks stand still: remaining is counted to when the hold began, and the
    deadlines move by the held time when the order is resumed."""
    held_since = order.get("on_hold_since")
    out: dict = {"respond_due_at": order["respond_due_at"], "resolve_due_at": order["resolve_due_at"], "breached": [],
                 "paused": held_since is not None, "held_s": round(float(order.get("held_s") or 0.0)
                                                                   + ((now - held_since).total_seconds() if held_since else 0.0))}
    if held_since is not None:
        now = min(now, held_since)
    responded = order.get("started_at") or (order.get("closed_at") if order["state"] == CLOSED else None)
    finished = order.get("closed_at") or order.get("cancelled_at")
    for name, due, done in (("respond", order["respond_due_at"], responded), ("resolve", order["resolve_due_at"], finished)):
        end = done or now
        out[f"{name}_remaining_s"] = None if done else round((due - now).total_seconds())
        if end > due:
            out["breached"].append(name)
    return out


def matches(name: str, patterns: Iterable[str]) -> bool:
    return any(p == name or fnmatch.fnmatchcase(name, p) for p in patterns)


@dataclass(frozen=True, slots=True)
class Route:
    """Faults of these types (globs), on channels or devices whose civil code starts with one of
    `civil_prefixes` or that belong to one of `organisations` (empty: any), go to `team`."""

    team: str
    types: Sequence[str] = ("*",)
    civil_prefixes: Sequence[str] = ()
    organisations: Sequence[str] = ()

    def takes(self, type_: str, civil_code: str, organisation_id: str) -> bool:
        if not matches(type_, self.types):
            return False
        if self.civil_prefixes and not any(civil_code.startswith(p) for p in self.civil_prefixes):
            return False
        return not self.organisations or organisation_id in self.organisations


def route_team(routes: Sequence[Route], default: str, type_: str, civil_code: str = "",
               organisation_id: str = "") -> str:
    """The first route that takes the fault names the team; else the default team ("" for none)."""
    for route in routes:
        if route.takes(type_, civil_code or "", organisation_id or ""):
            return route.team
    return default
