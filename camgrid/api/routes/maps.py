"""The map: channels with coordinates grouped into grid cells per zoom level, aggregated in SQL,
so a map of 500,000 channels gets a few hundred rows per view; and how many channels are
located on the map at all (the "100 % of points located" figure).

A cell is `360 / 2**zoom / CELLS_PER_TILE` degrees wide (64 px on a 256 px tile): the query
groups the rows inside the box by their rounded coordinates and counts them by status. Cells
with at most FEW channels come back as the channels themselves (fetched by the cells' own
rectangles, each an index range on ix_channels_lon_lat); the others as clusters with counts.
A channel's status is the effective one of the channel list (its own and its device's, as
stored). Coordinates 0,0 count as none (devices report them when nobody set the position).
"""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request
from sqlalchemy import Integer, and_, case, cast, func, or_, select

from camgrid.api.errors import ApiError
from camgrid.api.security import Principal, api_context, require
from camgrid.governance import roles
from camgrid.store.tables import channels, devices

router = APIRouter(prefix="/map", tags=["map"])

CELLS_PER_TILE = 4  # 256 px tiles / 64 px cells
FEW = 4  # a cell with at most this many channels is answered as its channels
MAX_CELLS = 40_000  # a box that would need more cells than this is refused (zoom does not fit the box)
MAX_SINGLE_CELLS = 400  # at most this many small cells are opened into channels per answer
MAX_ZOOM = 22
_BATCH = 100  # rectangles per OR query


def cell_deg(zoom: int) -> float:
    return 360.0 / (2 ** zoom) / CELLS_PER_TILE


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """"west,south,east,north" in degrees, or ApiError 422 saying what is wrong."""
    parts = text.split(",")
    try:
        if len(parts) != 4:
            raise ValueError
        w, s, e, n = (float(p) for p in parts)
    except ValueError:
        raise ApiError(422, f"bbox must be four numbers west,south,east,north in degrees, e.g. "
                            f"117.0,31.6,117.4,32.0; got {text[:80]!r}") from None
    if not all(math.isfinite(v) for v in (w, s, e, n)):
        raise ApiError(422, "bbox values must be finite numbers")
    if not (-180 <= w < e <= 180):
        raise ApiError(422, f"bbox longitudes must satisfy -180 <= west < east <= 180; got west={w}, east={e} "
                            "(a box across the antimeridian is asked as two boxes)")
    if not (-90 <= s < n <= 90):
        raise ApiError(422, f"bbox latitudes must satisfy -90 <= south < north <= 90; got south={s}, north={n}")
    return w, s, e, n


def _cell_of(column: Any, offset: float, size: float, dialect: str) -> Any:
    scaled = (column + offset) / size
    # Non-negative after the offset: SQLite's CAST truncates (= floor); PostgreSQL's rounds, so floor first.
    return cast(func.floor(scaled), Integer) if dialect == "postgresql" else cast(scaled, Integer)


def _located() -> Any:
    return and_(channels.c.longitude.is_not(None), channels.c.latitude.is_not(None),
                or_(channels.c.longitude != 0, channels.c.latitude != 0))


def _in_box(w: float, s: float, e: float, n: float) -> Any:
    return and_(channels.c.longitude >= w, channels.c.longitude <= e, channels.c.latitude >= s, channels.c.latitude <= n,
                or_(channels.c.longitude != 0, channels.c.latitude != 0))


# Online: the channel says so and its device is not among the offline ones (a list the database
# builds once per query: half the cost of joining every channel to its device).
_ONLINE = and_(channels.c.status == "online",
               channels.c.device_id.not_in(select(devices.c.id).where(devices.c.status != "online").scalar_subquery()))
_FROM = channels


def cluster_query(bbox: tuple[float, float, float, float], zoom: int, dialect: str) -> Any:
    """One row per non-empty cell of the box: cx, cy, count, online, mean lon/lat."""
    w, s, e, n = bbox
    size = cell_deg(zoom)
    cx, cy = _cell_of(channels.c.longitude, 180.0, size, dialect), _cell_of(channels.c.latitude, 90.0, size, dialect)
    return (select(cx.label("cx"), cy.label("cy"), func.count().label("n"),
                   func.sum(case((_ONLINE, 1), else_=0)).label("online"),
                   func.avg(channels.c.longitude).label("lon"), func.avg(channels.c.latitude).label("lat"))
            .select_from(_FROM).where(_in_box(w, s, e, n)).group_by(cx, cy))


def _cell_key(lon: float, lat: float, size: float) -> tuple[int, int]:
    return math.floor((lon + 180.0) / size), math.floor((lat + 90.0) / size)


def _cell_bounds(cx: int, cy: int, size: float) -> list[float]:
    return [round(cx * size - 180.0, 7), round(cy * size - 90.0, 7), round((cx + 1) * size - 180.0, 7),
            round((cy + 1) * size - 90.0, 7)]


