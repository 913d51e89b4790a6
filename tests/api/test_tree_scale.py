"""The device tree over 500,000 channels in SQLite: a node's channels page as an index range in
key order (no scan, no sort), a region's counts come from an index range on its civil codes, and
the counts of the top level add up to every channel. Checked with EXPLAIN QUERY PLAN and counts,
not timings (bench/console_tree.py has those)."""

from __future__ import annotations

from api_helpers import PASSWORD, device_row
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.dialects import sqlite

from camgrid.api.app import ApiContext, create_api
from camgrid.api.routes.tree import own_channels_query
from camgrid.config import Settings
from camgrid.governance.users import create_user, issue_token
from camgrid.registry import tree
from camgrid.store.engine import utcnow
from camgrid.store.tables import channels, devices, organisations

DEVICES, PER_DEVICE = 500, 1000
GROUP, VORG = "34020000002150000001", "34020000002160000001"
_COLS = ("id", "device_id", "name", "manufacturer", "model", "owner", "civil_code", "block", "address", "parental",
         "status", "type_code", "extra", "updated_at", "business_group_id", "parent_id")


def _insert(engine) -> None:
    now = utcnow()
    stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
    with engine.begin() as conn:
        conn.execute(devices.insert(), [device_row(d, status="offline" if d % 50 == 0 else "online")
                                        for d in range(DEVICES)])
        conn.execute(organisations.insert(), [
            {"id": GROUP, "kind": "business_group", "name": "g", "updated_at": now},
            {"id": VORG, "kind": "virtual_org", "name": "v", "parent_id": GROUP, "business_group_id": GROUP,
             "updated_at": now}])

        def row(n: int) -> tuple:
            device = f"3402000000132{n // PER_DEVICE:07d}"
            code = "" if n % 100 == 99 else f"34{1 + n % 3:02d}{1 + n % 7:02d}"  # 3 cities x 7 districts
            group, parent = (GROUP, VORG) if n % 2 else ((GROUP, device) if n % 5 else (None, device))
            return (f"3402{n:016d}", device, f"cam {n}", "", "", "", code, "", "", 0,
                    "online" if n % 7 else "offline", "131", "{}", stamp, group, parent)

        sql = f"INSERT INTO channels ({', '.join(_COLS)}) VALUES ({', '.join('?' * len(_COLS))})"
        conn.exec_driver_sql(sql, [row(n) for n in range(DEVICES * PER_DEVICE)])


def _plan(engine, stmt) -> str:
    compiled = stmt.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        return "\n".join(r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))


def test_tree_queries_are_index_ranges(sqlite_engine):
    engine = sqlite_engine
    _insert(engine)
    client = TestClient(create_api(ApiContext(engine=engine, settings=Settings())))
    user = create_user(engine, "viewer1", PASSWORD, "viewer")
    headers = {"Authorization": f"Bearer {issue_token(engine, user['id'], 600)}"}

    def get(**params):
        resp = client.get("/api/v1/tree", headers=headers, params=params)
        assert resp.status_code == 200, resp.text
        return resp.json()

    # Counts: the top level adds up to every channel, by region and by group, unassigned included.
    for by, unassigned in (("region", DEVICES * PER_DEVICE // 100), ("group", DEVICES * PER_DEVICE // 10)):
        nodes = get(by=by)["nodes"]
        assert sum(n["total"] for n in nodes) == DEVICES * PER_DEVICE
        assert nodes[-1]["id"] == "unassigned" and nodes[-1]["total"] == unassigned
        assert all(0 < n["online"] < n["total"] for n in nodes)
    cities = get(by="region", parent="34")["nodes"]
    assert [n["id"] for n in cities] == ["3401", "3402", "3403"]

    # A node's channels, deep into the node by cursor: each page an index range in pk order.
    with engine.connect() as conn:
        for by, node, index in (("region", "340203", "ix_channels_civil_code"),
                                ("region", "unassigned", "ix_channels_civil_code"),
                                ("group", VORG, "ix_channels_parent_id"),
                                ("group", GROUP, "ix_channels_business_group_id")):
            own = tree.own_channels(conn, by, node)
            for status, live in ((None, False), ("online", False), ("online", True)):
                stmt = own_channels_query(own, status, live)
                plan = _plan(engine, stmt.where(channels.c.pk > 250_000).limit(100))
                assert f"SEARCH channels USING INDEX {index}" in plan and "rowid>?" in plan, (by, node, plan)
                assert "SCAN channels" not in plan and "TEMP B-TREE" not in plan, (by, node, plan)
            first = conn.execute(own_channels_query(own, None, False).limit(3)).all()
            assert len(first) == 3, (by, node)
        # A city's counts read only its civil codes (a range on their index), not the table.
        plan = _plan(engine, tree.region_counts("3402"))
        assert "USING INDEX ix_channels_civil_code (civil_code>? AND civil_code<?)" in plan, plan
        assert "SCAN channels" not in plan, plan

    # Paging through the API walks a district without gaps or repeats.
    seen, cursor = [], None
    for _ in range(3):
        page = get(by="region", parent="340203", limit=1000, **({"cursor": cursor} if cursor else {}))["channels"]
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 3000 and cursor
    with engine.connect() as conn:
        expected = conn.execute(select(channels.c.id).where(channels.c.civil_code == "340203")
                                .order_by(channels.c.pk).limit(3000)).scalars().all()
    assert seen == expected
