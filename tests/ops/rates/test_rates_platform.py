"""The rates inside a real platform: simulated devices register over SIP on loopback, their
channels count as online from when the catalog brought them in; when the devices fall silent
the online rate drops, and the API's worst-channels list names them. Permissions are checked
on the same routes."""

from __future__ import annotations

import httpx
import pytest

from camgrid.app import Platform
from camgrid.governance.users import create_user, issue_token
from camgrid.sim.devices import generate
from tests.signaling.conftest import make_settings, provision, sim_for, wait_for


@pytest.fixture
async def platform(tmp_path, db_url):
    specs = generate(3, 2, seed="rates-seed", mix=False)
    provision(db_url, specs)
    p = Platform(make_settings(tmp_path, db_url), announce=lambda text: None)
    await p.start()
    try:
        yield p, specs
    finally:
        await p.stop()


async def test_online_rate_follows_devices_and_the_api_names_the_worst(platform):
    p, specs = platform
    viewer = create_user(p.engine, "watcher", "a long enough password 1", "viewer")
    headers = {"Authorization": f"Bearer {issue_token(p.engine, viewer['id'], 3600)}"}
    base = f"http://127.0.0.1:{p.http_port}/api/v1"
    sim = sim_for(p, specs)
    await sim.start()
    try:
        await wait_for(lambda: len(p.rates.ledger) == 6 and all(
            p.rates.ledger.state_of(s).device_up for s in range(6)), timeout=20)
        async with httpx.AsyncClient(headers=headers) as client:
            await wait_for(lambda: _total(client, base, "online_rate", lambda v: v == 1.0), timeout=20)
            assert (await client.get(f"{base}/rates")).json()["total"]["channels"] == 6
    finally:
        await sim.stop()
    # silent devices go offline after interval x count (2 s x 2 here); their time offline now counts
    await wait_for(lambda: not any(p.health.is_online(s.id) for s in specs), timeout=20)
    async with httpx.AsyncClient(headers=headers) as client:
        await wait_for(lambda: _total(client, base, "online_rate", lambda v: v is not None and v < 1.0), timeout=30)
        worst = (await client.get(f"{base}/rates/channels", params={"limit": 4})).json()
        assert worst["count"] == 6 and len(worst["items"]) == 4
        rates = [i["online_rate"] for i in worst["items"]]
        assert rates == sorted(rates) and rates[0] < 1.0
        assert {i["device_id"] for i in worst["items"]} <= {s.id for s in specs}
        defs = await client.get(f"{base}/rates/definitions")
        assert defs.status_code == 200 and defs.json()["targets"]["online_rate"]["class_one"] == 0.98
        bad = await client.get(f"{base}/rates", params={"from": "2026-12-09", "to": "2026-12-01"})
        assert bad.status_code == 400 and "after" in bad.json()["error"]["message"]
    async with httpx.AsyncClient() as anonymous:
        assert (await anonymous.get(f"{base}/rates")).status_code == 401


async def _total(client: httpx.AsyncClient, base: str, name: str, accept) -> bool:  # noqa: ANN001
    # the service caches today's sums for a few seconds; the check is retried until it holds
    response = await client.get(f"{base}/rates")
    return response.status_code == 200 and accept(response.json()["total"][name])
