"""Video quality diagnosis: the patrol's progress and rounds, a round now, a channel's findings
and history, a diagnosis now, its reference picture and its own thresholds; the patrol's
settings, what it learned about each device, an operator's settings per device (sub-stream
selector, PTZ check), an operator's sub-stream selector per manufacturer and "try the sub-stream
again".

Reading needs health:read; acting needs vqd:manage and is audited. `local_router` answers
`camgrid vqd patrol` on the same machine: it is authenticated by the secret the running
platform writes to <data-dir>/run/control.json (readable by whoever owns the data directory,
who owns the database too), and only from a loopback address.
"""

from __future__ import annotations

import hmac
import ipaddress
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from camgrid.api.errors import ApiError
from camgrid.api.paging import CursorQuery, LimitQuery, decode_cursor, fill_page
from camgrid.api.routes.devices import device_status
from camgrid.api.security import Principal, api_context, record, require
from camgrid.config import StreamDialect
from camgrid.governance import roles
from camgrid.governance.audit import audit
from camgrid.ops.vqd import patrol_store as store
from camgrid.ops.vqd.patrol import effective_dialect, refusal_holds
from camgrid.ops.vqd.patrol_ptz import PTZ_TYPES
from camgrid.ops.vqd.thresholds import Thresholds
from camgrid.store.engine import utcnow

router = APIRouter(tags=["vqd"])
local_router = APIRouter(prefix="/local", tags=["local"], include_in_schema=False)


def _patrol(request: Request) -> Any:
    patrol = getattr(api_context(request), "patrol", None)
    if patrol is None:
        raise ApiError(503, "video quality diagnosis is unavailable: this API runs without media nodes")
    return patrol


def _channel(request: Request, channel_id: str) -> dict[str, Any]:
    ch = store.channel(api_context(request).engine, channel_id)
    if ch is None:
        raise ApiError(404, f"no channel {channel_id}")
    return ch


def _state_view(state: dict[str, Any]) -> dict[str, Any]:
    return {"channel_id": state["channel_id"], "open_faults": state["open_faults"], "last_at": state["last_at"],
            "has_reference": state["reference"] is not None, "reference_at": state["reference_at"],
            "reference_by": state["reference_by"], "thresholds": state["thresholds"]}


@router.get("/vqd/patrol")
def patrol_progress(request: Request, principal: Principal = require(roles.HEALTH_READ)) -> dict[str, Any]:
    """The round running now (done / total, channels being diagnosed), the last one, recent rounds."""
    return {**_patrol(request).progress(), "rounds": store.rounds(api_context(request).engine)}


@router.post("/vqd/patrol/run", status_code=202)
async def patrol_run(request: Request, principal: Principal = require(roles.VQD_MANAGE)) -> dict[str, Any]:
    """Start a round now (409 while one runs); follow it at GET /vqd/patrol."""
    patrol = _patrol(request)
    if not patrol.start_round("api", principal.username):
        raise ApiError(409, "a patrol round is running; follow it at GET /api/v1/vqd/patrol")
    await run_in_threadpool(record, request, principal, "vqd.patrol_run", "")
    return patrol.progress()


@router.get("/channels/{channel_id}/vqd")
def channel_vqd(channel_id: str, request: Request, limit: int = Query(20, ge=1, le=500),
                principal: Principal = require(roles.HEALTH_READ)) -> dict[str, Any]:
    """The channel's open findings, reference picture state, own thresholds and latest results."""
    _channel(request, channel_id)
    engine = api_context(request).engine
    return {**_state_view(store.state(engine, channel_id)), "history": store.history(engine, channel_id, limit)}


@router.post("/channels/{channel_id}/vqd/diagnose")
async def diagnose_now(channel_id: str, request: Request, reference: bool = Query(
        False, description="Also keep this picture as the channel's reference (after a confirmed change of view)."),
        principal: Principal = require(roles.VQD_MANAGE)) -> dict[str, Any]:
    """Diagnose the channel now (a few seconds of its live video); with reference=true the
    picture becomes the channel's new reference."""
    patrol = _patrol(request)
    ch = await run_in_threadpool(_channel, request, channel_id)
    result = await patrol.diagnose_channel(ch, make_reference_now=reference, by=principal.username)
    if reference and result["diagnosed"]:
        await run_in_threadpool(record, request, principal, "vqd.reference", channel_id, {"result_id": result["id"]})
    elif reference:
        raise ApiError(502, f"no picture to keep as the reference: {result['reason']}")
    return result


