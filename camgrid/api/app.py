"""The HTTP API (FastAPI) under /api/v1, plus /metrics.

Access is denied by default: every router except the explicitly public one carries a
router-level bearer-token dependency, and every route states its permission with
`require(...)` (tests/api/test_security.py walks the routes to keep it so). Public: login,
liveness and the OpenAPI document with its docs page (they describe the API, they hold no data),
and the web console's static files at / (camgrid/api/console.py: HTML and JavaScript, no data).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import Engine

from camgrid.api.console import mount_console
from camgrid.api.errors import install_error_handlers
from camgrid.api.routes import (alarms, auth, channels, devices, events, health, live, maintenance, maps, metrics,
                                rates, recordings, retention, tree, users, vqd)
from camgrid.api.security import current_principal
from camgrid.bus.memory import EventBus
from camgrid.config import Settings
from camgrid.governance.throttle import LoginThrottle

API_PREFIX = "/api/v1"


@runtime_checkable
class HealthView(Protocol):
    def is_online(self, device_id: str) -> bool: ...
    def counts(self) -> dict[str, int]: ...


@runtime_checkable
class DeviceCommands(Protocol):
    async def catalog_refresh(self, device_id: str) -> dict: ...
    async def ptz(self, device_id: str, channel_id: str, ptz_hex: str) -> dict: ...
    async def reboot(self, device_id: str) -> dict: ...


@runtime_checkable
class MetricsSource(Protocol):
    def collect(self) -> dict[str, Any]: ...


@dataclass
class ApiContext:
    engine: Engine
    settings: Settings
    bus: EventBus | None = None
    health: HealthView | None = None  # None: online state comes from the devices.status column
    commands: DeviceCommands | None = None  # None: command routes answer 503
    metrics: MetricsSource | None = None
    media: Any = None  # camgrid.signaling.media_sessions.MediaSessions; None: live routes answer 503
    recording_plans: Any = None  # camgrid.signaling.recording_plans.RecordingPlans; None: plans answer 503
    alarms: Any = None  # camgrid.ops.alarms.centre.AlarmCentre; None: no live alarm stream (the rest works from the store)
    rates: Any = None  # camgrid.ops.rates.service.RatesService; None: closed days only (no today so far)
    patrol: Any = None  # camgrid.ops.vqd.patrol.Patrol; None: VQD routes that need video answer 503
    control_secret: str | None = None  # for the local command line (<data-dir>/run/control.json)


def create_api(ctx: ApiContext) -> FastAPI:
    app = FastAPI(
        title="camgrid",
        version="1",
        description="GB/T 28181 video platform API. Log in at POST /api/v1/auth/login and send the token "
                    "as 'Authorization: Bearer <token>'.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.ctx = ctx
    app.state.throttle = LoginThrottle(ctx.settings.http.login_max_failures, ctx.settings.http.login_window_s)
    app.state.metrics_registry = metrics.build_registry(ctx)
    install_error_handlers(app)

    app.include_router(auth.public_router, prefix=API_PREFIX)
    app.include_router(health.public_router, prefix=API_PREFIX)
    authenticated = [Depends(current_principal)]
    for module in (auth, devices, channels, tree, maps, live, recordings, retention, alarms, maintenance, vqd, health, rates,
                   events, users):
        app.include_router(module.router, prefix=API_PREFIX, dependencies=authenticated)
    app.include_router(metrics.router, dependencies=authenticated)
    app.include_router(vqd.local_router, prefix=API_PREFIX)  # `camgrid vqd patrol` on this machine: its own secret
    # Last, and it never answers under /api or /metrics. Public: the console's files hold no data.
    mount_console(app, img_sources=[o for o in [maps.tile_origin(ctx.settings.http.map_tile_url)] if o])
    return app


def api_routes(app: FastAPI) -> Iterator[tuple[str, str, APIRoute]]:
    """(method, full path, route) for every API route of the app, through included routers.

    FastAPI versions that include routers lazily expose them through iter_route_contexts;
    older ones list APIRoute objects with their full path in app.routes.
    """
    try:
        from fastapi.routing import iter_route_contexts  # type: ignore[attr-defined]
    except ImportError:
        for route in app.routes:
            if isinstance(route, APIRoute):
                for method in sorted(route.methods):
                    yield method, route.path, route
        return
    for rc in iter_route_contexts(app.routes):
        route = rc.original_route
        if isinstance(route, APIRoute):
            for method in sorted(rc.methods or route.methods):
                yield method, rc.path, route
