"""Work orders and teams in the database. Each step writes the order, its history row and the
audit row in one transaction. Blocking: call from a worker thread."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from camgrid.governance.audit import audit
from camgrid.ops.maintenance import model
from camgrid.ops.maintenance.model import OrderError, OrderNotFound, Sla
from camgrid.registry._sql import aware
from camgrid.store.engine import utcnow
from camgrid.store.tables import alarms, channels, devices, maintenance_teams, users, work_order_history, work_orders

MAX_NOTE = 2000
_TIMES = ("created_at", "assigned_at", "started_at", "repaired_at", "closed_at", "cancelled_at", "respond_due_at",
          "resolve_due_at", "on_hold_since")


def order_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for name in _TIMES:
        out[name] = aware(out.get(name))
    out.pop("active_alarm_id", None)
    return out


def get(conn: Connection, order_id: int, *, for_update: bool = False) -> dict[str, Any]:
    stmt = select(work_orders).where(work_orders.c.id == order_id)
    if for_update and conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).mappings().first()
    if row is None:
        raise OrderNotFound(f"no work order {order_id}")
    return order_dict(row)


def history_of(conn: Connection, order_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(select(work_order_history).where(work_order_history.c.order_id == order_id)
                        .order_by(work_order_history.c.id)).mappings()
    return [{**dict(r), "at": aware(r["at"])} for r in rows]


def _history(conn: Connection, order_id: int, at: datetime, actor: str, action: str, note: str = "",
             data: dict[str, Any] | None = None) -> None:
    conn.execute(work_order_history.insert().values(order_id=order_id, at=at, actor=actor[:64], action=action,
                                                    note=(note or "")[:MAX_NOTE], data=data or {}))


# -- teams --------------------------------------------------------------------------------------
def team_by_name(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(select(maintenance_teams).where(maintenance_teams.c.name == name)).mappings().first()
    return dict(row) if row else None


def list_teams(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        open_counts = dict(conn.execute(select(work_orders.c.team_id, func.count())
                                        .where(work_orders.c.state.in_(model.ACTIVE)).group_by(work_orders.c.team_id)).all())
        return [{**dict(r), "updated_at": aware(r["updated_at"]), "active_orders": open_counts.get(r["id"], 0)}
                for r in conn.execute(select(maintenance_teams).order_by(maintenance_teams.c.name)).mappings()]


def save_team(engine: Engine, actor: str, name: str, *, contact: str | None = None, members: list[str] | None = None,
              team_id: int | None = None, source_addr: str | None = None) -> dict[str, Any]:
    now = utcnow()
    with engine.begin() as conn:
        if members is not None:
            known = set(conn.execute(select(users.c.username).where(users.c.username.in_(members))).scalars())
            unknown = sorted(set(members) - known)
            if unknown:
                raise OrderError(f"no such user: {', '.join(unknown)}")
        values: dict[str, Any] = {"name": name, "updated_at": now, "updated_by": actor[:64]}
        if contact is not None:
            values["contact"] = contact
        if members is not None:
            values["members"] = sorted(set(members))
        try:
            if team_id is None:
                values.setdefault("contact", "")
                values.setdefault("members", [])
                team_id = conn.execute(maintenance_teams.insert().values(**values)).inserted_primary_key[0]
            elif conn.execute(update(maintenance_teams).where(maintenance_teams.c.id == team_id).values(**values)).rowcount == 0:
                raise OrderNotFound(f"no maintenance team {team_id}")
        except IntegrityError:
            raise model.IllegalStep(f"a team named {name!r} exists already") from None
        audit(conn, actor, "maintenance.team", str(team_id), {"name": name, "contact": contact, "members": members},
              source_addr)
        return dict(conn.execute(select(maintenance_teams).where(maintenance_teams.c.id == team_id)).mappings().one())


# -- opening ------------------------------------------------------------------------------------
def _place(conn: Connection, device_id: str | None, channel_id: str | None) -> tuple[str, str]:
    """(civil code, organisation) of the channel, else of the device: what routes choose teams by."""
    if channel_id:
        row = conn.execute(select(channels.c.civil_code, channels.c.organisation_id)
                           .where(channels.c.id == channel_id)).first()
        if row:
            return row[0] or "", row[1] or ""
    if device_id:
        row = conn.execute(select(devices.c.civil_code, devices.c.organisation_id).where(devices.c.id == device_id)).first()
        if row:
            return row[0] or "", row[1] or ""
    return "", ""


def open_order(conn: Connection, *, type_: str, title: str, priority: int, actor: str, now: datetime, sla: Sla,
               verifiable: bool, routes: list[model.Route], default_team: str, alarm: Mapping[str, Any] | None = None,
               device_id: str | None = None, channel_id: str | None = None, team: str | None = None,
               assignee: str | None = None, note: str = "", source_addr: str | None = None) -> int:
    """A new work order (from an alarm, or by hand); routed to a team unless one is given."""
    if alarm is not None:
        device_id, channel_id = alarm.get("device_id"), alarm.get("channel_id")
    civil, org = _place(conn, device_id, channel_id)
    team_name = team if team is not None else model.route_team(routes, default_team, type_, civil, org)
    team_row = team_by_name(conn, team_name) if team_name else None
    if team_name and team_row is None:
        raise OrderError(f"no maintenance team named {team_name!r}; create it first (POST /maintenance/teams)")
    if assignee:
        _check_user(conn, assignee)
    respond_due, resolve_due = model.deadlines(now, sla)
    state = model.ASSIGNED if team_row or assignee else model.OPEN
    values = {"alarm_id": alarm["id"] if alarm else None, "active_alarm_id": alarm["id"] if alarm else None,
              "dedup_key": alarm.get("dedup_key") if alarm else None, "type": type_[:64], "device_id": device_id,
              "channel_id": channel_id, "title": title[:300], "priority": priority, "state": state,
              "verifiable": verifiable, "team_id": team_row["id"] if team_row else None, "assignee": assignee,
              "created_at": now, "created_by": actor[:64], "assigned_at": now if state == model.ASSIGNED else None,
              "respond_due_at": respond_due, "resolve_due_at": resolve_due, "respond_breached": False,
              "resolve_breached": False}
    try:  # the unique active_alarm_id: a second active order for one alarm fails (and rolls back) here
        order_id = conn.execute(work_orders.insert().values(**values)).inserted_primary_key[0]
    except IntegrityError:
        raise model.IllegalStep(f"alarm {alarm['id']} already has an active work order") from None
    _history(conn, order_id, now, actor, "opened", note, {"team": team_name or None, "assignee": assignee,
                                                          "alarm_id": values["alarm_id"]})
    audit(conn, actor, "work_order.open", str(order_id), {"type": type_, "alarm_id": values["alarm_id"],
                                                            "team": team_name or None, "note": note[:500]}, source_addr)
    return order_id


def _check_user(conn: Connection, username: str) -> None:
    row = conn.execute(select(users.c.disabled).where(users.c.username == username)).first()
    if row is None or row[0]:
        raise OrderError(f"{username!r} is not an active user")


# -- steps --------------------------------------------------------------------------------------
def step(engine: Engine, order_id: int, action: str, actor: str, note: str = "", *, team: str | None = None,
         assignee: str | None = None, source_addr: str | None = None,
         now: datetime | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """assign / start / repaired / cancel / note / hold / resume; returns (order before, order after)."""
    now = now or utcnow()
    with engine.begin() as conn:
        before = get(conn, order_id, for_update=True)
        values: dict[str, Any] = {}
        data: dict[str, Any] = {}
        model.check_hold(order_id, before, action)
        if action == "note":
            if not note.strip():
                raise OrderError("a note needs some text")
        elif action == "hold":
            if not note.strip():
                raise OrderError("say what the work order waits for (access, a part, ...)")
            values.update(on_hold_since=now, hold_reason=note.strip()[:300])
            conn.execute(update(work_orders).where(work_orders.c.id == order_id).values(**values))
        elif action == "resume":
            values.update(model.resumed_deadlines(before, now), on_hold_since=None, hold_reason=None)
            data = {"held_s": round((now - before["on_hold_since"]).total_seconds())}
            conn.execute(update(work_orders).where(work_orders.c.id == order_id).values(**values))
        else:
            state = model.next_state(order_id, before["state"], action, verifiable=before["verifiable"])
            values["state"] = state
            if action == "assign":
                if not team and not assignee:
                    raise OrderError("say which team (or person) takes the work order")
                if team:
                    row = team_by_name(conn, team)
                    if row is None:
                        raise OrderError(f"no maintenance team named {team!r}")
                    values["team_id"] = row["id"]
                if assignee:
                    _check_user(conn, assignee)
                values.update(assignee=assignee or None, assigned_at=now)
                data = {"team": team, "assignee": assignee}
            elif action == "start":
                values["started_at"] = now
            elif action == "repaired":
                values["repaired_at"] = now
                if state == model.CLOSED:
                    values.update(closed_at=now, closed_by=actor[:64], active_alarm_id=None)
            elif action == "cancel":
                if not note.strip():
                    raise OrderError("say why the work order is cancelled")
                values.update(cancelled_at=now, active_alarm_id=None)
                if before["on_hold_since"] is not None:  # the hold ends with the order
                    values.update(held_s=float(before["held_s"] or 0.0) + (now - before["on_hold_since"]).total_seconds(),
                                  on_hold_since=None)
            conn.execute(update(work_orders).where(work_orders.c.id == order_id).values(**values))
        _history(conn, order_id, now, actor, action, note, data)
        if values.get("state") == model.CLOSED:
            _history(conn, order_id, now, actor, "closed", "repaired (the platform cannot see this fault clear)")
        audit(conn, actor, f"work_order.{action}", str(order_id), {"state": values.get("state", before["state"]),
                                                                     "note": note[:500], **data}, source_addr)
        return before, get(conn, order_id)


def close_verified(engine: Engine, order_id: int, now: datetime) -> dict[str, Any] | None:
    """Close a verifying order whose fault has cleared; None when it is not verifying any more."""
    with engine.begin() as conn:
        order = get(conn, order_id, for_update=True)
        if order["state"] != model.VERIFYING:
            return None
        conn.execute(update(work_orders).where(work_orders.c.id == order_id).values(
            state=model.CLOSED, closed_at=now, closed_by=model.SYSTEM_ACTOR, active_alarm_id=None))
        _history(conn, order_id, now, model.SYSTEM_ACTOR, "closed", "the fault has cleared")
        audit(conn, model.SYSTEM_ACTOR, "work_order.close", str(order_id), {"why": "fault cleared"})
        return get(conn, order_id)


def reopen_unverified(engine: Engine, order_id: int, now: datetime, waited_s: float) -> bool:
    with engine.begin() as conn:
        order = get(conn, order_id, for_update=True)
        if order["state"] != model.VERIFYING:
            return False
        conn.execute(update(work_orders).where(work_orders.c.id == order_id).values(state=model.IN_PROGRESS))
        _history(conn, order_id, now, model.SYSTEM_ACTOR, "not_cleared",
                 f"the fault was still there {waited_s / 60:.0f} min after the repair; back in progress")
        return True


# -- what the worker looks at -------------------------------------------------------------------
def fault_present(conn: Connection, dedup_key: str | None) -> bool:
    """Whether the condition is still there: an unresolved alarm with its key that has not cleared."""
    if not dedup_key:
        return False
    return bool(conn.execute(select(exists().where(alarms.c.open_key == dedup_key,
                                                   alarms.c.cleared_at.is_(None)))).scalar())


def alarms_without_orders(conn: Connection, raised_before: datetime, limit: int = 500) -> list[dict[str, Any]]:
    """Unresolved, uncleared alarms raised before a time that have no active work order."""
    active = select(work_orders.c.alarm_id).where(work_orders.c.state.in_(model.ACTIVE), work_orders.c.alarm_id.isnot(None))
    rows = conn.execute(select(alarms).where(alarms.c.open_key.isnot(None), alarms.c.cleared_at.is_(None),
                                             alarms.c.first_at <= raised_before, alarms.c.id.not_in(active))
                        .order_by(alarms.c.priority, alarms.c.id).limit(limit)).mappings()
    return [dict(r) for r in rows]


def verifying(conn: Connection) -> list[dict[str, Any]]:
    return [order_dict(r) for r in conn.execute(select(work_orders).where(work_orders.c.state == model.VERIFYING)).mappings()]


def mark_breaches(conn: Connection, now: datetime) -> list[tuple[int, str]]:
    """Flag active orders whose deadlines passed; returns (order id, "respond" | "resolve") newly flagged."""
    out: list[tuple[int, str]] = []
    t = work_orders
    for name, due, flag, done in (("respond", t.c.respond_due_at, t.c.respond_breached, t.c.started_at),
                                  ("resolve", t.c.resolve_due_at, t.c.resolve_breached, t.c.closed_at)):
        cond = and_(t.c.state.in_(model.ACTIVE), due < now, flag.is_(False), done.is_(None), t.c.on_hold_since.is_(None))
        ids = list(conn.execute(select(t.c.id).where(cond)).scalars())
        if ids:
            conn.execute(update(t).where(t.c.id.in_(ids)).values({flag.name: True}))
            for order_id in ids:
                _history(conn, order_id, now, model.SYSTEM_ACTOR, "sla_breached", f"{name} deadline passed")
            out += [(i, name) for i in ids]
    return out


def query(*, state: str | None = None, team_id: int | None = None, assignee: str | None = None,
          channel_id: str | None = None, device_id: str | None = None, breached: bool | None = None) -> Any:
    t = work_orders
    stmt = select(t).order_by(t.c.id.desc())
    if state == "active":
        stmt = stmt.where(t.c.state.in_(model.ACTIVE))
    elif state and state != "all":
        stmt = stmt.where(t.c.state == state)
    for column, value in ((t.c.team_id, team_id), (t.c.assignee, assignee), (t.c.channel_id, channel_id),
                          (t.c.device_id, device_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    if breached is not None:
        cond = or_(t.c.respond_breached.is_(True), t.c.resolve_breached.is_(True))
        stmt = stmt.where(cond if breached else ~cond)
    return stmt


def page(engine: Engine, stmt: Any, after_id: int | None, limit: int) -> list[dict[str, Any]]:
    if after_id is not None:
        stmt = stmt.where(work_orders.c.id < after_id)
    with engine.connect() as conn:
        return [order_dict(r) for r in conn.execute(stmt.limit(limit)).mappings()]
