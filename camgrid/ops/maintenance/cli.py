"""`camgrid maintenance ...`: work orders from the database of a data directory (or --database-url)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from camgrid.cli_common import DatabaseUrl, DataDir, cli_settings, print_rows, read_store, state_choices
from camgrid.ops.alarms.outbox import jsonable
from camgrid.ops.maintenance import model, store
from camgrid.store.engine import utcnow

maintenance_app = typer.Typer(help="Maintenance work orders: list them.", no_args_is_help=True, add_completion=False)


StateChoice = state_choices("StateChoice", model.STATES)


@maintenance_app.callback()
def _group() -> None:
    """Maintenance work orders: list them."""


@maintenance_app.command("list")
def list_orders(
    data_dir: DataDir = Path("./data"),
    database_url: DatabaseUrl = None,
    state: Annotated[StateChoice, typer.Option(help="A state; active: not closed or cancelled.")] = StateChoice.active,
    assignee: Annotated[Optional[str], typer.Option(help="Only this person's work orders.")] = None,
    breached: Annotated[bool, typer.Option("--breached", help="Only orders past an SLA deadline.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many, newest first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per line.")] = False,
) -> None:
    """Work orders, newest first: id, priority, state, team, who, time left, title."""
    settings = cli_settings(data_dir, database_url)
    now = utcnow()
    stmt = store.query(state=state.value, assignee=assignee, breached=True if breached else None)
    rows, teams = read_store(settings, "work orders", lambda engine: (
        store.page(engine, stmt, None, limit), {t["id"]: t["name"] for t in store.list_teams(engine)}))

    def line(row: dict) -> str:
        left = model.sla_view(row, now)["resolve_remaining_s"]
        due = "-" if left is None else (f"{left / 3600:.1f} h left" if left >= 0 else f"{-left / 3600:.1f} h late")
        return (f"{row['id']:>6}  {row['priority']:<2}{row['state']:<12} {(teams.get(row['team_id']) or '-')[:16]:<16} "
                f"{(row['assignee'] or '-')[:12]:<12} {due:<14} {row['title']}")

    print_rows(rows, as_json=as_json, empty=f"no work orders ({state.value})", line=line,
               header=f"{'ID':>6}  {'P':<2}{'STATE':<12} {'TEAM':<16} {'WHO':<12} {'DUE':<14} TITLE",
               to_json=lambda r: jsonable({**r, "team": teams.get(r["team_id"]), "sla": model.sla_view(r, now)}))
