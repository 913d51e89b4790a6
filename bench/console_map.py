"""The console's map at scale: GET /api/v1/map/clusters against a registry of N channels with
coordinates, with the plain channel list (GET /api/v1/channels, one page) run side by side as
the baseline.

    .venv/bin/python bench/console_map.py [--channels 100000] [--database-url URL]

Fills a fresh registry (SQLite in a temp dir by default; PostgreSQL with --database-url) with
N channels on N/100 devices (one in ten offline; one channel in thirteen offline), placed at
random over a city of 0.6° x 0.5° (one in fifty without coordinates). Then times, through the
API in-process (FastAPI TestClient, a viewer's token), the median of 7 runs of the clusters of
the views an operator sees: the whole city at zoom 10 (every located channel in the box), a
district at zoom 13, a few streets at zoom 16 (mostly single channels) and the whole world at
zoom 3; the map's settings (located count); and the baseline: the channel list's first page.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _console_common import filled_api, insert_channels, insert_devices, timed  # noqa: E402
from sqlalchemy import text  # noqa: E402

from camgrid.store.engine import utcnow  # noqa: E402

PER_DEVICE = 100
CITY = (117.0, 31.6, 117.6, 32.1)  # west, south, east, north


def fill(engine, n_channels: int) -> None:
    rng = random.Random(1)
    now = utcnow()
    insert_devices(engine, max(1, n_channels // PER_DEVICE))

    def rows():  # noqa: ANN202
        for n in range(n_channels):
            located = n % 50 != 49
            yield {"id": f"3402{n:016d}", "device_id": f"3402000000132{n // PER_DEVICE:07d}", "name": f"cam {n}",
                   "status": "offline" if n % 13 == 0 else "online", "type_code": "131", "extra": {},
                   "updated_at": now,
                   "longitude": round(rng.uniform(CITY[0], CITY[2]), 6) if located else None,
                   "latitude": round(rng.uniform(CITY[1], CITY[3]), 6) if located else None}
    insert_channels(engine, rows())
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def main() -> None:
    engine, get, _tmp = filled_api(__doc__, fill, PER_DEVICE)

    def clusters(bbox: tuple[float, float, float, float], zoom: int):
        return lambda: get("/api/v1/map/clusters", bbox=",".join(f"{v:.6f}" for v in bbox), zoom=zoom)

    # The boxes a 1366x768 browser window shows at each zoom, centred on the city.
    def view(zoom: int) -> tuple[float, float, float, float]:
        lon_span = 1366 / 256 * 360 / 2 ** zoom
        lat_span = 700 / 256 * 360 / 2 ** zoom * 0.85  # Mercator at 32°N
        cx, cy = 117.3, 31.85
        return (max(-180, cx - lon_span / 2), max(-90, cy - lat_span / 2), min(180, cx + lon_span / 2), min(90, cy + lat_span / 2))

    cases = [
        ("map: whole city, zoom 10", clusters(view(10), 10)),
        ("map: a district, zoom 13", clusters(view(13), 13)),
        ("map: a few streets, zoom 16", clusters(view(16), 16)),
        ("map: the world, zoom 3", clusters((-180, -85, 180, 85), 3)),
        ("map: settings (located count)", lambda: get("/api/v1/map/settings")),
        ("baseline: channel list, first 100", lambda: get("/api/v1/channels", limit=100)),
    ]
    print(f"{'query':40} {'median':>10}  answer")
    for name, fn in cases:
        median, answer = timed(fn)
        if "clusters" in answer:
            what = (f"{len(answer['clusters'])} clusters + {len(answer['channels'])} channels "
                    f"({answer['total']:,} channels in the box)")
        elif "located" in answer:
            what = f"{answer['located']:,} of {answer['total']:,} located"
        else:
            what = f"{len(answer['items'])} channels"
        print(f"{name:40} {median * 1000:8.1f} ms  {what}")
    engine.dispose()


if __name__ == "__main__":
    main()
