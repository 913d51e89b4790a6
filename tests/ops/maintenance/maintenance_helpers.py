"""Alarms made the way the alarm centre makes them (its store), for the work-order tests."""

from __future__ import annotations

from datetime import datetime

from camgrid.ops.alarms import store as alarm_store
from camgrid.ops.alarms.model import Candidate, Clear

DEVICE = "34020000001320000001"
CHANNEL = "34020000001310000001"


def raise_alarm(engine, type_: str, at: datetime, *, priority: int = 2, device_id: str = DEVICE,
                channel_id: str | None = None) -> int:
    key = f"{type_}|{channel_id or device_id}"
    with engine.begin() as conn:
        alarm_store.apply(conn, [Candidate(type=type_, source=type_.split(".")[0], priority=priority, key=key,
                                           title=f"{type_} on {channel_id or device_id}", at=at,
                                           device_id=device_id, channel_id=channel_id)])
        return alarm_store._load_open(conn, [key])[key]["id"]


def clear_alarm(engine, type_: str, at: datetime, *, subject: str = DEVICE) -> None:
    with engine.begin() as conn:
        alarm_store.apply(conn, [Clear(key=f"{type_}|{subject}", at=at, reason="test")])


def alarm_row(engine, alarm_id: int) -> dict:
    with engine.connect() as conn:
        return alarm_store.get(conn, alarm_id)
