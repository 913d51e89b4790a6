"""Devices: list, view, add, delete, approve, and the device commands (catalog refresh, reboot,
DeviceStatus, GuardCmd, AlarmCmd, DeviceConfig)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import or_, select

from camgrid.api.errors import ApiError, CommandError
from camgrid.api.paging import CursorQuery, LimitQuery, aware_row, decode_cursor, fill_page
from camgrid.api.security import Principal, api_context, record, require
from camgrid.bus.memory import Event
from camgrid.governance import roles
from camgrid.registry.devices import PUBLIC_COLUMNS, add_device, approve_device, delete_device, get_device
from camgrid.store.tables import devices

router = APIRouter(prefix="/devices", tags=["devices"])

# Columns a device item shows (never the digest secrets, never the SIP contact).
_COLUMNS = [c for c in PUBLIC_COLUMNS if c.name != "contact"]


class DeviceCreate(BaseModel):
    id: str = Field(min_length=20, max_length=20, pattern=r"^[0-9]{20}$", description="20-digit GB/T 28181 ID.")
    password: str = Field(min_length=1, max_length=128, description="The device's own SIP digest secret.")
    name: str = Field("", max_length=200)


def like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def device_status(ctx: Any, row: dict[str, Any]) -> str:
    if ctx.health is not None:
        return "online" if ctx.health.is_online(row["id"]) else "offline"
    return "online" if row.get("status") == "online" else "offline"


def _item(ctx: Any, row: dict[str, Any]) -> dict[str, Any]:
    item = aware_row(dict(row))
    item.pop("contact", None)
    item["status"] = device_status(ctx, item)
    return item


def list_devices_page(ctx: Any, *, status: str | None, approval: str | None, q: str | None,
                      cursor: str | None, limit: int) -> dict[str, Any]:
    after = decode_cursor(cursor, (str,))
    base = select(*_COLUMNS).order_by(devices.c.id)
    if approval:
        base = base.where(devices.c.approval == approval)
    if q:
        pattern = like_pattern(q)
        base = base.where(or_(devices.c.id.like(pattern, escape="\\"), devices.c.name.like(pattern, escape="\\")))
    if status and ctx.health is None:
        base = base.where(devices.c.status == status)

    def fetch(key: list[Any] | None, n: int) -> list[dict[str, Any]]:
        stmt = base.limit(n) if key is None else base.where(devices.c.id > key[0]).limit(n)
        with ctx.engine.connect() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]

    accept = (lambda r: device_status(ctx, r) == status) if status and ctx.health is not None else None
    rows, next_cursor = fill_page(fetch, lambda r: [r["id"]], accept, after, limit)
    return {"items": [_item(ctx, r) for r in rows], "next_cursor": next_cursor}


@router.get("")
def list_devices(
    request: Request,
    status: Literal["online", "offline"] | None = Query(None),
    approval: Literal["approved", "pending"] | None = Query(None),
    q: str | None = Query(None, min_length=1, max_length=100, description="Substring of the ID or name."),
    cursor: str | None = CursorQuery,
    limit: int = LimitQuery,
    principal: Principal = require(roles.DEVICES_READ),
) -> dict[str, Any]:
    """Devices ordered by ID; follow next_cursor for the next page."""
    return list_devices_page(api_context(request), status=status, approval=approval, q=q, cursor=cursor, limit=limit)


def _get(ctx: Any, device_id: str) -> dict[str, Any]:
    row = get_device(ctx.engine, device_id)
    if row is None:
        raise ApiError(404, f"device {device_id} is not in the registry")
    return _item(ctx, row)


@router.get("/{device_id}")
def get_one(device_id: str, request: Request, principal: Principal = require(roles.DEVICES_READ)) -> dict[str, Any]:
    item = _get(api_context(request), device_id)
    record(request, principal, "device.view", device_id)
    return item


def _publish(ctx: Any, kind: str, device_id: str, principal: Principal) -> None:
    if ctx.bus is not None:
        ctx.bus.publish(Event(kind, device_id, {"by": principal.username}))


@router.post("", status_code=201)
async def create(body: DeviceCreate, request: Request,
                 principal: Principal = require(roles.DEVICES_WRITE)) -> dict[str, Any]:
    """Add a device with its own digest secret (stored only as HA1 for the platform realm)."""
    ctx = api_context(request)
    await run_in_threadpool(add_device, ctx.engine, body.id, body.password, ctx.settings.sip.realm, name=body.name)
    await run_in_threadpool(record, request, principal, "device.create", body.id, {"name": body.name})
    _publish(ctx, "device.added", body.id, principal)
    return await run_in_threadpool(_get, ctx, body.id)


@router.delete("/{device_id}", status_code=204)
async def delete(device_id: str, request: Request, principal: Principal = require(roles.DEVICES_WRITE)) -> Response:
    """Delete a device and its channels."""
    ctx = api_context(request)
    await run_in_threadpool(delete_device, ctx.engine, device_id)
    await run_in_threadpool(record, request, principal, "device.delete", device_id)
    _publish(ctx, "device.deleted", device_id, principal)
    return Response(status_code=204)


@router.post("/{device_id}/approve")
async def approve(device_id: str, request: Request, principal: Principal = require(roles.DEVICES_WRITE)) -> dict[str, Any]:
    """Approve a pending device (one that registered without being in the registry)."""
    ctx = api_context(request)
    await run_in_threadpool(approve_device, ctx.engine, device_id)
    await run_in_threadpool(record, request, principal, "device.approve", device_id)
    _publish(ctx, "device.approved", device_id, principal)
    return await run_in_threadpool(_get, ctx, device_id)


def commands_of(ctx: Any) -> Any:
    if ctx.commands is None:
        raise ApiError(503, "device commands are unavailable: this API runs without the signaling service")
    return ctx.commands


async def run_command(request: Request, principal: Principal, action: str, target: str, detail: dict[str, Any],
                      call: Any) -> dict[str, Any]:
    """Await a device command and audit it, whether it succeeded or not."""
    try:
        result = await call
    except CommandError as exc:
        await run_in_threadpool(record, request, principal, action, target,
                                {**detail, "ok": False, "status": exc.status, "error": exc.message})
        raise
    await run_in_threadpool(record, request, principal, action, target, {**detail, "ok": True})
    return {"ok": True, "result": result}


@router.post("/{device_id}/catalog")
async def catalog_refresh(device_id: str, request: Request,
                          principal: Principal = require(roles.COMMANDS_DEVICE)) -> dict[str, Any]:
    """Ask the device for its full catalog and apply it; answers when the catalog is in."""
    commands = commands_of(api_context(request))
    return await run_command(request, principal, "command.catalog", device_id, {},
                             commands.catalog_refresh(device_id))


@router.post("/{device_id}/reboot")
async def reboot(device_id: str, request: Request, principal: Principal = require(roles.COMMANDS_DEVICE)) -> dict[str, Any]:
    """Send TeleBoot to the device."""
    commands = commands_of(api_context(request))
    return await run_command(request, principal, "command.reboot", device_id, {}, commands.reboot(device_id))


@router.get("/{device_id}/device-status")
async def query_status(device_id: str, request: Request, principal: Principal = require(roles.DEVICES_READ)) -> dict[str, Any]:
    """Ask the device for its DeviceStatus (online, encoding, recording, alarm inputs) now."""
    commands = commands_of(api_context(request))
    return await run_command(request, principal, "command.device_status", device_id, {}, commands.device_status(device_id))


TargetId = Field(None, min_length=20, max_length=20, pattern=r"^[0-9]{20}$",
                 description="The alarm input or channel it applies to; the device itself when left out.")


class GuardRequest(BaseModel):
    action: Literal["arm", "disarm"] = Field(description="arm sends GuardCmd SetGuard, disarm ResetGuard.")
    target_id: str | None = TargetId


@router.post("/{device_id}/guard")
async def guard(device_id: str, body: GuardRequest, request: Request,
                principal: Principal = require(roles.COMMANDS_DEVICE)) -> dict[str, Any]:
    """Arm or disarm the device's alarm inputs (GuardCmd)."""
    commands = commands_of(api_context(request))
    target = body.target_id or device_id
    return await run_command(request, principal, "command.guard", device_id, {"action": body.action, "target_id": target},
                             commands.guard_command(device_id, target, body.action == "arm"))