def singles_query(cells: list[tuple[int, int]], size: float, bbox: tuple[float, float, float, float]) -> Any:
    """The channels of these cells: an OR of their rectangles (each an index range)."""
    w, s, e, n = bbox
    eps = 1e-9
    boxes = []
    for cx, cy in cells:
        x0, y0, x1, y1 = _cell_bounds(cx, cy, size)
        boxes.append(and_(channels.c.longitude >= max(x0 - eps, w), channels.c.longitude <= min(x1 + eps, e),
                          channels.c.latitude >= max(y0 - eps, s), channels.c.latitude <= min(y1 + eps, n)))
    return (select(channels.c.id, channels.c.device_id, channels.c.name, channels.c.longitude, channels.c.latitude,
                   case((_ONLINE, "online"), else_="offline").label("status"))
            .select_from(_FROM).where(or_(*boxes), or_(channels.c.longitude != 0, channels.c.latitude != 0)))


def clusters(engine: Any, bbox: tuple[float, float, float, float], zoom: int) -> dict[str, Any]:
    size = cell_deg(zoom)
    w, s, e, n = bbox
    if math.ceil((e - w) / size + 1) * math.ceil((n - s) / size + 1) > MAX_CELLS:
        raise ApiError(422, f"bbox is too large for zoom {zoom}: it spans more than {MAX_CELLS} cells of {size:.6g}°; "
                            "send the visible area with the map's own zoom")
    dialect = engine.dialect.name
    with engine.connect() as conn:
        rows = conn.execute(cluster_query(bbox, zoom, dialect)).all()
        small = [(r.cx, r.cy) for r in rows if r.n <= FEW][:MAX_SINGLE_CELLS]
        wanted = set(small)
        points: list[dict[str, Any]] = []
        for i in range(0, len(small), _BATCH):
            for r in conn.execute(singles_query(small[i:i + _BATCH], size, bbox)).mappings():
                # The same cell as the SQL put it in (a point on a cell's edge is in one cell only).
                if _cell_key(r["longitude"], r["latitude"], size) in wanted:
                    points.append({"id": r["id"], "device_id": r["device_id"], "name": r["name"],
                                   "lon": r["longitude"], "lat": r["latitude"], "status": r["status"]})
    seen: set[tuple[str, str]] = set()
    unique = []
    for p in points:  # a point found by two overlapping rectangles (edges widened by eps) once
        key = (p["device_id"], p["id"])
        if key not in seen:
            seen.add(key)
            unique.append(p)
    out = [{"lon": round(float(r.lon), 6), "lat": round(float(r.lat), 6), "count": int(r.n),
            "online": int(r.online or 0), "offline": int(r.n) - int(r.online or 0),
            "bounds": _cell_bounds(r.cx, r.cy, size)}
           for r in rows if (r.cx, r.cy) not in wanted]
    out.sort(key=lambda c: -c["count"])
    return {"zoom": zoom, "cell_deg": size, "clusters": out, "channels": unique, "total": sum(int(r.n) for r in rows)}


def located_counts(engine: Any) -> dict[str, Any]:
    """How many channels have a place on the map, of how many, and the box around them."""
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(channels)).scalar_one()
        located, w, s, e, n = conn.execute(select(
            func.count(), func.min(channels.c.longitude), func.min(channels.c.latitude),
            func.max(channels.c.longitude), func.max(channels.c.latitude)).where(_located())).one()
    return {"located": int(located), "total": int(total),
            "located_share": round(located / total, 4) if total else None,
            "bounds": [w, s, e, n] if located else None}


def tile_origin(url: str | None) -> str | None:
    """scheme://host[:port] of the tile URL, for the console's Content-Security-Policy; None if local."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not re.fullmatch(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?", parts.netloc):
        return None  # a path on this server ('self'), or nothing safe to put into the policy
    return f"{parts.scheme}://{parts.netloc}"


@router.get("/clusters")
def get_clusters(
    request: Request,
    bbox: str = Query(..., max_length=200, description="west,south,east,north in degrees (WGS 84)."),
    zoom: int = Query(..., ge=0, le=MAX_ZOOM, description="The map's zoom level (0 = whole world in one 256 px tile)."),
    principal: Principal = require(roles.CHANNELS_READ),
) -> dict[str, Any]:
    """Channels with coordinates inside bbox, grouped into cells of the zoom level: clusters
    (centre, count, online, offline, cell bounds) and, for cells with few channels, the channels."""
    return clusters(api_context(request).engine, parse_bbox(bbox), zoom)


@router.get("/settings")
def map_settings(request: Request, principal: Principal = require(roles.CHANNELS_READ)) -> dict[str, Any]:
    """The tile server the console draws under the points (none: a plain grid), and how many
    channels have coordinates."""
    http = api_context(request).settings.http
    return {"tile_url": http.map_tile_url, "tile_attribution": http.map_tile_attribution,
            **located_counts(api_context(request).engine)}
