"""Opening and closing work orders, with what they do to the alarm behind them: opening one
adds a note to the alarm; closing one resolves it ("fixed") if nobody has yet. Blocking: call
from a worker thread. The API, the CLI and the worker all go through here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from camgrid.config import Settings
from camgrid.ops.alarms import store as alarm_store
from camgrid.ops.alarms import workflow as alarm_workflow
from camgrid.ops.alarms.model import AlarmNotFound, WorkflowError
from camgrid.ops.maintenance import model, store
from camgrid.ops.maintenance.model import OrderError, OrderNotFound, Route, Sla


def routes_of(settings: Settings) -> list[Route]:
    return [Route(r.team, tuple(r.types), tuple(r.civil_prefixes), tuple(r.organisations))
            for r in settings.maintenance.routes]


def _sla(settings: Settings, priority: int) -> Sla:
    s = settings.maintenance.sla_for(priority)
    return Sla(s.respond_s, s.resolve_s)


def open_for_alarm(engine: Engine, settings: Settings, alarm_id: int, actor: str, *, team: str | None = None,
                   assignee: str | None = None, note: str = "", now: datetime,
                   source_addr: str | None = None) -> dict[str, Any]:
    m = settings.maintenance
    with engine.begin() as conn:
        try:
            alarm = alarm_store.get(conn, alarm_id)
        except AlarmNotFound as exc:
            raise OrderNotFound(str(exc)) from None
        if alarm["state"] == "resolved":
            raise model.IllegalStep(f"alarm {alarm_id} is resolved; there is nothing to repair")
        order_id = store.open_order(
            conn, type_=alarm["type"], title=alarm["title"] or alarm["type"], priority=alarm["priority"], actor=actor,
            now=now, sla=_sla(settings, alarm["priority"]), verifiable=model.matches(alarm["type"], m.verify_types),
            routes=routes_of(settings), default_team=m.default_team, alarm=alarm, team=team, assignee=assignee,
            note=note, source_addr=source_addr)
        order = store.get(conn, order_id)
    _alarm_note(engine, settings, alarm_id, actor, f"work order {order_id} opened" + (f": {note}" if note else ""))
    return order


def open_manual(engine: Engine, settings: Settings, actor: str, *, title: str, priority: int,
                device_id: str | None, channel_id: str | None, team: str | None, assignee: str | None, note: str,
                now: datetime, source_addr: str | None = None) -> dict[str, Any]:
    """A work order for something no alarm says (a lens to clean, a pole to straighten): it
    closes on the technician's word."""
    if not device_id and not channel_id:
        raise OrderError("say which device or channel needs the work")
    with engine.begin() as conn:
        order_id = store.open_order(
            conn, type_="manual", title=title, priority=priority, actor=actor, now=now, sla=_sla(settings, priority),
            verifiable=False, routes=routes_of(settings), default_team=settings.maintenance.default_team,
            device_id=device_id, channel_id=channel_id, team=team, assignee=assignee, note=note, source_addr=source_addr)
        return store.get(conn, order_id)


def after_close(engine: Engine, settings: Settings, order: dict[str, Any], actor: str) -> None:
    """The alarm behind a closed order is resolved as fixed, unless someone resolved it already."""
    if order.get("alarm_id") is None:
        return
    try:
        alarm_workflow.resolve(engine, order["alarm_id"], actor, "fixed", f"work order {order['id']} closed",
                               settings=settings.alarms, platform_id=settings.sip.id)
    except WorkflowError:
        pass  # resolved already (by a person, or by the system when the condition cleared)


def _alarm_note(engine: Engine, settings: Settings, alarm_id: int, actor: str, note: str) -> None:
    try:
        alarm_workflow.add_note(engine, alarm_id, actor, note, settings=settings.alarms, platform_id=settings.sip.id)
    except WorkflowError:
        pass
