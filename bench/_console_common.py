"""What the console API benches share: an empty store to fill, the API in-process with a
viewer's token, and a median timer."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from camgrid.api.app import ApiContext, create_api
from camgrid.config import Settings
from camgrid.governance.users import create_user, issue_token
from camgrid.registry.devices import new_device_row
from camgrid.store.engine import make_engine, migrate
from camgrid.store.tables import channels, devices

BATCH = 20_000


def insert_devices(engine: Engine, count: int) -> None:
    """`count` devices, one in ten offline."""
    rows = []
    for d in range(count):
        row = new_device_row(f"3402000000132{d:07d}", name=f"dev {d}")
        row["status"] = "offline" if d % 10 == 9 else "online"
        rows.append(row)
    with engine.begin() as conn:
        conn.execute(devices.insert(), rows)


def insert_channels(engine: Engine, rows: Iterable[dict[str, Any]]) -> None:
    """Channel rows in transactions of BATCH."""
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            with engine.begin() as conn:
                conn.execute(channels.insert(), batch)
            batch = []
    if batch:
        with engine.begin() as conn:
            conn.execute(channels.insert(), batch)


def filled_api(doc: str, fill: Callable[[Engine, int], None], per_device: int) -> tuple[Engine, Any, Any]:
    """The bench's command line (--channels, --database-url), an empty store filled by `fill`, and
    the API getter: (engine, getter, the temp-dir handle to keep alive)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", type=int, default=100_000)
    ap.add_argument("--database-url", default=None)
    args = ap.parse_args()
    engine, tmp = empty_store(args.database_url)
    t0 = time.perf_counter()
    fill(engine, args.channels)
    print(f"{engine.dialect.name}: {args.channels:,} channels on {args.channels // per_device:,} devices "
          f"filled in {time.perf_counter() - t0:.1f} s")
    return engine, api_getter(engine), tmp


def empty_store(database_url: str | None) -> tuple[Engine, tempfile.TemporaryDirectory]:
    """A migrated store without channels (SQLite in a temp dir unless a URL is given); the temp
    dir lives as long as the returned handle."""
    tmp = tempfile.TemporaryDirectory()
    url = database_url or f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    engine = make_engine(url)
    migrate(engine)
    with engine.connect() as conn:
        if conn.execute(select(func.count()).select_from(channels)).scalar_one():
            sys.exit(f"{url} already has channels; give an empty database")
    return engine, tmp


def api_getter(engine: Engine) -> Callable[..., Any]:
    """GET through the API in-process as a viewer; the JSON, or an AssertionError naming the answer."""
    client = TestClient(create_api(ApiContext(engine=engine, settings=Settings())))
    user = create_user(engine, "bench", "Correct-Horse-42", "viewer")
    headers = {"Authorization": f"Bearer {issue_token(engine, user['id'], 3600)}"}

    def get(path: str, **params: Any) -> Any:
        resp = client.get(path, headers=headers, params=params)
        assert resp.status_code == 200, resp.text
        return resp.json()
    return get


def timed(fn: Callable[[], Any], runs: int = 7) -> tuple[float, Any]:
    """(median seconds of `runs` calls, the last result)."""
    values = []
    result = None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        values.append(time.perf_counter() - t0)
    return statistics.median(values), result