class AlarmResetRequest(BaseModel):
    target_id: str | None = TargetId


@router.post("/{device_id}/alarm-reset")
async def alarm_reset(device_id: str, request: Request, body: AlarmResetRequest | None = None,
                      principal: Principal = require(roles.COMMANDS_DEVICE)) -> dict[str, Any]:
    """Clear a latched alarm on the device (AlarmCmd ResetAlarm)."""
    commands = commands_of(api_context(request))
    target = (body.target_id if body else None) or device_id
    return await run_command(request, principal, "command.alarm_reset", device_id, {"target_id": target},
                             commands.alarm_reset(device_id, target))


class BasicConfig(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=64, description="The device's name.")
    expiration: int | None = Field(None, ge=60, le=86400, description="Registration expiry the device asks for, s.")
    heartbeat_interval: int | None = Field(None, ge=5, le=3600, description="Keepalive interval, s.")
    heartbeat_count: int | None = Field(None, ge=1, le=10, description="Missed keepalives before the device counts as offline.")

    @model_validator(mode="after")
    def _something(self) -> BasicConfig:
        if all(v is None for v in self.model_dump().values()):
            raise ValueError("give at least one of name, expiration, heartbeat_interval, heartbeat_count")
        return self


@router.post("/{device_id}/config")
async def configure(device_id: str, body: BasicConfig, request: Request,
                    principal: Principal = require(roles.DEVICES_WRITE)) -> dict[str, Any]:
    """Set the device's basic parameters (DeviceConfig BasicParam)."""
    commands = commands_of(api_context(request))
    params = body.model_dump(exclude_none=True)
    return await run_command(request, principal, "command.config", device_id, params,
                             commands.configure_basic(device_id, **params))
