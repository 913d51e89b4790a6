"""What the `camgrid` sub-commands share: the data-dir and database options, settings, the store."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from sqlalchemy import Engine

from camgrid.config import Settings, load_settings
from camgrid.store.engine import open_store

DataDir = Annotated[Path, typer.Option("--data-dir", help="Data directory (database, state).")]
DatabaseUrl = Annotated[Optional[str], typer.Option("--database-url", help="SQLAlchemy URL; default SQLite in the data dir.")]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print an error for the operator; raise what it returns."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def cli_settings(data_dir: Path, database_url: str | None) -> Settings:
    try:
        return load_settings(data_dir=data_dir, overrides={"store": {"database_url": database_url}} if database_url else None)
    except Exception as exc:
        raise fail(f"invalid configuration: {exc}", 2) from None


@contextmanager
def cli_store(settings: Settings) -> Iterator[Engine]:
    """The migrated store for one command, disposed of afterwards."""
    if not settings.store.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        engine = open_store(settings.database_url)
    except Exception as exc:
        raise fail(f"cannot open the database ({exc}); check --database-url / --data-dir") from None
    try:
        yield engine
    finally:
        engine.dispose()


T = TypeVar("T")


def state_choices(name: str, states: Sequence[str]) -> type[Enum]:
    """The choices of a list command's --state: each state, then active (not finished) and all."""
    return Enum(name, {s: s for s in (*states, "active", "all")}, type=str)  # type: ignore[return-value]


def read_store(settings: Settings, what: str, read: Callable[[Engine], T]) -> T:
    """`read(engine)` on the migrated store; an error the operator can act on when it fails."""
    with cli_store(settings) as engine:
        try:
            return read(engine)
        except Exception as exc:
            raise fail(f"cannot read {what} ({exc})") from None


def print_rows(rows: Sequence[dict[str, Any]], *, as_json: bool, empty: str, header: str,
               line: Callable[[dict[str, Any]], str], to_json: Callable[[dict[str, Any]], Any]) -> None:
    """A list command's output: one JSON object per line, or a header and a table line per row
    (`empty` on stderr when there are none)."""
    if as_json:
        for row in rows:
            typer.echo(json.dumps(to_json(row), ensure_ascii=False, sort_keys=True))
        return
    if not rows:
        typer.echo(empty, err=True)
        return
    typer.echo(header)
    for row in rows:
        typer.echo(line(row))
