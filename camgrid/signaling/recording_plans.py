"""Which channels the platform records, and keeping them recording.

A plan is per channel: `continuous`, `schedule` (weekly windows in the platform's time zone),
or `off`. Every few seconds the plans are reconciled with reality: a channel that should be
recording and whose device is online gets a live stream (shared with any viewers) and the
media node is told to record it; one that should not stops recording (its stream then ends
when no one watches). A stream that ended (device offline, no media, node restarted) is asked
for again after `media.recording_retry_s`. Every start and stop is an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from camgrid.bus import Event, EventBus
from camgrid.config import Settings
from camgrid.media.client import NodeError
from camgrid.signaling.errors import CommandError
from camgrid.signaling.media_sessions import MediaSession, MediaSessions
from camgrid.store.engine import utcnow
from camgrid.store.tables import channels, record_plans

log = logging.getLogger(__name__)

MODES = ("continuous", "schedule", "event", "off")
RECONCILE_INTERVAL_S = 2.0
MAX_STARTS_AT_ONCE = 16


class PlanError(ValueError):
    pass


def _minutes(text: str) -> int:
    try:
        hours, minutes = text.split(":")
        value = int(hours) * 60 + int(minutes)
    except ValueError:
        raise PlanError(f"times are HH:MM, not {text!r}") from None
    if not 0 <= value <= 24 * 60:
        raise PlanError(f"{text} is not a time of day")
    return value


def validate_schedule(schedule: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for window in schedule:
        days = window.get("days", list(range(7)))
        if not isinstance(days, list) or not all(isinstance(d, int) and 0 <= d <= 6 for d in days):
            raise PlanError("days are a list of 0 (Monday) to 6 (Sunday)")
        start, end = _minutes(str(window.get("from", ""))), _minutes(str(window.get("to", "")))
        if end <= start:
            raise PlanError(f"a window must end after it starts ({window.get('from')}-{window.get('to')}); split windows that cross midnight")
        out.append({"days": sorted(set(days)), "from": window["from"], "to": window["to"]})
    return out


def in_schedule(schedule: list[dict[str, Any]], local: datetime) -> bool:
    minute = local.hour * 60 + local.minute
    return any(local.weekday() in w["days"] and _minutes(w["from"]) <= minute < _minutes(w["to"]) for w in schedule)


class RecordingPlans:
    def __init__(self, settings: Settings, engine: Engine, media: MediaSessions, bus: EventBus,
                 is_online=lambda device_id: True) -> None:  # noqa: ANN001
        self.settings = settings
        self.engine = engine
        self.media = media
        self.bus = bus
        self.is_online = is_online
        self.zone = ZoneInfo(settings.sip.timezone)
        self.plans: dict[str, dict[str, Any]] = {}  # channel → {"mode", "schedule", "device_id"}
        self.recording: dict[str, MediaSession] = {}  # channel → the session its node records
        self._next_try: dict[str, float] = {}
        self.last_error: dict[str, str] = {}
        self._task: asyncio.Task | None = None
        self._starts = asyncio.Semaphore(MAX_STARTS_AT_ONCE)

    async def start(self) -> None:
        await asyncio.to_thread(self._load)
        self.bus.subscribe("alarm.device", self._on_alarm)
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _load(self) -> None:
        stmt = select(record_plans, channels.c.device_id).join(channels, channels.c.id == record_plans.c.channel_id, isouter=True)
        with self.engine.connect() as conn:
            self.plans = {r["channel_id"]: {"mode": r["mode"], "schedule": r["schedule"] or [], "device_id": r["device_id"]}
                          for r in conn.execute(stmt).mappings()}

    def set_plan(self, channel_id: str, device_id: str, mode: str, schedule: list[dict[str, Any]], by: str) -> dict[str, Any]:
        """Store a plan (blocking: call from a worker thread); the next round carries it out."""
        if mode not in MODES:
            raise PlanError(f"mode must be one of {', '.join(MODES)}")
        schedule = validate_schedule(schedule)
        if mode == "schedule" and not schedule:
            raise PlanError("a schedule plan needs at least one window")
        row = {"channel_id": channel_id, "mode": mode, "schedule": schedule, "updated_at": utcnow(), "updated_by": by}
        with self.engine.begin() as conn:
            conn.execute(record_plans.delete().where(record_plans.c.channel_id == channel_id))
            conn.execute(record_plans.insert(), [row])
        self.plans[channel_id] = {"mode": mode, "schedule": schedule, "device_id": device_id}
        self._next_try.pop(channel_id, None)
        return self.describe(channel_id)

    def describe(self, channel_id: str) -> dict[str, Any]:
        plan = self.plans.get(channel_id, {"mode": "off", "schedule": []})
        session = self.recording.get(channel_id)
        return {"channel_id": channel_id, "mode": plan["mode"], "schedule": plan["schedule"],
                "recording": session is not None and session.state != "ended",
                "session_id": session.session_id if session else None, "last_error": self.last_error.get(channel_id)}

    def wanted(self, channel_id: str, now: datetime | None = None) -> bool:
        plan = self.plans.get(channel_id)
        if plan is None or plan["mode"] == "off":
            return False
        if plan["mode"] in ("continuous", "event"):
            return True  # event: the stream stays up so that the seconds before an alarm are at hand
        return in_schedule(plan["schedule"], (now or datetime.now(timezone.utc)).astimezone(self.zone))

    async def _loop(self) -> None:
        while True:
            try:
                await self.reconcile()
            except Exception:  # one bad round must not stop recording for good
                log.exception("recording reconcile failed")
            await asyncio.sleep(RECONCILE_INTERVAL_S)

    async def reconcile(self) -> None:
        now = time.monotonic()
        jobs = []
        for channel_id, plan in list(self.plans.items()):
            session = self.recording.get(channel_id)
            if session is not None and session.state == "ended":
                del self.recording[channel_id]
                self.last_error[channel_id] = session.end_reason or "stream ended"
                self._next_try[channel_id] = now + self.settings.media.recording_retry_s
                self.bus.publish(Event("recording.interrupted", channel_id, {"reason": session.end_reason}))
                session = None
            wanted = self.wanted(channel_id)
            if wanted and session is None and plan.get("device_id") and self.is_online(plan["device_id"]) \
                    and now >= self._next_try.get(channel_id, 0):
                jobs.append(self._start(channel_id, plan["device_id"]))
            elif not wanted and session is not None:
                jobs.append(self._stop(channel_id, session))
        if jobs:
            await asyncio.gather(*jobs)

    async def _start(self, channel_id: str, device_id: str) -> None:
        async with self._starts:
            try:
                session = await self.media.live(device_id, channel_id)
                mode = "event" if self.plans.get(channel_id, {}).get("mode") == "event" else "continuous"
                await session.node.record(session.session_id, channel_id=channel_id, device_id=device_id, mode=mode)
            except (CommandError, NodeError) as exc:
                reason = getattr(exc, "message", None) or str(exc)
                self.last_error[channel_id] = reason
                self._next_try[channel_id] = time.monotonic() + self.settings.media.recording_retry_s
                log.warning("cannot record %s: %s", channel_id, reason)
                return
            session.recording = True
            self.recording[channel_id] = session
            self.last_error.pop(channel_id, None)
            self.bus.publish(Event("recording.started", channel_id, {"device_id": device_id, "session_id": session.session_id}))

    async def _on_alarm(self, event: Event) -> None:
        """A device alarm names a channel (or the device): event-recorded channels among them record."""
        subject, device = event.subject, (event.data or {}).get("device_id")
        for channel_id, plan in list(self.plans.items()):
            if plan["mode"] != "event" or not (channel_id == subject or (plan.get("device_id") in (subject, device)
                                                                           and subject not in self.plans)):
                continue
            await self.trigger_event(channel_id, {k: v for k, v in (event.data or {}).items()
                                                  if k in ("AlarmMethod", "AlarmPriority", "AlarmDescription")})

    async def trigger_event(self, channel_id: str, alarm: dict[str, Any]) -> str:
        """Keep the footage around an alarm (event_pre_s before, event_post_s after) on a channel whose
        plan is `event`; also the alarm centre's linkage rules. Returns triggered, missed (the stream
        was not up: recording.missed), not_event (the plan records all or nothing anyway) or failed."""
        if self.plans.get(channel_id, {}).get("mode") != "event":
            return "not_event"
        session = self.recording.get(channel_id)
        if session is None or session.state == "ended":
            self.bus.publish(Event("recording.missed", channel_id, {"reason": "the stream was not up when the alarm came",
                                                                     "last_error": self.last_error.get(channel_id)}))
            return "missed"
        try:
            await session.node.trigger(session.session_id)
        except NodeError as exc:
            log.warning("event recording of %s not triggered: %s", channel_id, exc)
            return "failed"
        self.bus.publish(Event("recording.triggered", channel_id, {"alarm": alarm}))
        return "triggered"

    async def _stop(self, channel_id: str, session: MediaSession) -> None:
        self.recording.pop(channel_id, None)
        session.recording = False
        with contextlib.suppress(NodeError):
            await session.node.stop_record(session.session_id)
        self.bus.publish(Event("recording.stopped", channel_id, {"device_id": session.device_id, "reason": "plan"}))
