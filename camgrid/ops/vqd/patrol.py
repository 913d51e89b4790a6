"""The patrol: every channel of an online device diagnosed in rounds, gently.

- A round goes through the channels least recently diagnosed first, at most `vqd.concurrency`
  at once and `vqd.per_device` per device (an NVR serves few streams), so it never overloads
  devices or the network. Channels of offline devices are skipped (they have their offline
  alarm already).
- Each diagnosis joins the channel's live stream (one already watched is reused, not started
  again), reads `vqd.sample_s` of it, decodes a few spaced key frames and the last GOP, and runs
  the detectors with the channel's thresholds and reference picture. A stream that shows no
  video is signal loss, with the reason the media layer gave.
- Results are kept (vqd_results); when a channel's findings change, `vqd.fault` / `vqd.cleared`
  go on the bus (the alarm centre raises and clears alarms from them, the rates count
  intactness from them, work orders close on them).
- Progress is readable at any moment (`progress()`); rounds are kept (vqd_rounds).
- When it must open a stream itself it asks for the sub-stream (`vqd.substream`: the SDP
  selector per device, manufacturer or by default); a device that refuses it or sends nothing on
  it is diagnosed on its main stream, and remembered (vqd_devices) for `retry_after_s`. Which
  stream was diagnosed is kept with each result; the HD rate takes resolutions from main streams
  only.
- An operator's settings for a device (the console, PUT /devices/{id}/vqd/settings: the selector,
  PTZ check on / off) come before the configuration's, and an operator's selector per
  manufacturer (PUT /vqd/substream/manufacturers/{key}, vqd_manufacturer_dialects) before the
  configuration's manufacturers; those few rows are read once a round, so a change holds from the
  next round on without a restart; what the patrol learned about each device
  (refusal, the selector that worked, the last PTZ check) is kept in vqd_devices.
- PTZ cameras opted in (`vqd.ptz_check`) are moved a little after their diagnosis and judged
  `ptz_unresponsive` when the picture does not follow (patrol_ptz.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from camgrid.bus import Event, EventBus
from camgrid.config import Settings, VqdSubstream
from camgrid.ops.vqd import patrol_store as store
from camgrid.ops.vqd import patrol_ptz
from camgrid.ops.vqd.capture import capture
from camgrid.ops.vqd.diagnose import diagnose
from camgrid.ops.vqd.reference import Reference, make_reference
from camgrid.ops.vqd.thresholds import Thresholds
from camgrid.store.engine import utcnow

log = logging.getLogger(__name__)


def operator_manufacturer_dialect(entries: Mapping[str, str], manufacturer: str) -> str | None:
    """The operator's selector for a manufacturer (`entries`: lower-case key → selector): the
    longest key that is part of the Manufacturer, case ignored (the most specific); None: no key."""
    made_by = (manufacturer or "").lower()
    matching = [key for key in entries if key and key in made_by]
    return entries[max(matching, key=lambda k: (len(k), k))] if matching else None


def effective_dialect(sub: VqdSubstream, device_id: str, manufacturer: str, override: str | None,
                      operator_manufacturers: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(the sub-stream selector for a device, where it comes from): an operator's setting for the
    device ("override", vqd_devices) over `vqd.substream.devices` ("device"), an operator's
    setting for its manufacturer ("manufacturer_operator", vqd_manufacturer_dialects: newer than
    the configuration, so it wins over the same key there), `manufacturers` ("manufacturer") and
    the default ("default")."""
    if override:
        return override, "override"
    if device_id in sub.devices:
        return sub.devices[device_id], "device"
    operator = operator_manufacturer_dialect(operator_manufacturers or {}, manufacturer)
    if operator is not None:
        return operator, "manufacturer_operator"
    made_by = (manufacturer or "").lower()
    if any(key and key.lower() in made_by for key in sub.manufacturers):
        return sub.dialect_for(device_id, manufacturer), "manufacturer"
    return sub.dialect, "default"


def refusal_holds(device: dict[str, Any], dialect: str, retry_after_s: float, now: datetime) -> bool:
    """Whether the device is asked for its main stream only: it refused the sub-stream with this
    selector (a refusal with another one does not hold a new selector back) less than
    retry_after_s ago."""
    refused_at = device["substream_refused_at"]
    return (dialect != "none" and refused_at is not None and device["substream_dialect"] in (None, dialect)
            and (now - refused_at).total_seconds() < retry_after_s)


