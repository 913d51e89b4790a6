"""Does a PTZ camera still obey? After a channel's diagnosis the patrol moves the camera a
little and looks again (opt-in: `vqd.ptz_check`, only channels whose catalog PTZType is a dome,
half-dome or remote-controlled fixed camera).

1. The pictures of the diagnosis just made are the view before.
2. The camera is left alone when someone moved it from the console lately: a `command.ptz` in
   the audit log (every PTZ command sent through the API is audited, whoever sent it) within
   `operator_quiet_s`. The patrol's own moves are audited as `vqd.ptz_check`, so they do not
   count as an operator's.
3. A pan to the right at `pan_speed` for `move_s`, then stop (DeviceControl PTZCmd).
4. A few more seconds of the same stream are the view after.
5. The camera goes back: the configured preset, else the opposite pan for as long, then stop —
   whatever happened in between.
6. The detector that judges `--ptz-at` (motion.ptz) judges the pictures before and after,
   with the channel's thresholds (ptz_min_change, ptz_wait_s).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from camgrid.gb28181.ptz import PtzCommand, encode
from camgrid.governance.audit import audit
from camgrid.ops.vqd import motion
from camgrid.ops.vqd import patrol_store as store
from camgrid.ops.vqd.capture import Capture, capture
from camgrid.ops.vqd.diagnose import severity
from camgrid.ops.vqd.frames import Picture
from camgrid.ops.vqd.thresholds import Thresholds

if TYPE_CHECKING:
    from camgrid.config import VqdPtzCheck
    from camgrid.ops.vqd.patrol import Patrol

log = logging.getLogger(__name__)
PTZ_TYPES = (1, 2, 4)  # dome, half-dome, remote-controlled fixed (GB/T 28181 catalog Info/PTZType)
AFTER_S = 3.0  # seconds of video read after the move
ACTOR = "vqd-patrol"


def wanted(settings: VqdPtzCheck, ch: dict[str, Any], override: bool | None = None) -> bool:
    """A PTZ channel the configuration opts in, or any PTZ channel of a device an operator turned
    the check on for (`override`: vqd_devices.override_ptz_check; False turns it off)."""
    if ch.get("ptz_type") not in PTZ_TYPES:
        return False
    return override if override is not None else settings.wants(ch["id"], ch.get("organisation_id"))


async def check(patrol: Patrol, ch: dict[str, Any], got: Capture, th: Thresholds,
                dialect: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """([ptz_unresponsive] or [], what was done) for a channel just diagnosed from `got`."""
    s = patrol.s.ptz_check
    engine, now = patrol._engine, patrol._clock()
    busy = await asyncio.to_thread(store.operator_ptz_since, engine, ch["id"], now - timedelta(seconds=s.operator_quiet_s))
    if busy is not None:
        return [], {"checked": False, "why": f"an operator moved the camera at {busy.isoformat()}"}
    device, channel = ch["device_id"], ch["id"]
    sent: list[str] = []

    async def send(cmd: PtzCommand) -> None:
        code = encode(cmd)
        sent.append(code)
        await patrol._ptz(device, channel, code)

    after: Capture | None = None
    error = None
    try:
        await send(PtzCommand.move(pan=1, speed=s.pan_speed))
        await asyncio.sleep(s.move_s)
        await send(PtzCommand.stop())
        after = await capture(patrol._media, device, channel, seconds=AFTER_S, first_frame_s=patrol.s.first_frame_s,
                              work_dir=patrol._work_dir, substream=dialect if got.stream == "sub" else "none")
    except Exception as exc:  # noqa: BLE001 - a failed command is no finding; the camera still goes back
        error = str(exc) or type(exc).__name__
    finally:
        try:
            await _return(patrol, device, channel, send)
        except Exception as exc:  # noqa: BLE001
            log.warning("vqd: %s: could not return the camera after the PTZ check: %s", channel, exc)
            error = error or f"could not return the camera: {exc}"
        await asyncio.to_thread(audit, engine, ACTOR, "vqd.ptz_check", channel,
                                {"device_id": device, "ptz": sent, **({"error": error[:300]} if error else {})})
    if error or after is None or after.sample is None:
        why = error or (after.reason if after is not None else "no video after the move")
        return [], {"checked": False, "why": why, "commands": sent}
    found = judge(got.sample.pictures, after.sample.pictures, th)
    return found, {"checked": True, "commands": sent, "moved": not found}


async def _return(patrol: Patrol, device: str, channel: str, send: Any) -> None:
    s = patrol.s.ptz_check
    preset = s.presets.get(channel)
    if preset:
        await send(PtzCommand.preset_call(preset))
        return
    await send(PtzCommand.move(pan=-1, speed=s.pan_speed))
    await asyncio.sleep(s.move_s)
    await send(PtzCommand.stop())


def judge(before: list[Picture], after: list[Picture], th: Thresholds) -> list[dict[str, Any]]:
    """ptz_unresponsive when the pictures after the move show the view of before: the two lists,
    each timed from its own start, are laid end to end with the command between them."""
    if not before or not after:
        return []
    at = max(p.t for p in before) + 0.01
    start = min(p.t for p in after)
    shifted = [Picture(at + 0.01 + p.t - start, p.y, p.u, p.v, p.detail) for p in after]
    found = motion.ptz(list(before) + shifted, [at], th)
    for f in found:
        f["score"] = round(float(f["score"]), 3)
        f["severity"] = severity(f)
    return [{"type": f["type"], "score": f["score"], "severity": f["severity"],
             **{k: v for k, v in f.items() if k not in ("type", "score", "severity")}} for f in found]
