"""Video quality diagnosis: the patrol's progress and rounds, a round now, a channel's findings
and history, a diagnosis now, its reference picture and its own thresholds.

Reading needs health:read; acting needs vqd:manage and is audited. `local_router` answers
`camgrid vqd patrol` on the same machine: it is authenticated by the secret the running
platform writes to <data-dir>/run/control.json (readable by whoever owns the data directory,
who owns the database too), and only from a loopback address.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from camgrid.api.errors import ApiError
from camgrid.api.security import Principal, api_context, record, require
from camgrid.governance import roles
from camgrid.governance.audit import audit
from camgrid.ops.vqd import patrol_store as store
from camgrid.ops.vqd.thresholds import Thresholds

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