@router.delete("/channels/{channel_id}/vqd/reference", status_code=204)
async def drop_reference(channel_id: str, request: Request, principal: Principal = require(roles.VQD_MANAGE)) -> None:
    """Forget the reference picture (the next clean diagnosis makes a new one when vqd.auto_reference is on)."""
    ctx = api_context(request)
    await run_in_threadpool(_channel, request, channel_id)
    await run_in_threadpool(store.set_reference, ctx.engine, channel_id, None, None, principal.username)
    await run_in_threadpool(record, request, principal, "vqd.reference_drop", channel_id)


@router.put("/channels/{channel_id}/vqd/thresholds")
async def set_thresholds(channel_id: str, body: dict[str, Any], request: Request,
                         principal: Principal = require(roles.VQD_MANAGE)) -> dict[str, Any]:
    """The channel's own threshold overrides (replacing earlier ones; {} removes them). Field names
    and meanings: docs/vqd.md, or the error message of a wrong one."""
    try:
        Thresholds.model_validate({**Thresholds().model_dump(), **body})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ApiError(422, f"not valid thresholds: {problems}") from None
    ctx = api_context(request)
    await run_in_threadpool(_channel, request, channel_id)
    await run_in_threadpool(store.set_thresholds, ctx.engine, channel_id, body)
    await run_in_threadpool(record, request, principal, "vqd.thresholds", channel_id, {"overrides": body})
    return _state_view(await run_in_threadpool(store.state, ctx.engine, channel_id))


# -- the patrol's settings and what it learned about each device (docs/vqd-patrol.md) ----------------

class DeviceSettings(BaseModel):
    """An operator's settings for one device's patrol, over the configuration (null: as configured)."""

    model_config = ConfigDict(extra="forbid")
    dialect: StreamDialect | None = Field(
        None, description="The sub-stream selector for this device (streamnumber, streamprofile, stream, streammode, "
        "all, none); null: vqd.substream's devices / manufacturers / default.")
    ptz_check: bool | None = Field(
        None, description="true: check every PTZ channel of the device; false: none; null: vqd.ptz_check's lists.")


def _device_item(ctx: Any, row: dict[str, Any], ptz: list[dict[str, Any]], now: datetime,
                 makers: dict[str, str]) -> dict[str, Any]:
    s = ctx.settings.vqd
    dialect, source = effective_dialect(s.substream, row["id"], row["manufacturer"] or "", row["override_dialect"],
                                        makers)
    refused_at = row["substream_refused_at"]
    configured = [c["id"] for c in ptz if s.ptz_check.wants(c["id"], c["organisation_id"])]
    override_ptz = row["override_ptz_check"]
    return {
        "device_id": row["id"], "name": row["name"], "manufacturer": row["manufacturer"] or "",
        "status": device_status(ctx, row),
        "dialect": dialect, "dialect_source": source,
        "override": {"dialect": row["override_dialect"], "ptz_check": override_ptz, "by": row["override_by"],
                     "at": row["override_at"]},
        "substream": {
            "refused_at": refused_at, "refused_dialect": row["substream_dialect"], "reason": row["substream_reason"],
            "retry_due_at": refused_at + timedelta(seconds=s.substream.retry_after_s) if refused_at else None,
            "main_only": refusal_holds(row, dialect, s.substream.retry_after_s, now),
            "ok_dialect": row["substream_ok_dialect"], "ok_at": row["substream_ok_at"]},
        "ptz": {"channels": len(ptz), "configured": configured,
                "checked": [c["id"] for c in ptz] if override_ptz else [] if override_ptz is False else configured,
                "last_at": row["ptz_checked_at"], "last": row["ptz_result"]},
    }


