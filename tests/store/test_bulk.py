"""BulkStatement stores exactly what Connection.execute stores, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import bindparam, func, literal_column, null, select, text, update

from camgrid.registry.devices import new_device_row
from camgrid.store import bulk
from camgrid.store.bulk import BulkStatement
from camgrid.store.tables import devices, events

T0 = datetime(2026, 12, 1, 16, 0, 0, 123456, tzinfo=UTC)


def _update_stmt():
    return update(devices).where(devices.c.id == bindparam("b_id")).values(
        remote_addr=bindparam("addr"), register_expires_at=bindparam("expires"),
        last_seen_at=func.coalesce(bindparam("seen", type_=devices.c.last_seen_at.type), devices.c.last_seen_at),
        updated_at=bindparam("updated"))


def _device_ids(n: int, prefix: str) -> list[str]:
    return [f"34020000001{prefix}{i:07d}" for i in range(n)]


def _stored_text(conn, ids: list[str]) -> list[tuple]:
    """The columns as the database holds them (text casts, so SQLite's datetime format counts)."""
    cols = ", ".join(f"CAST({c} AS TEXT)" for c in ("remote_addr", "register_expires_at", "last_seen_at", "updated_at"))
    order = {i: k for k, i in enumerate(ids)}
    rows = conn.execute(text(f"SELECT id, {cols} FROM devices WHERE id IN :ids").bindparams(
        bindparam("ids", expanding=True)), {"ids": ids}).all()
    return [tuple(r[1:]) for r in sorted(rows, key=lambda r: order[r[0]])]


def test_an_update_stores_the_same_values_as_execute(engine):
    a, b = _device_ids(40, "a"), _device_ids(40, "b")
    earlier = T0 - timedelta(days=3)
    with engine.begin() as conn:
        conn.execute(devices.insert(), [new_device_row(i) | {"last_seen_at": earlier} for i in a + b])

    def rows(ids):
        zone = timezone(timedelta(hours=8))  # a non-UTC time must be stored as the same instant
        return [{"b_id": i, "addr": f"10.0.0.{k}:5060" if k % 3 else None,
                 "expires": T0 + timedelta(seconds=k) if k % 4 else (T0 + timedelta(seconds=k)).astimezone(zone),
                 "seen": None if k % 5 == 0 else T0 - timedelta(microseconds=k), "updated": T0,
                 "ignored": "extra keys are ignored"} for k, i in enumerate(ids)]
    stmt = _update_stmt()
    with engine.begin() as conn:
        conn.execute(stmt, [{k: v for k, v in r.items() if k != "ignored"} for r in rows(a)])
        BulkStatement(stmt).execute(conn, rows(b))
    with engine.connect() as conn:
        via_execute, via_bulk = _stored_text(conn, a), _stored_text(conn, b)
        kept = conn.execute(select(devices.c.last_seen_at).where(devices.c.id == b[0])).scalar_one()
    assert via_bulk == via_execute
    assert kept.replace(tzinfo=kept.tzinfo or UTC) == earlier  # seen None: coalesce kept the stored time


def test_an_insert_with_json_stores_the_same_rows_as_execute(engine):
    data = [{"reason": "registered", "n": k, "ratio": k / 7, "ok": k % 2 == 0, "none": None, "name": "北京 ✓",
             "nested": {"list": [1, "two", None]}} for k in range(30)]

    def rows(kind):
        return [{"at": T0 + timedelta(seconds=k), "kind": kind, "subject": f"dev{k}", "data": d}
                for k, d in enumerate(data)]
    stmt = events.insert().values({n: bindparam(n) for n in ("at", "kind", "subject", "data")})
    with engine.begin() as conn:
        conn.execute(stmt, rows("via.execute"))
        BulkStatement(stmt).execute(conn, rows("via.bulk"))

    def stored(kind):
        with engine.connect() as conn:
            got = conn.execute(select(events.c.at, events.c.subject, events.c.data, literal_column("CAST(at AS TEXT)"))
                               .where(events.c.kind == kind).order_by(events.c.id)).all()
        return [tuple(r) for r in got]
    assert stored("via.bulk") == stored("via.execute")
    assert [r[2] for r in stored("via.bulk")] == data


def test_rows_beyond_one_call_are_all_written(engine, monkeypatch):
    monkeypatch.setattr(bulk, "ROWS_PER_CALL", 7)
    ids = _device_ids(50, "c")
    with engine.begin() as conn:
        conn.execute(devices.insert(), [new_device_row(i) for i in ids])
        BulkStatement(update(devices).where(devices.c.id == bindparam("b_id")).values(
            remote_addr=bindparam("addr"))).execute(conn, [{"b_id": i, "addr": f"a{k}"} for k, i in enumerate(ids)])
    with engine.connect() as conn:
        got = dict(conn.execute(select(devices.c.id, devices.c.remote_addr).where(devices.c.id.in_(ids))).all())
    assert got == {i: f"a{k}" for k, i in enumerate(ids)}


def test_literal_nulls_are_allowed_but_bound_values_are_refused(sqlite_engine):
    ids = _device_ids(3, "d")
    with sqlite_engine.begin() as conn:
        conn.execute(devices.insert(), [new_device_row(i) | {"remote_addr": "x"} for i in ids])
        BulkStatement(update(devices).where(devices.c.id == bindparam("b_id")).values(
            remote_addr=null(), updated_at=bindparam("at"))).execute(conn, [{"b_id": i, "at": T0} for i in ids])
        assert conn.execute(select(func.count()).where(devices.c.remote_addr.is_(None), devices.c.id.in_(ids))
                            ).scalar_one() == 3
        with pytest.raises(ValueError, match="named bindparam"):
            BulkStatement(update(devices).where(devices.c.id == bindparam("b_id")).values(
                remote_addr="fixed")).execute(conn, [{"b_id": ids[0]}])


def test_a_row_without_a_bind_names_it(sqlite_engine):
    stmt = BulkStatement(update(devices).where(devices.c.id == bindparam("b_id")).values(remote_addr=bindparam("addr")))
    with sqlite_engine.begin() as conn, pytest.raises(KeyError, match="addr"):
        stmt.execute(conn, [{"b_id": "34020000001320000001"}])


def test_no_rows_is_no_statement(sqlite_engine):
    stmt = BulkStatement(update(devices).where(devices.c.id == bindparam("b_id")).values(remote_addr=bindparam("addr")))
    with sqlite_engine.begin() as conn:
        stmt.execute(conn, [])
    assert stmt._by_dialect == {}  # not even compiled


def test_sqlite_datetimes_are_formatted_as_sqlalchemy_formats_them():
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.dialects.sqlite import DATETIME

    from camgrid.store.bulk import sqlite_datetime

    theirs = DATETIME().bind_processor(sqlite.dialect())
    ours = sqlite_datetime(theirs)
    zone = timezone(timedelta(hours=-3, minutes=-30))
    values = [None, T0, T0, T0.replace(microsecond=0), T0.replace(tzinfo=None), T0.astimezone(zone), None,
              datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), datetime(999, 2, 3, 4, 5, 6, 7),
              T0.date(), T0.replace(fold=1), None]
    assert [ours(v) for v in values] == [theirs(v) for v in values]
    with pytest.raises(TypeError):
        ours("2026-12-01")


def test_bulk_on_sqlite_uses_the_cheaper_datetime_formatting(sqlite_engine):
    stmt = BulkStatement(_update_stmt())
    with sqlite_engine.begin() as conn:
        stmt.execute(conn, [{"b_id": "x", "addr": None, "expires": T0, "seen": None, "updated": T0}])
    _, binds, _ = stmt._by_dialect["sqlite"]
    assert {n: getattr(p, "__qualname__", None) for n, p in binds}["updated"] == "sqlite_datetime.<locals>.process"