class Patrol:
    def __init__(self, engine: Engine, bus: EventBus, settings: Settings, media: Any,
                 is_online: Callable[[str], bool], *, clock: Callable[[], datetime] = utcnow,
                 ptz: Callable[[str, str, str], Awaitable[Any]] | None = None) -> None:
        self._engine = engine
        self._bus = bus
        self.settings = settings
        self.s = settings.vqd
        self._media = media
        self._is_online = is_online
        self._clock = clock
        self._ptz = ptz  # (device, channel, PTZCmd hex) → sent; None: PTZ is never checked
        self._work_dir = Path(settings.data_dir) / "tmp" / "vqd"
        self._task: asyncio.Task[None] | None = None
        self._round: asyncio.Task[dict[str, Any]] | None = None
        self._progress: dict[str, Any] = {"running": False}
        self._last: dict[str, Any] | None = None
        self.diagnoses = self.failures = 0
        self._seq = 0  # rounds started by this process

    async def start(self) -> None:
        if self.s.patrol:
            self._task = asyncio.get_running_loop().create_task(self._schedule(), name="vqd-patrol")

    async def stop(self) -> None:
        for task in (self._task, self._round):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._task = self._round = None

    async def _schedule(self) -> None:
        await asyncio.sleep(self.s.first_round_after_s)
        while True:
            try:
                await self.run_round("schedule", "system")
            except Exception:  # the next round tries again
                log.exception("vqd patrol round failed")
            await asyncio.sleep(self.s.round_interval_s)

    # -- rounds ------------------------------------------------------------------------------------
    async def run_round(self, trigger: str, by: str) -> dict[str, Any]:
        """Run a round and return its counts; joins the round already running, if any."""
        self.start_round(trigger, by)
        return await asyncio.shield(self._round)

    def start_round(self, trigger: str, by: str) -> bool:
        """Start a round in the background; False when one is running already. Either way
        progress()["seq"] is then the number of the round to wait for."""
        if self._round is not None and not self._round.done():
            return False
        self._seq += 1
        self._progress = {"running": True, "seq": self._seq, "trigger": trigger, "by": by, "total": 0, "done": 0}
        self._round = asyncio.get_running_loop().create_task(self._run_round(trigger, by, self._seq), name="vqd-round")
        return True

    async def _run_round(self, trigger: str, by: str, seq: int) -> dict[str, Any]:
        todo = await asyncio.to_thread(store.channels_to_patrol, self._engine)
        makers = await asyncio.to_thread(self.operator_manufacturers)
        started = self._clock()
        round_id = await asyncio.to_thread(store.start_round, self._engine, started, trigger, by, len(todo))
        counts = {"diagnosed": 0, "failed": 0, "with_faults": 0, "skipped": 0}
        running: set[str] = set()
        self._progress = {"running": True, "seq": seq, "round_id": round_id, "trigger": trigger, "by": by,
                          "started_at": started.isoformat(), "total": len(todo), "done": 0, **counts,
                          "in_progress": running}
        slots = asyncio.Semaphore(self.s.concurrency)
        per_device: dict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(self.s.per_device))

        async def one(ch: dict[str, Any]) -> None:
            if not self._is_online(ch["device_id"]):
                counts["skipped"] += 1
            else:
                async with per_device[ch["device_id"]], slots:
                    running.add(ch["id"])
                    try:
                        result = await self.diagnose_channel(ch, round_id=round_id, manufacturer_dialects=makers)
                    except Exception as exc:  # one channel must not stop the round
                        log.warning("vqd: %s: %s", ch["id"], exc)
                        result = {"diagnosed": False, "faults": []}
                    finally:
                        running.discard(ch["id"])
                counts["diagnosed" if result["diagnosed"] else "failed"] += 1
                if result["faults"]:
                    counts["with_faults"] += 1
            self._progress.update(counts, done=self._progress["done"] + 1)

        try:
            # Devices in order, each device's channels queued behind its own limit: a bounded
            # number of tasks wait at once however many channels there are.
            batch = max(64, self.s.concurrency * 8)
            for i in range(0, len(todo), batch):
                await asyncio.gather(*(one(ch) for ch in todo[i:i + batch]))
        finally:
            finished = self._clock()
            await asyncio.to_thread(store.finish_round, self._engine, round_id, finished, counts)
            self._last = {"seq": seq, "round_id": round_id, "trigger": trigger, "by": by, "started_at": started.isoformat(),
                          "finished_at": finished.isoformat(), "total": len(todo), **counts}
            self._progress = {"running": False}
        return self._last

    # -- one channel -------------------------------------------------------------------------------
    def operator_manufacturers(self) -> dict[str, str]:
        """The operator's selectors per manufacturer now (lower-case key → selector). Blocking."""
        return {e["key"]: e["dialect"] for e in store.manufacturer_dialects(self._engine)}

    async def diagnose_channel(self, ch: dict[str, Any], *, round_id: int | None = None,
                               make_reference_now: bool = False, by: str = "vqd-patrol",
                               manufacturer_dialects: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Diagnose one channel now ({id, device_id, organisation_id}); store and announce the result.
        `manufacturer_dialects`: the operator's selectors per manufacturer as the round read them
        (None: read them now)."""
        state = await asyncio.to_thread(store.state, self._engine, ch["id"])
        device = await asyncio.to_thread(store.device_state, self._engine, ch["device_id"])
        if manufacturer_dialects is None:
            manufacturer_dialects = await asyncio.to_thread(self.operator_manufacturers)
        dialect = self._substream_dialect(ch, device, manufacturer_dialects)
        got = await capture(self._media, ch["device_id"], ch["id"], seconds=self.s.sample_s,
                            first_frame_s=self.s.first_frame_s, work_dir=self._work_dir, substream=dialect)
        if got.substream_refused:
            log.info("vqd: device %s refused the sub-stream (%s): main stream for %.0f s", ch["device_id"],
                     got.substream_refused, self.s.substream.retry_after_s)
            await asyncio.to_thread(store.set_substream_refused, self._engine, ch["device_id"], self._clock(), dialect,
                                    got.substream_refused)
        elif got.stream == "sub":  # it served one: remember with which selector (and forget a refusal)
            await asyncio.to_thread(store.substream_served, self._engine, ch["device_id"], self._clock(), dialect)
        at = self._clock()
        self.diagnoses += 1
        reference_bytes = None
        if got.sample is None:
            self.failures += 1
            faults = [{"type": "signal_loss", "score": 1.0, "severity": "critical", "reason": got.reason}]
            resolution, codec, frames, duration, diagnosed = None, None, 0, 0.0, False
        else:
            ref = Reference.from_bytes(state["reference"]) if state["reference"] else None
            result = await asyncio.to_thread(diagnose, got.sample, self.thresholds_for(ch, state), ref)
            faults, resolution, codec = result.faults, result.resolution, result.codec
            frames, duration, diagnosed = result.frames_analysed, result.duration_s, True
            if make_reference_now or (ref is None and not faults and self.s.auto_reference):
                reference_bytes = await asyncio.to_thread(lambda: make_reference(got.sample.pictures).to_bytes())
        ptz_note = None
        if (got.sample is not None and self._ptz is not None
                and patrol_ptz.wanted(self.s.ptz_check, ch, device["override_ptz_check"])):
            th = self.thresholds_for(ch, state)
            if th.enabled("ptz_unresponsive"):
                found, ptz_note = await patrol_ptz.check(self, ch, got, th, dialect)
                faults = faults + found
                await asyncio.to_thread(store.set_ptz_result, self._engine, ch["device_id"], self._clock(), {
                    "channel_id": ch["id"], "unresponsive": bool(found),
                    **{k: v for k, v in ptz_note.items() if k in ("checked", "moved", "why")}})
        result_id, before = await asyncio.to_thread(
            store.record, self._engine, channel_id=ch["id"], device_id=ch["device_id"], at=at, round_id=round_id,
            diagnosed=diagnosed, reason=got.reason, faults=faults, resolution=resolution, codec=codec, frames=frames,
            duration_s=duration, reference=reference_bytes, reference_by=by, stream=got.stream)
        self._announce(ch, before, faults, result_id, at)
        return {"id": result_id, "channel_id": ch["id"], "at": at.isoformat(), "diagnosed": diagnosed,
                "reason": got.reason, "faults": faults, "resolution": list(resolution) if resolution else None,
                "codec": codec, "frames_analysed": frames, "duration_s": duration, "stream": got.stream,
                "substream_refused": got.substream_refused, "ptz_check": ptz_note,
                "reference_made": reference_bytes is not None}

    def _substream_dialect(self, ch: dict[str, Any], device: dict[str, Any],
                           manufacturer_dialects: Mapping[str, str]) -> str:
        """The sub-stream selector for the channel's device (store.device_state: `device`); "none"
        while the device is remembered as refusing that selector (for retry_after_s)."""
        dialect, _ = effective_dialect(self.s.substream, ch["device_id"], ch.get("manufacturer") or "",
                                       device["override_dialect"], manufacturer_dialects)
        return "none" if refusal_holds(device, dialect, self.s.substream.retry_after_s, self._clock()) else dialect

    def thresholds_for(self, ch: dict[str, Any], state: dict[str, Any]) -> Thresholds:
        th = self.s.thresholds.for_channel(ch["id"], [ch["organisation_id"]] if ch.get("organisation_id") else [])
        if state.get("thresholds"):
            th = Thresholds.model_validate({**th.model_dump(), **state["thresholds"]})
        return th

    def _announce(self, ch: dict[str, Any], before: list[str], faults: list[dict[str, Any]], result_id: int,
                  at: datetime) -> None:
        now_open = {f["type"]: f for f in faults}
        for fault_type, f in now_open.items():
            if fault_type not in before:
                self._bus.publish(Event("vqd.fault", ch["id"], {
                    "type": fault_type, "score": f["score"], "severity": f["severity"], "device_id": ch["device_id"],
                    "result_id": result_id, **({"reason": f["reason"]} if f.get("reason") else {})}, at))
        for fault_type in before:
            if fault_type not in now_open:
                self._bus.publish(Event("vqd.cleared", ch["id"], {"type": fault_type, "device_id": ch["device_id"],
                                                                 "result_id": result_id}, at))

    # -- reading -----------------------------------------------------------------------------------
    def progress(self) -> dict[str, Any]:
        out = {k: (sorted(v) if isinstance(v, set) else v) for k, v in self._progress.items()}
        out["last_round"] = self._last
        out["enabled"] = self.s.patrol
        return out

    def collect(self) -> dict[str, int]:
        return {"vqd_diagnoses_total": self.diagnoses, "vqd_signal_loss_total": self.failures,
                "vqd_round_running": int(bool(self._progress.get("running")))}
