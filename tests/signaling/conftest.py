"""A real platform (signaling, registry, health, HTTP API) on loopback, and simulated devices."""

from __future__ import annotations

import asyncio

import pytest

from camgrid.app import Platform
from camgrid.config import load_settings
from camgrid.registry.devices import add_device
from camgrid.sim.agent import SimOptions, Simulator
from camgrid.sim.devices import generate
from camgrid.store.engine import open_store

PLATFORM_ID = "34020000002000000001"
REALM = PLATFORM_ID[:10]


def make_settings(tmp_path, db_url, **sections):
    overrides = {
        # Overload shedding off: a CI machine under load must not turn a test's REGISTER into a 503
        # (tests/signaling/test_overload.py drives it on purpose).
        "sip": {"host": "127.0.0.1", "port": 0, "id": PLATFORM_ID, "overload_lag_s": 0, **sections.get("sip", {})},
        "http": {"host": "127.0.0.1", "port": 0},
        "health": {"keepalive_interval_s": 2, "keepalive_count": 2, "sweep_interval_s": 0.2,
                   "flush_interval_s": 0.5, **sections.get("health", {})},
        "catalog": {"page_timeout_s": 3, **sections.get("catalog", {})},
        "store": {"database_url": db_url},
        # The media node runs in the test's own loop, on free ports (tests/media/test_node_process.py
        # starts it as its own process).
        "media": {"embedded": "inline", "http_port": 0, "rtp_ports": (0, 0), "host": "127.0.0.1",
                  **sections.get("media", {})},
    }
    return load_settings(data_dir=tmp_path / "data", overrides=overrides, environ={})


def provision(db_url, specs):
    engine = open_store(db_url)
    for spec in specs:
        add_device(engine, spec.id, spec.password, REALM, name=spec.name)
    engine.dispose()


async def wait_for(predicate, timeout=10.0, interval=0.05):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
def specs():
    # 3 IPCs (2 channels each) and 1 NVR (channels=2); secrets derived per device.
    return generate(4, 2, seed="test-seed", mix=False)


@pytest.fixture
async def platform(tmp_path, db_url, specs):
    provision(db_url, specs)
    settings = make_settings(tmp_path, db_url)
    p = Platform(settings, announce=lambda text: None)
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


def sim_for(platform, specs, transport="udp", **kw):
    opts = SimOptions(PLATFORM_ID, "127.0.0.1", platform.signaling.port, transport, keepalive_s=kw.pop("keepalive_s", 0.5), **kw)
    return Simulator(specs, opts, bind_host="127.0.0.1")
