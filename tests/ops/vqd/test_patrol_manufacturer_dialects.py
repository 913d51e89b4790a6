"""The patrol follows an operator's selector per manufacturer (set through the API, kept in
vqd_manufacturer_dialects) from the next round on, without a restart, over the configuration's
entry for the same manufacturer; it reads those entries once a round, not once a device. Real
platform, simulated camera on loopback that understands one selector (640x480 main stream,
320x240 sub-stream), as in test_patrol_substream_ptz.py."""

from __future__ import annotations

import httpx

from camgrid.config import VqdSubstream
from camgrid.ops.vqd import patrol_store
from camgrid.ops.vqd.patrol import effective_dialect
from camgrid.store.tables import devices, vqd_results
from tests.ops.vqd.test_patrol_device_settings import idle, learned, operator
from tests.ops.vqd.test_patrol_substream_ptz import (  # noqa: F401  (fixtures)
    db_url,
    footage,
    rows,
    running,
)
from tests.signaling.conftest import wait_for


async def test_a_manufacturer_entry_changes_the_selector_the_next_round_asks_for(running, monkeypatch):
    platform, sim, specs = running
    device, channel_ids = specs[0].id, [c.id for c in specs[0].channels]
    sim.media.opts.substream_dialects = ("stream",)  # a Dahua-style camera ...
    # ... whose maker (its DeviceInfo says "camgrid-sim") the configuration gets wrong
    await wait_for(lambda: rows(platform.engine, devices, devices.c.id == device)[0]["manufacturer"] == "camgrid-sim",
                   timeout=10)
    platform.settings.vqd.substream.dialect = "streamnumber"
    platform.settings.vqd.substream.manufacturers = {"camgrid": "streamprofile"}
    reads = []
    real_read = patrol_store.manufacturer_dialects
    monkeypatch.setattr(patrol_store, "manufacturer_dialects", lambda engine: reads.append(1) or real_read(engine))

    first = await platform.patrol.run_round("api", "test")
    assert first["diagnosed"] == 2 and len(reads) == 1  # two channels, one read
    assert sim.media.streams_served == [(c, 0) for c in channel_ids]  # not understood: the main picture
    base, as_op = operator(platform)
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.put(f"{base}/vqd/substream/manufacturers/CamGrid", json={"dialect": "stream"}, headers=as_op)
        assert r.status_code == 200, r.text
        state = (await client.get(f"{base}/devices/{device}/vqd", headers=as_op)).json()
        assert (state["dialect"], state["dialect_source"]) == ("stream", "manufacturer_operator")
    for ch_id in channel_ids:
        await idle(platform, device, ch_id)

    reads.clear()
    second = await platform.patrol.run_round("api", "test")
    assert second["diagnosed"] == 2 and len(reads) == 1
    assert sim.media.streams_served[2:] == [(c, 1) for c in channel_ids]  # the sub-stream now
    assert learned(platform, device)["substream_ok_dialect"] == "stream"
    latest = rows(platform.engine, vqd_results, vqd_results.c.round_id == second["round_id"])
    assert sorted((r["width"], r["height"]) for r in latest) == [(320, 240), (320, 240)]


def test_the_order_of_selectors_and_the_most_specific_operator_key():
    sub = VqdSubstream(dialect="all", devices={"D1": "none"}, manufacturers={"Hikvision": "streamprofile"})
    makers = {"hik": "stream", "hikvision": "streamnumber", "dahua": "streammode"}
    assert effective_dialect(sub, "D2", "HIKVISION Digital", "stream", makers) == ("stream", "override")
    assert effective_dialect(sub, "D1", "Hikvision", None, makers) == ("none", "device")
    assert effective_dialect(sub, "D2", "HIKVISION Digital", None, makers) == ("streamnumber", "manufacturer_operator")
    assert effective_dialect(sub, "D2", "Hik-Connect", None, makers) == ("stream", "manufacturer_operator")
    assert effective_dialect(sub, "D2", "Hikvision", None, {}) == ("streamprofile", "manufacturer")
    assert effective_dialect(sub, "D2", "", None, makers) == ("all", "default")
