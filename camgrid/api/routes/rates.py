"""Online, intactness and HD rates over local days (definitions in docs/rates.md and at
GET /rates/definitions). Closed days come from the database; today so far, and days closed but
not yet stored, from the running rates service when this process has one."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from camgrid.api.errors import ApiError
from camgrid.api.security import Principal, api_context, require
from camgrid.governance import roles
from camgrid.ops.rates import query
from camgrid.ops.rates.figures import HD_TARGET, INTACT_TARGET, ONLINE_TARGET

router = APIRouter(prefix="/rates", tags=["rates"])

MAX_DAYS = 400

FromQuery = Query(None, alias="from", description="First local day (YYYY-MM-DD); default: the last day of the range.")
ToQuery = Query(None, alias="to", description="Last local day (YYYY-MM-DD); default: today.")
ClassQuery = Query(None, ge=0, le=2, description="Only this point class (1 class one, 2 class two, 0 unclassified).")

DEFINITIONS = {
    "online_rate": "Σ seconds online / Σ seconds observed, over the channels and local days asked for. A channel is "
                   "online while its device is online (registered, keepalives arriving) and its own status is ON.",
    "intactness_rate": "Σ seconds intact / Σ seconds observed. Intact: online, with no open fault (a video-quality "
                       "finding, or VLOST / DEFECT reported by the device).",
    "hd_rate": "Channel-days whose measured resolution has at least `hd_min_height` lines / channel-days with a "
               "measured resolution. Channels never measured are counted apart (unmeasured_channel_days).",
    "observed": "A channel is observed from the day's start, or from when the registry got it, until the day's end "
                "or until it left the registry. Time while the platform itself was down counts in the state last known.",
    "day": "Local days in the configured time zone (rates.timezone); a day closes at its local midnight.",
}


def _live_of(request: Request):  # noqa: ANN202
    return getattr(api_context(request), "rates", None)


def _range(request: Request, first: date | None, last: date | None) -> tuple[date, date]:
    tz = ZoneInfo(api_context(request).settings.rates.timezone)
    today = datetime.now(tz).date()
    last = last or today
    first = first or last
    if first > last:
        raise ApiError(400, f"from ({first}) is after to ({last})")
    if (last - first).days >= MAX_DAYS:
        raise ApiError(400, f"at most {MAX_DAYS} days at once; ask for a shorter range")
    return first, last


async def _live(request: Request, *, with_channels: bool = False) -> query.Live:
    service = _live_of(request)
    if service is None:
        return query.Live()
    day, rows = await service.today_groups()
    live = query.Live(today=day, today_rows=rows, unwritten=service.unwritten_groups())
    if with_channels:
        live.today_channels = (await service.today_channels())[1]
    return live


@router.get("")
async def rates(
    request: Request,
    by: str = Query("point_class", pattern="^(point_class|organisation|manufacturer|device_type)$",
                    description="Group by point class, organisation, manufacturer (vendor) or device type."),
    first: date | None = FromQuery,
    last: date | None = ToQuery,
    per_class: bool = Query(False, description="Split each group by point class (the online targets differ by class)."),
    point_class: int | None = ClassQuery,
    principal: Principal = require(roles.HEALTH_READ),
) -> dict[str, Any]:
    """Online, intactness and HD rates per group over local days, with the targets and whether each is met."""
    first, last = _range(request, first, last)
    live = await _live(request)
    ctx = api_context(request)
    return await run_in_threadpool(query.by_group, ctx.engine, by, first, last, live, per_class=per_class,
                                   point_class=point_class)


@router.get("/trend")
async def rates_trend(
    request: Request,
    days: int = Query(30, ge=1, le=MAX_DAYS, description="How many local days, ending today (ignored with from)."),
    first: date | None = FromQuery,
    last: date | None = ToQuery,
    by: str | None = Query(None, pattern="^(point_class|organisation|manufacturer|device_type)$"),
    key: str | None = Query(None, max_length=100, description="The group (organisation ID, manufacturer, type code)."),
    point_class: int | None = ClassQuery,
    principal: Principal = require(roles.HEALTH_READ),
) -> dict[str, Any]:
    """One figure per local day: all channels, one point class, or one group."""
    if first is None:
        _, end = _range(request, None, last)
        first = end - timedelta(days=days - 1)
    first, last = _range(request, first, last)
    if by not in (None, "point_class") and key is None:
        raise ApiError(400, f"by={by} needs the group's key (e.g. an organisation ID)")
    live = await _live(request)
    ctx = api_context(request)
    return await run_in_threadpool(query.trend, ctx.engine, first, last, live, by=by, key=key, point_class=point_class)


@router.get("/channels")
async def rates_channels(
    request: Request,
    first: date | None = FromQuery,
    last: date | None = ToQuery,
    point_class: int | None = ClassQuery,
    below_target: bool = Query(False, description="Only channels below their class's online target."),
    limit: int = Query(100, ge=1, le=1000),
    principal: Principal = require(roles.HEALTH_READ),
) -> dict[str, Any]:
    """Channels with the lowest online rate first, with their intactness and measured resolution."""
    first, last = _range(request, first, last)
    live = await _live(request, with_channels=True)
    ctx = api_context(request)
    return await run_in_threadpool(query.channels, ctx.engine, first, last, live, point_class=point_class,
                                   below_target=below_target, limit=limit, hd_min_height=ctx.settings.rates.hd_min_height)


@router.get("/definitions")
def rates_definitions(request: Request, principal: Principal = require(roles.HEALTH_READ)) -> dict[str, Any]:
    """How each figure is computed, and the targets."""
    s = api_context(request).settings.rates
    return {"definitions": DEFINITIONS, "timezone": s.timezone, "hd_min_height": s.hd_min_height,
            "targets": {"online_rate": {"class_one": ONLINE_TARGET[1], "class_two": ONLINE_TARGET[2]},
                        "intactness_rate": INTACT_TARGET, "hd_rate": HD_TARGET}}
