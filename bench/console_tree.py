"""The console's device tree at scale: GET /api/v1/tree against a registry of N channels, with
the plain channel list (GET /api/v1/channels, one page) run side by side as the baseline.

    .venv/bin/python bench/console_tree.py [--channels 100000] [--database-url URL]

Fills a fresh registry (SQLite in a temp dir by default; PostgreSQL with --database-url) with
N channels on N/100 devices (one in ten offline), spread over 4 cities x 10 districts with one
civil code in twenty left empty (the unassigned node), in 2 business groups of 10 virtual
organisations each (one channel in ten in none). Then times, through the API in-process
(FastAPI TestClient, a viewer's token; the device state from the devices table), the median of
7 runs of: the tree's top level by region and by group (the whole table is aggregated), one
city (its districts), one district's first page of channels, one virtual organisation; and the
baseline: the channel list's first page and a page deep into it by cursor.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _console_common import filled_api, insert_channels, insert_devices, timed  # noqa: E402

from camgrid.store.engine import utcnow  # noqa: E402
from camgrid.store.tables import organisations  # noqa: E402

PER_DEVICE = 100
GROUPS = ["34020000002150000001", "34020000002150000002"]


def vorg(n: int) -> str:
    return f"340200000021600{n:05d}"


def fill(engine, n_channels: int) -> None:
    now = utcnow()
    n_devices = max(1, n_channels // PER_DEVICE)
    insert_devices(engine, n_devices)
    with engine.begin() as conn:
        orgs = [{"id": g, "kind": "business_group", "name": f"group {i}", "parent_id": None, "business_group_id": None,
                 "source_device_id": None, "updated_at": now} for i, g in enumerate(GROUPS)]
        orgs += [{"id": vorg(v), "kind": "virtual_org", "name": f"org {v}", "parent_id": GROUPS[v % 2],
                  "business_group_id": GROUPS[v % 2], "source_device_id": None, "updated_at": now} for v in range(20)]
        orgs += [{"id": f"34{c:02d}{d:02d}", "kind": "region", "name": f"district {c}-{d}", "parent_id": f"34{c:02d}",
                  "business_group_id": None, "source_device_id": None, "updated_at": now}
                 for c in range(1, 5) for d in range(1, 11)]
        conn.execute(organisations.insert(), orgs)

    def rows():  # noqa: ANN202
        for n in range(n_channels):
            d = n // PER_DEVICE
            code = "" if n % 20 == 19 else f"34{1 + d % 4:02d}{1 + (d // 4) % 10:02d}"
            in_group = n % 10 != 7
            v = n % 20
            yield {"id": f"3402{n:016d}", "device_id": f"3402000000132{d:07d}", "name": f"cam {n}",
                   "civil_code": code, "status": "offline" if n % 13 == 0 else "online",
                   "business_group_id": GROUPS[v % 2] if in_group else None,
                   "parent_id": vorg(v) if in_group else f"3402000000132{d:07d}",
                   "type_code": "131", "extra": {}, "updated_at": now}
    insert_channels(engine, rows())


def main() -> None:
    engine, get, _tmp = filled_api(__doc__, fill, PER_DEVICE)

    first = get("/api/v1/channels", limit=100)
    deep_cursor = first["next_cursor"]
    for _ in range(20):  # 20 pages deep
        deep_cursor = get("/api/v1/channels", limit=100, cursor=deep_cursor)["next_cursor"]
    cases = [
        ("tree: top level by region", lambda: get("/api/v1/tree", by="region")),
        ("tree: top level by group", lambda: get("/api/v1/tree", by="group")),
        ("tree: one city (its districts)", lambda: get("/api/v1/tree", by="region", parent="3401")),
        ("tree: one district, first 100 channels", lambda: get("/api/v1/tree", by="region", parent="340101", limit=100)),
        ("tree: one virtual organisation, first 100", lambda: get("/api/v1/tree", by="group", parent=vorg(3), limit=100)),
        ("tree: unassigned (by region), first 100", lambda: get("/api/v1/tree", by="region", parent="unassigned", limit=100)),
        ("baseline: channel list, first 100", lambda: get("/api/v1/channels", limit=100)),
        ("baseline: channel list, page 22 by cursor", lambda: get("/api/v1/channels", limit=100, cursor=deep_cursor)),
    ]
    print(f"{'query':45} {'median':>10}  answer")
    for name, fn in cases:
        median, answer = timed(fn)
        if "nodes" in answer:
            total = sum(n["total"] for n in answer["nodes"])
            what = f"{len(answer['nodes'])} nodes ({total:,} channels), {len(answer['channels']['items'])} channels"
        else:
            what = f"{len(answer['items'])} channels"
        print(f"{name:45} {median * 1000:8.1f} ms  {what}")
    engine.dispose()


if __name__ == "__main__":
    main()
