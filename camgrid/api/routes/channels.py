"""Channels: filtered keyset listing (scales to 500k rows), one channel, PTZ, the device's own
recordings (RecordInfo) and RecordCmd.

A channel is online only when its own status is online AND its device is online. Listing
pages in (id, pk) order through ix_channels_id_pk; the cursor carries the last (id, pk).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import Select, and_, or_, select

from camgrid.api.errors import ApiError
from camgrid.api.paging import CursorQuery, LimitQuery, aware_row, decode_cursor, fill_page
from camgrid.api.routes.devices import commands_of, like_pattern, run_command
from camgrid.api.security import Principal, api_context, record, require
from camgrid.gb28181.ptz import PtzCommand, decode, encode
from camgrid.governance import roles
from camgrid.store.tables import channels, devices

router = APIRouter(prefix="/channels", tags=["channels"])

_COLUMNS = [c for c in channels.c if c.name != "pk"]
_DEVICE_STATUS = devices.c.status.label("device_status")
PtzActionName = Literal["left", "right", "up", "down", "zoom_in", "zoom_out", "stop",
                        "preset_call", "preset_set", "preset_delete"]
_MOVES = {"left": {"pan": -1}, "right": {"pan": 1}, "up": {"tilt": 1}, "down": {"tilt": -1},
          "zoom_in": {"zoom": 1}, "zoom_out": {"zoom": -1}}


class PtzRequest(BaseModel):
    action: PtzActionName | None = Field(None, description="What to do; or give ptz_hex instead.")
    speed: int = Field(128, ge=0, le=255, description="Pan/tilt speed 0-255; zoom uses its top 4 bits.")
    preset: int | None = Field(None, ge=1, le=255, description="Preset number for preset_* actions.")
    ptz_hex: str | None = Field(None, min_length=16, max_length=16, pattern=r"^[0-9A-Fa-f]{16}$",
                                description="A ready PTZCmd (16 hex digits), instead of action.")

    @model_validator(mode="after")
    def _one_form(self) -> PtzRequest:
        if (self.action is None) == (self.ptz_hex is None):
            raise ValueError("give either action or ptz_hex, not both and not neither")
        if self.action and self.action.startswith("preset_") and self.preset is None:
            raise ValueError(f"{self.action} needs a preset number 1-255")
        return self

    def to_hex(self) -> str:
        if self.ptz_hex is not None:
            decode(self.ptz_hex)  # checks header, check nibble and checksum (PtzError → 422)
            return self.ptz_hex.upper()
        if self.action == "stop":
            cmd = PtzCommand.stop()
        elif self.action == "preset_call":
            cmd = PtzCommand.preset_call(self.preset)  # type: ignore[arg-type]
        elif self.action == "preset_set":
            cmd = PtzCommand.preset_set(self.preset)  # type: ignore[arg-type]
        elif self.action == "preset_delete":
            cmd = PtzCommand.preset_delete(self.preset)  # type: ignore[arg-type]
        else:
            cmd = PtzCommand.move(speed=self.speed, **_MOVES[self.action])  # type: ignore[index]
        return encode(cmd)


def _base() -> Select:
    # LEFT JOIN keeps channels the driving table, so the (id, pk) index gives the order.
    return (select(*_COLUMNS, channels.c.pk, _DEVICE_STATUS)
            .select_from(channels.outerjoin(devices, devices.c.id == channels.c.device_id))
            .order_by(channels.c.id, channels.c.pk))


def channel_query(*, status: str | None = None, type_code: str | None = None, region: str | None = None,
                  group: str | None = None, parent: str | None = None, point_class: int | None = None,
                  device_id: str | None = None, q: str | None = None) -> Select:
    """The filtered, ordered SELECT (without paging) the list route runs."""
    stmt = _base()
    if status == "online":
        stmt = stmt.where(channels.c.status == "online", devices.c.status == "online")
    elif status == "offline":
        stmt = stmt.where(or_(channels.c.status != "online", devices.c.status != "online",
                              devices.c.status.is_(None)))
    if type_code:
        stmt = stmt.where(channels.c.type_code == type_code)
    if region:
        stmt = stmt.where(channels.c.civil_code.like(region.replace("%", "").replace("_", "") + "%"))
    if group:
        stmt = stmt.where(channels.c.business_group_id == group)
    if parent:
        stmt = stmt.where(channels.c.parent_id == parent)
    if point_class is not None:
        stmt = stmt.where(channels.c.point_class == point_class)
    if device_id:
        stmt = stmt.where(channels.c.device_id == device_id)
    if q:
        pattern = like_pattern(q)
        stmt = stmt.where(or_(channels.c.id.like(pattern, escape="\\"), channels.c.name.like(pattern, escape="\\")))
    return stmt


def after_key(stmt: Select, key: list[Any] | None) -> Select:
    """Rows after (id, pk) = key. Written as id >= ? AND (id > ? OR pk > ?) so every engine
    turns it into an index range on ix_channels_id_pk."""
    if key is None:
        return stmt
    cid, pk = key
    return stmt.where(channels.c.id >= cid, or_(channels.c.id > cid, and_(channels.c.id == cid, channels.c.pk > pk)))


def _device_online(ctx: Any, row: dict[str, Any]) -> bool:
    if ctx.health is not None:
        return bool(ctx.health.is_online(row["device_id"]))
    return row.get("device_status") == "online"


def channel_status(ctx: Any, row: dict[str, Any]) -> str:
    return "online" if row["status"] == "online" and _device_online(ctx, row) else "offline"


def channel_item(ctx: Any, row: dict[str, Any]) -> dict[str, Any]:
    item = aware_row(row)
    item["reported_status"] = item["status"]
    item["status"] = channel_status(ctx, row)
    item["device_status"] = "online" if _device_online(ctx, row) else "offline"
    item.pop("pk", None)
    return item


@router.get("")
def list_channels(
    request: Request,
    status: Literal["online", "offline"] | None = Query(None, description="Effective status (channel and device)."),
    type: str | None = Query(None, min_length=3, max_length=3, pattern=r"^[0-9]{3}$",
                             description="Type code: digits 11-13 of the ID (131 camera, 132 IPC ...)."),
    region: str | None = Query(None, min_length=1, max_length=20, pattern=r"^[0-9]+$", description="Civil code prefix."),
    group: str | None = Query(None, max_length=20, description="Business group ID."),
    parent: str | None = Query(None, max_length=20, description="Parent ID."),
    point_class: int | None = Query(None, alias="class", ge=1, le=9, description="Point class (1 or 2)."),
    device_id: str | None = Query(None, max_length=20),
    q: str | None = Query(None, min_length=1, max_length=100, description="Substring of the ID or name."),
    cursor: str | None = CursorQuery,
    limit: int = LimitQuery,
    principal: Principal = require(roles.CHANNELS_READ),
) -> dict[str, Any]:
    """Channels ordered by ID; follow next_cursor for the next page."""
    ctx = api_context(request)
    after = decode_cursor(cursor, (str, int))
    stmt = channel_query(status=status, type_code=type, region=region, group=group, parent=parent,
                         point_class=point_class, device_id=device_id, q=q)

    def fetch(key: list[Any] | None, n: int) -> list[dict[str, Any]]:
        with ctx.engine.connect() as conn:
            return [dict(r) for r in conn.execute(after_key(stmt, key).limit(n)).mappings()]

    # The SQL filter uses the stored device status; the live view (when present) has the last word.
    accept = (lambda r: channel_status(ctx, r) == status) if status and ctx.health is not None else None
    rows, next_cursor = fill_page(fetch, lambda r: [r["id"], r["pk"]], accept, after, limit)
    return {"items": [channel_item(ctx, r) for r in rows], "next_cursor": next_cursor}


def find_channel(ctx: Any, channel_id: str, device_id: str | None) -> dict[str, Any]:
    stmt = _base().where(channels.c.id == channel_id).limit(2)
    if device_id:
        stmt = stmt.where(channels.c.device_id == device_id)
    with ctx.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(stmt).mappings()]
    if not rows:
        where = f" on device {device_id}" if device_id else ""
        raise ApiError(404, f"channel {channel_id}{where} is not in the registry")
    if len(rows) > 1:
        raise ApiError(409, f"channel ID {channel_id} is reported by more than one device; pass device_id")
    return channel_item(ctx, rows[0])


DeviceIdQuery = Query(None, max_length=20, description="The device, when several report the same channel ID.")


@router.get("/{channel_id}")
def get_one(channel_id: str, request: Request, device_id: str | None = DeviceIdQuery,
            principal: Principal = require(roles.CHANNELS_READ)) -> dict[str, Any]:
    item = find_channel(api_context(request), channel_id, device_id)
    record(request, principal, "channel.view", channel_id, {"device_id": item["device_id"]})
    return item


@router.post("/{channel_id}/ptz")
async def ptz(channel_id: str, body: PtzRequest, request: Request, device_id: str | None = DeviceIdQuery,
              principal: Principal = require(roles.COMMANDS_PTZ)) -> dict[str, Any]:
    """Pan, tilt, zoom or use presets, by action or with a ready PTZCmd."""
    ctx = api_context(request)
    commands = commands_of(ctx)
    ptz_hex = body.to_hex()
    channel = await run_in_threadpool(find_channel, ctx, channel_id, device_id)
    detail = {"device_id": channel["device_id"], "action": body.action or "raw", "ptz": ptz_hex}
    return await run_command(request, principal, "command.ptz", channel_id, detail,
                             commands.ptz(channel["device_id"], channel_id, ptz_hex))


MAX_RECORD_QUERY = timedelta(days=31)


def require_zone(name: str, value: datetime) -> datetime:
    """A query time with its zone, in UTC; a 400 that says how to write one otherwise."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ApiError(400, f"{name} needs a zone, e.g. 2026-05-17T08:00:00+08:00 or ...Z")
    return value.astimezone(timezone.utc)


