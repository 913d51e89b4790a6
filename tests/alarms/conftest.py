"""Alarm centre fixtures: settings, a centre on a real bus and database, a loopback webhook
receiver, API clients per role (reusing tests/api's helpers)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api"))

from alarm_helpers import FakeClock, WebhookReceiver, alarm_settings  # noqa: E402
from api_helpers import Api, role_tokens  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from camgrid.api.app import ApiContext, create_api  # noqa: E402
from camgrid.bus import MemoryBus  # noqa: E402
from camgrid.ops.alarms.centre import AlarmCentre  # noqa: E402


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def make_centre(sqlite_engine, clock):
    """Build a started centre on a started MemoryBus; stopped (bus first) afterwards."""
    made: list[tuple[AlarmCentre, MemoryBus]] = []

    async def build(engine=None, *, recording_plans=None, **alarms: Any) -> tuple[AlarmCentre, MemoryBus]:
        bus = MemoryBus()
        centre = AlarmCentre(alarm_settings(**alarms), engine or sqlite_engine, bus, recording_plans=recording_plans,
                             clock=clock)
        await centre.start()
        await bus.start()
        made.append((centre, bus))
        return centre, bus

    yield build
    for centre, bus in made:
        await centre.stop()
        await bus.stop()


@pytest.fixture
async def receiver():
    r = WebhookReceiver()
    await r.start()
    yield r
    await r.stop()


@pytest.fixture
def users(engine) -> dict[str, str]:
    """One user per role (named after it), each with a live token."""
    return role_tokens(engine)


@pytest.fixture
def make_api(engine, users):
    def build(**ctx_kw: Any) -> Api:
        settings = ctx_kw.pop("settings", None) or alarm_settings()
        ctx = ApiContext(engine=engine, settings=settings, **ctx_kw)
        return Api(TestClient(create_api(ctx)), ctx, dict(users))
    return build
