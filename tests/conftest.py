"""Shared fixtures. Database tests run against SQLite and, when reachable, real PostgreSQL.

In CI (CI=true) PostgreSQL must be reachable: a missing server fails the run instead of
silently skipping half the suite.
"""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa

from camgrid.store.engine import make_engine, migrate

PG_URL = os.environ.get("CAMGRID_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_available() -> bool:
    try:
        eng = sa.create_engine(PG_URL, connect_args={"connect_timeout": 2})
        with eng.connect() as c:
            c.execute(sa.text("select 1"))
        eng.dispose()
        return True
    except Exception:
        return False


_PG_OK: bool | None = None


def pg_schema_url() -> str:
    """A fresh, empty PostgreSQL schema for one test; returns a URL that uses it."""
    global _PG_OK
    if _PG_OK is None:
        _PG_OK = _pg_available()
    if not _PG_OK:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL not reachable at {PG_URL} (required in CI)")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    schema = "t_" + uuid.uuid4().hex[:12]
    eng = sa.create_engine(PG_URL)
    with eng.begin() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    eng.dispose()
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


def drop_pg_schema(url: str) -> None:
    schema = url.rsplit("%3D", 1)[-1]
    eng = sa.create_engine(PG_URL)
    with eng.begin() as c:
        c.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    eng.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    """A database URL with an empty database, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'camgrid.db'}"
        return
    url = pg_schema_url()
    try:
        yield url
    finally:
        drop_pg_schema(url)


@pytest.fixture
def engine(db_url):
    """A migrated engine on each database kind."""
    eng = make_engine(db_url)
    migrate(eng)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def sqlite_engine(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'camgrid.db'}")
    migrate(eng)
    try:
        yield eng
    finally:
        eng.dispose()
