"""`camgrid rates ...`: the online, intactness and HD rates from the command line, read from the
database (today so far and days not yet closed are rebuilt from the recorded events)."""

from __future__ import annotations

import json
import time
from datetime import date, datetime
from typing import Annotated, Optional
from zoneinfo import ZoneInfo

import typer

from camgrid.cli_common import DatabaseUrl, DataDir, cli_settings, cli_store, fail
from camgrid.ops.rates import query
from camgrid.ops.rates.days import rebuild
from camgrid.ops.rates.figures import group_sums

rates_app = typer.Typer(help="Online, intactness and HD rates per local day.", no_args_is_help=True,
                        add_completion=False)


def _day(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{name} must be a day as YYYY-MM-DD, not {value!r}", 2) from None


def _pct(value: float | None) -> str:
    return "     -" if value is None else f"{value * 100:6.2f}%"


@rates_app.command("show")
def show(
    data_dir: DataDir,
    database_url: DatabaseUrl = None,
    by: Annotated[str, typer.Option(help="point_class | organisation | manufacturer | device_type")] = "point_class",
    first: Annotated[Optional[str], typer.Option("--from", help="First local day, YYYY-MM-DD (default: --to).")] = None,
    last: Annotated[Optional[str], typer.Option("--to", help="Last local day, YYYY-MM-DD (default: today).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Rates per group over local days, against their targets."""
    if by not in query.BY:
        raise fail(f"--by must be one of {', '.join(query.BY)}", 2)
    settings = cli_settings(data_dir, database_url)
    tz = ZoneInfo(settings.rates.timezone)
    last_day = _day(last, "--to") or datetime.now(tz).date()
    first_day = _day(first, "--from") or last_day
    if first_day > last_day:
        raise fail("--from is after --to", 2)
    hd = settings.rates.hd_min_height
    with cli_store(settings) as engine:
        live = query.Live()

        def closed(day: date, ledger) -> None:  # noqa: ANN001 - days the platform has not stored yet
            live.unwritten[day] = group_sums(ledger.infos, ledger.totals(), ledger.height, hd)
        now = time.time()
        ledger = rebuild(engine, tz, now, backfill_days=settings.rates.backfill_days, hd_min_height=hd, write=False,
                         on_closed=closed)
        live.today = datetime.fromtimestamp(ledger.start, tz).date()
        live.today_rows = group_sums(ledger.infos, ledger.totals(now), ledger.height, hd)
        out = query.by_group(engine, by, first_day, last_day, live)
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    typer.echo(f"{out['from']} .. {out['to']} ({out['days']} days, {settings.rates.timezone}), by {by}")
    typer.echo(f"{'group':32} {'channels':>8} {'online':>8} {'target':>7} {'intact':>8} {'HD':>8}")
    for row in [*out["rows"], {"name": "all", **out["total"]}]:
        target = row["targets"]["online_rate"]
        mark = "" if row["meets"]["online_rate"] in (None, True) else "  below target"
        typer.echo(f"{str(row.get('name') or row.get('key') or '-')[:32]:32} {row['channels']:8d} "
                   f"{_pct(row['online_rate'])} {(_pct(target) if target else '      -'):>7} "
                   f"{_pct(row['intactness_rate'])} {_pct(row['hd_rate'])}{mark}")


@rates_app.command("rollup")
def rollup(data_dir: DataDir, database_url: DatabaseUrl = None) -> None:
    """Close and store the days not yet stored (what `camgrid serve` does at each local midnight)."""
    settings = cli_settings(data_dir, database_url)
    tz = ZoneInfo(settings.rates.timezone)
    closed: list[date] = []
    with cli_store(settings) as engine:
        rebuild(engine, tz, time.time(), backfill_days=settings.rates.backfill_days,
                hd_min_height=settings.rates.hd_min_height, on_closed=lambda day, _: closed.append(day))
    typer.echo(f"stored {len(closed)} day(s)" + (f": {closed[0]} .. {closed[-1]}" if closed else
                                                  " (every day before today was stored already)"))