@router.get("/{channel_id}/device-records")
async def device_records(
    channel_id: str,
    request: Request,
    start: datetime = Query(..., alias="from", description="Start of the range, ISO 8601 with zone."),
    end: datetime = Query(..., alias="to", description="End of the range, ISO 8601 with zone."),
    record_type: Literal["all", "time", "alarm", "manual"] = Query("all", alias="type"),
    device_id: str | None = DeviceIdQuery,
    principal: Principal = require(roles.CHANNELS_READ),
) -> dict[str, Any]:
    """The recordings kept on the device's own storage (RecordInfo), assembled from its pages.
    `partial` is true when the device stopped sending before its announced SumNum."""
    start, end = require_zone("from", start), require_zone("to", end)
    if end <= start:
        raise ApiError(400, "to must be after from")
    if end - start > MAX_RECORD_QUERY:
        raise ApiError(400, f"ask for at most {MAX_RECORD_QUERY.days} days at a time; devices answer long ranges slowly or not at all")
    ctx = api_context(request)
    commands = commands_of(ctx)
    channel = await run_in_threadpool(find_channel, ctx, channel_id, device_id)
    detail = {"device_id": channel["device_id"], "from": start.isoformat(), "to": end.isoformat(), "type": record_type}
    return await run_command(request, principal, "channel.device_records", channel_id, detail,
                             commands.record_info(channel["device_id"], channel_id, start, end, record_type))


class RecordCommand(BaseModel):
    action: Literal["start", "stop"] = Field(description="Start or stop recording on the device's own storage.")


@router.post("/{channel_id}/record")
async def record_command(channel_id: str, body: RecordCommand, request: Request, device_id: str | None = DeviceIdQuery,
                         principal: Principal = require(roles.COMMANDS_DEVICE)) -> dict[str, Any]:
    """Send RecordCmd (Record / StopRecord) for the channel. `answered` says whether the device
    confirmed; many devices carry out Control commands without a Response."""
    ctx = api_context(request)
    commands = commands_of(ctx)
    channel = await run_in_threadpool(find_channel, ctx, channel_id, device_id)
    detail = {"device_id": channel["device_id"], "action": body.action}
    return await run_command(request, principal, "command.record", channel_id, detail,
                             commands.record_command(channel["device_id"], channel_id, body.action == "start"))