def _device_items(ctx: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ptz = store.ptz_channels(ctx.engine, [r["id"] for r in rows], PTZ_TYPES)
    makers = {e["key"]: e["dialect"] for e in store.manufacturer_dialects(ctx.engine)}
    now = utcnow()
    return [_device_item(ctx, r, ptz[r["id"]], now, makers) for r in rows]


def _device(ctx: Any, device_id: str) -> dict[str, Any]:
    row = store.device_row(ctx.engine, device_id)
    if row is None:
        raise ApiError(404, f"no device {device_id}")
    return _device_items(ctx, [row])[0]


@router.get("/vqd/settings")
def patrol_settings(request: Request, principal: Principal = require(roles.HEALTH_READ)) -> dict[str, Any]:
    """The patrol's settings in effect: the configuration, and the operator's selectors per
    manufacturer (`operator_manufacturers`, over the configuration's; devices an operator set
    otherwise are listed at GET /vqd/devices?only=overridden)."""
    ctx = api_context(request)
    s = ctx.settings.vqd
    return {"patrol": s.model_dump(include={"patrol", "first_round_after_s", "round_interval_s", "concurrency",
                                            "per_device", "sample_s", "first_frame_s", "auto_reference"}),
            "substream": s.substream.model_dump(), "ptz_check": s.ptz_check.model_dump(),
            "operator_manufacturers": store.manufacturer_dialects(ctx.engine),
            "dialects": list(get_args(StreamDialect))}


class ManufacturerDialect(BaseModel):
    """An operator's sub-stream selector for every device whose Manufacturer contains the key."""

    model_config = ConfigDict(extra="forbid")
    dialect: StreamDialect = Field(
        description="The selector (streamnumber, streamprofile, stream, streammode, all, none) for devices whose "
        "reported Manufacturer contains the key, case ignored; over vqd.substream.manufacturers, under a "
        "device's own selector and vqd.substream.devices.")


MANUFACTURER_KEY_MAX = 64


def _manufacturer_key(key: str) -> str:
    normal = store.manufacturer_key(key)
    if not normal:
        raise ApiError(400, "the manufacturer key is empty: give a part of the devices' Manufacturer, e.g. hikvision")
    if len(normal) > MANUFACTURER_KEY_MAX:
        raise ApiError(400, f"the manufacturer key is longer than {MANUFACTURER_KEY_MAX} characters: a part of the "
                       "Manufacturer (e.g. hikvision) is enough")
    return normal


def _config_dialect(ctx: Any, key: str) -> str | None:
    return next((d for k, d in ctx.settings.vqd.substream.manufacturers.items() if k.lower() == key), None)


def _manufacturer_entry(ctx: Any, key: str) -> dict[str, Any]:
    entry = next(e for e in store.manufacturer_dialects(ctx.engine) if e["key"] == key)
    return {**entry, "config_dialect": _config_dialect(ctx, key)}


@router.put("/vqd/substream/manufacturers/{key}")
async def set_manufacturer_dialect(key: str, body: ManufacturerDialect, request: Request,
                                   principal: Principal = require(roles.VQD_MANAGE)) -> dict[str, Any]:
    """The sub-stream selector for devices whose Manufacturer contains `key` (case ignored; kept
    lower-case), over the configuration's entry for the same key, if any; the next round follows
    it. Audited with before and after."""
    ctx = api_context(request)
    normal = _manufacturer_key(key)
    before = await run_in_threadpool(store.set_manufacturer_dialect, ctx.engine, normal, body.dialect,
                                     principal.username, utcnow())
    await run_in_threadpool(record, request, principal, "vqd.manufacturer_dialect", normal,
                            {"before": {"dialect": before}, "after": {"dialect": body.dialect}})
    return await run_in_threadpool(_manufacturer_entry, ctx, normal)


@router.delete("/vqd/substream/manufacturers/{key}", status_code=204)
async def drop_manufacturer_dialect(key: str, request: Request, principal: Principal = require(roles.VQD_MANAGE)) -> None:
    """Remove the operator's selector for `key`: its devices get the configuration's again. Audited."""
    ctx = api_context(request)
    normal = _manufacturer_key(key)
    before = await run_in_threadpool(store.drop_manufacturer_dialect, ctx.engine, normal)
    if before is None:
        where = (" (the configuration's vqd.substream.manufacturers has one: change it there)"
                 if _config_dialect(ctx, normal) else "")
        raise ApiError(404, f"no operator's selector for manufacturer {normal!r}{where}")
    await run_in_threadpool(record, request, principal, "vqd.manufacturer_dialect", normal,
                            {"before": {"dialect": before}, "after": {"dialect": None}})


@router.get("/vqd/devices")
def patrol_devices(request: Request,
                   q: str | None = Query(None, min_length=1, max_length=100,
                                         description="Substring of the device's ID, name or manufacturer."),
                   only: Literal["refused", "overridden"] | None = Query(
                       None, description="refused: a sub-stream refusal is remembered; overridden: an operator's setting."),
                   cursor: str | None = CursorQuery, limit: int = LimitQuery,
                   principal: Principal = require(roles.HEALTH_READ)) -> dict[str, Any]:
    """Devices in ID order with their patrol settings in effect (and where each comes from) and what
    the patrol learned (sub-stream refused since, retry due, the selector that worked, the last PTZ
    check); follow next_cursor for the next page."""
    ctx = api_context(request)
    after = decode_cursor(cursor, (str,))
    rows, next_cursor = fill_page(lambda key, n: store.device_rows(ctx.engine, q=q, only=only,
                                                                    after=key[0] if key else None, n=n),
                                  lambda r: [r["id"]], None, after, limit)
    return {"items": _device_items(ctx, rows), "next_cursor": next_cursor}


@router.get("/devices/{device_id}/vqd")
def device_patrol(device_id: str, request: Request, principal: Principal = require(roles.HEALTH_READ)) -> dict[str, Any]:
    """One device's patrol settings in effect and what the patrol learned about it."""
    return _device(api_context(request), device_id)


@router.put("/devices/{device_id}/vqd/settings")
async def set_device_settings(device_id: str, body: DeviceSettings, request: Request,
                              principal: Principal = require(roles.VQD_MANAGE)) -> dict[str, Any]:
    """An operator's sub-stream selector and PTZ check for the device (replacing earlier ones; null
    each: as configured); the next diagnosis follows them. Audited with before and after."""
    ctx = api_context(request)
    before = await run_in_threadpool(_device, ctx, device_id)
    await run_in_threadpool(store.set_overrides, ctx.engine, device_id, body.dialect, body.ptz_check,
                            principal.username, utcnow())
    old = {"dialect": before["override"]["dialect"], "ptz_check": before["override"]["ptz_check"]}
    await run_in_threadpool(record, request, principal, "vqd.device_settings", device_id,
                            {"before": old, "after": body.model_dump()})
    return await run_in_threadpool(_device, ctx, device_id)


@router.post("/devices/{device_id}/vqd/substream/retry")
async def retry_substream(device_id: str, request: Request, principal: Principal = require(roles.VQD_MANAGE)) -> dict[str, Any]:
    """Forget that the device refused the sub-stream: its next diagnosis asks for one again."""
    ctx = api_context(request)
    before = await run_in_threadpool(_device, ctx, device_id)
    await run_in_threadpool(store.set_substream_refused, ctx.engine, device_id, None)
    refused = before["substream"]
    await run_in_threadpool(record, request, principal, "vqd.substream_retry", device_id,
                            {"refused_at": refused["refused_at"].isoformat() if refused["refused_at"] else None,
                             "refused_dialect": refused["refused_dialect"]})
    return await run_in_threadpool(_device, ctx, device_id)


# -- the same machine's command line ------------------------------------------------------------

def local_control(request: Request, x_camgrid_control: str = Header("", alias="X-Camgrid-Control")) -> str:
    secret = getattr(api_context(request), "control_secret", None)
    host = request.client.host if request.client else ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not secret or not loopback or not hmac.compare_digest(x_camgrid_control.encode(), secret.encode()):
        raise ApiError(403, "local control needs the secret in <data-dir>/run/control.json, from this machine")
    return "cli:local"


@local_router.get("/vqd/patrol")
def local_progress(request: Request, actor: str = Depends(local_control)) -> dict[str, Any]:
    return _patrol(request).progress()


@local_router.post("/vqd/patrol/run", status_code=202)
async def local_run(request: Request, actor: str = Depends(local_control)) -> dict[str, Any]:
    patrol = _patrol(request)
    started = patrol.start_round("cli", actor)
    await run_in_threadpool(audit, api_context(request).engine, actor, "vqd.patrol_run", "", {"started": started})
    return {**patrol.progress(), "started": started}
