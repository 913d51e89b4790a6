"""The map's clusters at 100,000 channels on SQLite and PostgreSQL: the answer's counts are the
table's own (count queries beside it), a box is an index range on ix_channels_lon_lat (covering:
no table row read per channel, the offline devices listed once per query) and the small cells' channels are fetched by index ranges too.
Checked with the query plans, not with timings (bench/console_map.py has those)."""

from __future__ import annotations

import random

import pytest
from api_helpers import device_row
from sqlalchemy import and_, func, select, text

from camgrid.api.routes.maps import FEW, cell_deg, cluster_query, singles_query
from camgrid.store.engine import utcnow
from camgrid.store.tables import channels, devices

DEVICES, PER_DEVICE = 1000, 100
CITY = (117.0, 31.6, 117.6, 32.1)  # west, south, east, north


def _insert(engine) -> None:
    rng = random.Random(5)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(devices.insert(), [device_row(d, status="offline" if d % 10 == 0 else "online")
                                        for d in range(DEVICES)])
        rows = []
        for n in range(DEVICES * PER_DEVICE):
            located = n % 50 != 0  # 2 % without coordinates
            rows.append({"id": f"3402{n:016d}", "device_id": f"3402000000132{n // PER_DEVICE:07d}", "name": f"cam {n}",
                         "status": "online" if n % 7 else "offline", "type_code": "131", "extra": {}, "updated_at": now,
                         "longitude": round(rng.uniform(CITY[0], CITY[2]), 6) if located else None,
                         "latitude": round(rng.uniform(CITY[1], CITY[3]), 6) if located else None})
        conn.execute(channels.insert(), rows)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def _plan(engine, stmt) -> str:
    compiled = stmt.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
    prefix = "EXPLAIN QUERY PLAN" if engine.dialect.name == "sqlite" else "EXPLAIN"
    with engine.connect() as conn:
        return "\n".join(str(r[-1]) for r in conn.exec_driver_sql(f"{prefix} {compiled}"))


def _truth(engine, w, s, e, n) -> tuple[int, int]:
    inside = and_(channels.c.longitude.between(w, e), channels.c.latitude.between(s, n))
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(channels).where(inside)).scalar_one()
        online = conn.execute(select(func.count()).select_from(channels.join(devices, devices.c.id == channels.c.device_id))
                              .where(inside, channels.c.status == "online", devices.c.status == "online")).scalar_one()
    return total, online


@pytest.mark.parametrize("bbox, zoom", [((116.0, 31.0, 118.5, 32.8), 9), ((117.2, 31.8, 117.26, 31.84), 15),
                                        ((117.25, 31.85, 117.2575, 31.855), 18)])
def test_clusters_at_100k_channels(api, engine, bbox, zoom):
    _insert(engine)
    answer = api.get("/api/v1/map/clusters", "viewer", params={"bbox": ",".join(map(str, bbox)), "zoom": zoom}).json()
    total, online = _truth(engine, *bbox)
    shown = sum(c["count"] for c in answer["clusters"]) + len(answer["channels"])
    assert answer["total"] == shown == total > 0
    assert sum(c["online"] for c in answer["clusters"]) + sum(p["status"] == "online" for p in answer["channels"]) == online
    assert all(c["count"] > FEW for c in answer["clusters"])
    # A view's answer stays small whatever the channel count: a few hundred markers at most.
    assert len(answer["clusters"]) + len(answer["channels"]) <= 2000, len(answer["clusters"])

    settings = api.get("/api/v1/map/settings", "viewer").json()
    assert settings["total"] == DEVICES * PER_DEVICE and settings["located"] == DEVICES * PER_DEVICE * 49 // 50


def test_a_box_is_an_index_range(engine):
    _insert(engine)
    box = (117.2, 31.8, 117.26, 31.84)
    plan = _plan(engine, cluster_query(box, 15, engine.dialect.name))
    singles = _plan(engine, singles_query([(100, 200), (101, 200)], cell_deg(15), box))
    if engine.dialect.name == "sqlite":
        assert "USING COVERING INDEX ix_channels_lon_lat (longitude>? AND longitude<?)" in plan, plan
        assert "SCAN channels" not in plan, plan
        # The offline devices are listed once per query (not looked up per channel).
        assert "LIST SUBQUERY" in plan and "SEARCH devices" not in plan, plan
        assert "MULTI-INDEX OR" in singles and "SCAN channels" not in singles, singles
    else:
        assert "ix_channels_lon_lat" in plan and "Seq Scan on channels" not in plan, plan
        assert "hashed SubPlan" in plan or "Hash" in plan, plan  # the offline devices once, not per channel
        assert "ix_channels_lon_lat" in singles and "Seq Scan on channels" not in singles, singles
