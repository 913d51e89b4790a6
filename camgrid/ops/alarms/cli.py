"""`camgrid alarms ...`: alarms from the database of a data directory (or --database-url)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from camgrid.cli_common import DatabaseUrl, DataDir, cli_settings, print_rows, read_store, state_choices
from camgrid.ops.alarms import store
from camgrid.ops.alarms.model import PRIORITY_NAMES, STATES
from camgrid.ops.alarms.outbox import jsonable

alarms_app = typer.Typer(help="Alarms: list them.", no_args_is_help=True, add_completion=False)


StateChoice = state_choices("StateChoice", STATES)


@alarms_app.callback()
def _group() -> None:
    """Alarms: list them."""


@alarms_app.command("list")
def list_alarms(
    data_dir: DataDir = Path("./data"),
    database_url: DatabaseUrl = None,
    state: Annotated[StateChoice, typer.Option(help="A state; active: not resolved; all: every alarm.")] = StateChoice.active,
    priority: Annotated[Optional[int], typer.Option(min=1, max=4, help="Only this priority (1 most urgent).")] = None,
    type_: Annotated[Optional[str], typer.Option("--type", help="Exact type, or a prefix ending in '.*' (vqd.*).")] = None,
    channel: Annotated[Optional[str], typer.Option(help="Only alarms of this channel ID.")] = None,
    device: Annotated[Optional[str], typer.Option(help="Only alarms of this device ID.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many, newest first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per line.")] = False,
) -> None:
    """Alarms, newest first: id, priority, state, type, where, count, last seen, title."""
    settings = cli_settings(data_dir, database_url)
    stmt = store.query(state=state.value, priority=priority, type_=type_, channel_id=channel, device_id=device)
    rows = read_store(settings, "alarms", lambda engine: store.page(engine, stmt, None, limit))
    print_rows(rows, as_json=as_json, empty=f"no alarms ({state.value})", to_json=lambda r: jsonable(store.public(r)),
               header=f"{'ID':>7}  {'PRIO':<10} {'STATE':<12} {'TYPE':<26} {'WHERE':<20} {'COUNT':>6}  {'LAST (UTC)':<19}  TITLE",
               line=_line)
    if not as_json and any(r["cleared_at"] and r["state"] != "resolved" for r in rows):
        typer.echo("* the condition has cleared; the alarm waits to be resolved", err=True)


def _line(row: dict) -> str:
    prio = f"{row['priority']} {PRIORITY_NAMES.get(row['priority'], '')}"
    state_text = row["state"] + ("*" if row["cleared_at"] and row["state"] != "resolved" else "")
    where = row["channel_id"] or row["device_id"] or "-"
    return (f"{row['id']:>7}  {prio:<10} {state_text:<12} {row['type'][:26]:<26} {where:<20} {row['count']:>6}  "
            f"{row['last_at']:%Y-%m-%d %H:%M:%S}  {row['title']}")
