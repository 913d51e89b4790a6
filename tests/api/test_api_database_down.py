"""The API while its database cannot be used: 503 `database_unavailable` with Retry-After and
words an operator can act on (not a 500 "internal error", and never a 401 for a valid token);
a statement that fails for another reason is still a 500."""

from __future__ import annotations

import socket
import sqlite3

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from camgrid.api.errors import database_unavailable


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_database_that_refuses_connections_is_503_with_retry_after(api):
    assert api.get("/api/v1/devices", "viewer").status_code == 200
    dead = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/test",
                         connect_args={"connect_timeout": 2})
    live, api.ctx.engine = api.ctx.engine, dead
    try:
        for resp in (api.get("/api/v1/devices", "viewer"),  # the token check itself needs the database
                     api.client.post("/api/v1/auth/login", json={"username": "viewer", "password": "x" * 12})):
            assert resp.status_code == 503
            assert resp.headers["Retry-After"] == "5"
            error = resp.json()["error"]
            assert error["code"] == "database_unavailable" and "try again" in error["message"]
    finally:
        api.ctx.engine = live
        dead.dispose()
    assert api.get("/api/v1/devices", "viewer").status_code == 200  # back: nothing to do by hand


def test_a_statement_that_fails_otherwise_is_still_a_500(api, tmp_path):
    empty = create_engine(f"sqlite:///{tmp_path / 'no-tables.db'}")  # "no such table" is an OperationalError too
    live, api.ctx.engine = api.ctx.engine, empty
    try:
        resp = api.get("/api/v1/devices", "viewer")
        assert resp.status_code == 500 and resp.json()["error"]["code"] == "internal_error"
    finally:
        api.ctx.engine = live
        empty.dispose()


@pytest.mark.parametrize("error, unavailable", [
    (OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked")), True),
    (OperationalError("SELECT 1", {}, sqlite3.OperationalError("unable to open database file")), True),
    (OperationalError("INSERT", {}, sqlite3.OperationalError("database or disk is full")), True),
    (OperationalError("SELECT 1", {}, sqlite3.OperationalError("no such table: devices")), False),
    (OperationalError("SELECT 1", {}, Exception("connection refused")), True),
    (InterfaceError("SELECT 1", {}, Exception("connection already closed")), True),
    (IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed")), False),
    (IntegrityError("INSERT", {}, Exception("server closed the connection"), connection_invalidated=True), True),
])
def test_which_database_errors_pass(error, unavailable):
    assert database_unavailable(error) is unavailable
