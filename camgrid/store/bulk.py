"""Write-back batches without SQLAlchemy's per-row parameter work.

`conn.execute(stmt, rows)` builds and processes a parameter set per row through the compiled
statement's machinery: 13-16 µs of Python a row for the registration write-back, against
4-5 µs of SQLite's own work (docs/benchmarks.md, "Write-back rows through the driver"). The
hot write-back paths (registrations, status changes, last-seen times, the event log) write
thousands of rows a second in a registration storm, so they use `BulkStatement`: the
statement is compiled once per dialect, the bind processors SQLAlchemy itself would apply
(SQLite's datetime formatting, JSON serialisation) are looked up once, and the rows go to the
driver's executemany as plain tuples or dicts. tests/store/test_bulk.py holds it to what
`conn.execute` stores, on SQLite and PostgreSQL.

One processor is replaced by an equal, cheaper one: SQLite's DATETIME formats every datetime
with `format % {seven fields}`, 5-10 µs a value on a loaded 2-core VM, three times in each
registration row; datetime.isoformat gives the same text in well under a microsecond.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects.sqlite import DATETIME as SQLITE_DATETIME
from sqlalchemy.sql import ClauseElement

ROWS_PER_CALL = 5000  # rows per executemany: bounds the memory of one call's parameters

_Compiled = tuple[str, tuple[tuple[str, Callable[[Any], Any] | None], ...], bool]

_SQLITE_DATETIME_FORMAT = SQLITE_DATETIME()._storage_format  # "%(year)04d-%(month)02d-%(day)02d %(hour)02d:..."


def sqlite_datetime(processor: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """SQLite DATETIME's bind processor (default storage format) for a plain datetime: its
    fields as YYYY-MM-DD HH:MM:SS.ffffff, the zone ignored as SQLAlchemy ignores it; anything
    else (None, a date, a subclass) goes to `processor` itself. The text of the last value is
    kept: a row's times are often one object (registered_at and updated_at)."""
    last: list[tuple[Any, str]] = [(object(), "")]  # one tuple, replaced whole: safe across threads

    def process(value: Any) -> Any:
        known, text = last[0]
        if value is known:
            return text
        if type(value) is datetime:
            text = value.isoformat(" ", "microseconds")[:26]
            last[0] = (value, text)
            return text
        return processor(value)
    return process


def _fast(bind: Any, processor: Callable[[Any], Any] | None, conn: Connection) -> Callable[[Any], Any] | None:
    if processor is None or conn.dialect.name != "sqlite":
        return processor
    impl = bind.type.dialect_impl(conn.dialect)
    if type(impl) is SQLITE_DATETIME and impl._storage_format == _SQLITE_DATETIME_FORMAT:
        return sqlite_datetime(processor)
    return processor


class BulkStatement:
    """An INSERT or UPDATE whose every value is a named bindparam(), run as executemany.

    Rows are dicts keyed by bind name; each must carry every name (a missing one raises
    KeyError naming it), extra keys are ignored. Give bindparams of untyped expressions (e.g.
    inside coalesce()) their column's type, or they reach the driver unprocessed.
    """

    def __init__(self, stmt: ClauseElement) -> None:
        self.stmt = stmt
        self._by_dialect: dict[str, _Compiled] = {}

    def _compile(self, conn: Connection) -> _Compiled:
        compiled = self.stmt.compile(dialect=conn.dialect)
        positional = bool(compiled.positional)
        names = list(compiled.positiontup or ()) if positional else list(compiled.binds)
        unnamed = [n for n in names if compiled.binds[n].value is not None or compiled.binds[n].callable is not None]
        if unnamed:
            raise ValueError(f"BulkStatement needs every value as a named bindparam(); {unnamed} carry values")
        processors = compiled._bind_processors  # what Connection.execute applies per row
        entry = (compiled.string, tuple((n, _fast(compiled.binds[n], processors.get(n), conn)) for n in names),
                 positional)
        self._by_dialect[conn.dialect.name] = entry
        return entry

    def execute(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        if not rows:
            return
        sql, binds, positional = self._by_dialect.get(conn.dialect.name) or self._compile(conn)
        for start in range(0, len(rows), ROWS_PER_CALL):
            part = rows[start:start + ROWS_PER_CALL]
            if positional:
                params: list[Any] = [tuple([r[n] if p is None else p(r[n]) for n, p in binds])
                                     for r in part]
            else:
                params = [{n: r[n] if p is None else p(r[n]) for n, p in binds} for r in part]
            conn.exec_driver_sql(sql, params)
