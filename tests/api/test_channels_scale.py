"""500,000 channels in SQLite: paging deep with a cursor stays an index range (no full scan,
no sort). Checked with EXPLAIN QUERY PLAN, not with timings."""

from __future__ import annotations

import json

from api_helpers import PASSWORD, device_row
from fastapi.testclient import TestClient
from sqlalchemy.dialects import sqlite

from camgrid.api.app import ApiContext, create_api
from camgrid.api.paging import encode_cursor
from camgrid.api.routes.channels import after_key, channel_query
from camgrid.config import Settings
from camgrid.governance.users import create_user, issue_token
from camgrid.store.engine import utcnow
from camgrid.store.tables import devices

DEVICES, PER_DEVICE = 500, 1000
_COLS = ("id", "device_id", "name", "manufacturer", "model", "owner", "civil_code", "block", "address", "parental",
         "status", "type_code", "extra", "updated_at", "point_class")


def _insert(engine) -> None:
    now = utcnow().strftime("%Y-%m-%d %H:%M:%S.%f")
    with engine.begin() as conn:
        conn.execute(devices.insert(), [device_row(d, status="online") for d in range(DEVICES)])
        rows = ((f"3402{n:016d}", f"3402000000132{n // PER_DEVICE:07d}", f"cam {n}", "", "", "", "340200", "", "",
                 0, "online" if n % 7 else "offline", "131", "{}", now, 1 + n % 2)
                for n in range(DEVICES * PER_DEVICE))
        sql = f"INSERT INTO channels ({', '.join(_COLS)}) VALUES ({', '.join('?' * len(_COLS))})"
        conn.exec_driver_sql(sql, list(rows))


def _plan(engine, stmt) -> str:
    compiled = stmt.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        return "\n".join(r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))


def test_deep_page_uses_the_index(sqlite_engine):
    engine = sqlite_engine
    _insert(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM channels").scalar_one() == DEVICES * PER_DEVICE
    client = TestClient(create_api(ApiContext(engine=engine, settings=Settings())))
    user = create_user(engine, "viewer1", PASSWORD, "viewer")
    headers = {"Authorization": f"Bearer {issue_token(engine, user['id'], 600)}"}

    # Through the API: walk a few pages deep into the table by cursor.
    cursor, last = None, None
    for _ in range(3):
        page = client.get("/api/v1/channels", headers=headers,
                              params={"limit": 1000, **({"cursor": cursor} if cursor else {})}).json()
        ids = [i["id"] for i in page["items"]]
        assert len(ids) == 1000 and ids == sorted(ids) and (last is None or ids[0] > last)
        last, cursor = ids[-1], page["next_cursor"]

    key = [f"3402{250_000:016d}", 250_001]
    for stmt in (channel_query(), channel_query(status="online"), channel_query(point_class=2)):
        plan = _plan(engine, after_key(stmt, key).limit(1000))
        # An index range on channels (id, pk), or (status, id) for the status filter; never a scan or a sort.
        assert "SEARCH channels USING INDEX ix_channels_" in plan and "id>?" in plan, plan
        assert "SCAN channels" not in plan and "TEMP B-TREE" not in plan, plan
        assert "SEARCH devices USING INDEX" in plan, plan
    # And the cursor for that key round-trips through the API.
    page = client.get("/api/v1/channels", headers=headers,
                          params={"limit": 5, "cursor": encode_cursor(key)}).json()
    assert [i["id"] for i in page["items"]] == [f"3402{n:016d}" for n in range(250_001, 250_006)]
    assert json.loads(json.dumps(page))  # plain JSON
