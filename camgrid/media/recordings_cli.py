"""`camgrid record list` and `camgrid export`: recorded footage from the command line, read
straight from a data directory's index and recordings (the platform need not be running).

    camgrid record list --data-dir DIR --channel ID [--from T1] [--to T2] [--json]
    camgrid export --data-dir DIR --channel ID --from T1 --to T2 --out DIR --reason TEXT
    camgrid export verify DIR [--data-dir DIR]
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Optional

import typer

from camgrid.cli_common import DatabaseUrl, DataDir, cli_settings, cli_store, fail
from camgrid.governance.audit import audit
from camgrid.media.recordings_query import segments_between, timeline

record_app = typer.Typer(help="Recorded footage: list what is on disk.", no_args_is_help=True, add_completion=False)
export_app = typer.Typer(help="Export footage as MP4 with a signed manifest; check a bundle.", add_completion=False,
                         invoke_without_command=True)
FAR_PAST = datetime(1970, 1, 2, tzinfo=UTC)


def _time(value: str | None, name: str) -> datetime | None:
    """ISO 8601; a time without a zone is taken as UTC (and said so)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise fail(f"{name} must be an ISO 8601 time such as 2026-12-01T08:00:00+08:00, not {value!r}", 2) from None
    if parsed.tzinfo is None:
        typer.echo(f"note: {name} {value} has no zone; taken as UTC", err=True)
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


@record_app.callback()
def _record_group() -> None:
    """Recorded footage: list what is on disk."""


@record_app.command("list")
def record_list(
    data_dir: DataDir = Path("./data"),
    database_url: DatabaseUrl = None,
    channel: Annotated[str, typer.Option("--channel", help="The channel's 20-digit ID.")] = ...,
    start: Annotated[Optional[str], typer.Option("--from", help="ISO 8601; default: everything kept.")] = None,
    end: Annotated[Optional[str], typer.Option("--to", help="ISO 8601; default: now.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array of the segments.")] = False,
) -> None:
    """The channel's recorded segments in time order, and the spans and gaps they make."""
    settings = cli_settings(data_dir, database_url)
    first = _time(start, "--from") or FAR_PAST
    last = _time(end, "--to") or datetime.now(UTC) + timedelta(minutes=1)
    if last <= first:
        raise fail("--to must be after --from", 2)
    with cli_store(settings) as engine:
        rows = segments_between(engine, channel, first, last)
    items = [{"id": r["id"], "channel_id": r["channel_id"], "device_id": r["device_id"],
              "start": r["start_at"].isoformat(), "end": r["end_at"].isoformat(),
              "duration_s": round((r["end_at"] - r["start_at"]).total_seconds(), 3), "bytes": r["bytes"],
              "codec": r["codec"], "audio_codec": r["audio_codec"], "width": r["width"], "height": r["height"],
              "state": r["state"],
              "node_id": r["node_id"], "path": str(settings.recordings_dir / r["path"])} for r in rows]
    if as_json:
        typer.echo(json.dumps(items, ensure_ascii=False, indent=2))
        return
    if not items:
        typer.echo(f"nothing of channel {channel} is recorded in that range", err=True)
        return
    for item in items:
        typer.echo(f"{item['start']}  {item['end']}  {item['duration_s']:>8.1f} s  {item['bytes']:>12} B  "
                   f"{item['codec']}{'+' + item['audio_codec'] if item['audio_codec'] else ''} "
                   f"{item['width']}x{item['height']}  {item['state']}")
    spans = timeline(rows, max(first, rows[0]["start_at"]), min(last, rows[-1]["end_at"]))
    typer.echo(f"{len(items)} segments, {len(spans['spans'])} continuous spans, {len(spans['gaps'])} gaps, "
               f"{spans['covered_s'] / 3600:.2f} h recorded")


@export_app.callback()
def export(
    ctx: typer.Context,
    data_dir: DataDir = Path("./data"),
    database_url: DatabaseUrl = None,
    channel: Annotated[Optional[str], typer.Option("--channel", help="The channel's 20-digit ID.")] = None,
    start: Annotated[Optional[str], typer.Option("--from", help="Start, ISO 8601 (e.g. 2026-12-01T08:00:00+08:00).")] = None,
    end: Annotated[Optional[str], typer.Option("--to", help="End, ISO 8601.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="The bundle directory to create (must not exist).")] = None,
    reason: Annotated[Optional[str], typer.Option("--reason", help="Why the footage is exported (kept in the manifest and the audit log).")] = None,
) -> None:
    """Export a time range of a channel's footage as MP4 files with a manifest (who, why, the
    SHA-256 of every file, the wall-clock timeline) signed with the platform's export key; or
    `camgrid export verify DIR` to check a bundle."""
    if ctx.invoked_subcommand is not None:
        return
    missing = [name for name, value in (("--channel", channel), ("--from", start), ("--to", end), ("--out", out),
                                        ("--reason", reason)) if not value]
    if missing:
        typer.echo(ctx.get_help())
        raise fail(f"missing {', '.join(missing)}", 2)
    first, last = _time(start, "--from"), _time(end, "--to")
    if last <= first:
        raise fail("--to must be after --from", 2)
    if out.exists():
        raise fail(f"{out} exists already; give a new directory for the bundle", 2)
    from camgrid.media.export import ExportError, load_or_create_key, write_bundle

    settings = cli_settings(data_dir, database_url)
    actor = f"cli:{getpass.getuser()}"
    shown = -1

    def progress(fraction: float) -> None:
        nonlocal shown
        percent = int(fraction * 100)
        if percent // 10 != shown // 10:
            shown = percent
            print(f"exporting: {percent} %", file=sys.stderr, flush=True)

    with cli_store(settings) as engine:
        key = load_or_create_key(settings.export_key_file)
        try:
            manifest = asyncio.run(write_bundle(
                engine, settings.recordings_dir, out, channel_id=channel, start=first, end=last, exported_by=actor,
                reason=reason, export_id=uuid.uuid4().hex[:16], key=key, progress=progress))
        except ExportError as exc:
            _remove_empty(out)
            raise fail(str(exc), 1) from None
        audit(engine, actor, "video.export", channel, {"from": first.isoformat(), "to": last.isoformat(),
                                                       "reason": reason, "out": str(out.resolve()),
                                                       "files": [f["name"] for f in manifest["files"]]})
    for f in manifest["files"]:
        typer.echo(f"{out / f['name']}  {f['bytes']} B  sha256 {f['sha256']}")
    if manifest["missing_segments"]:
        typer.echo(f"note: {len(manifest['missing_segments'])} indexed segment(s) could not be read and are listed "
                   "in the manifest", err=True)
    typer.echo(f"{out / 'manifest.json'}  (check it with: camgrid export verify {out})")


def _remove_empty(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


@export_app.command("verify")
def export_verify(
    directory: Annotated[Path, typer.Argument(help="The bundle directory (with manifest.json).")],
    data_dir: DataDir = Path("./data"),
    key_file: Annotated[Optional[Path], typer.Option(help="Export key; default <data-dir>/keys/export.key.")] = None,
) -> None:
    """Check every file of an export bundle against its manifest, and the manifest's signature.
    Exit status 0: intact; 1: something was altered (each named); 2: the bundle cannot be read."""
    from camgrid.media.export import verify_bundle

    if not directory.is_dir():
        typer.echo(f"error: {directory} is not a directory", err=True)
        raise typer.Exit(2)
    path = key_file or data_dir / "keys" / "export.key"
    key = path.read_bytes() if path.is_file() else None
    problems = verify_bundle(directory, key)
    if key is None:
        typer.echo(f"note: no export key at {path}: the files are checked against the manifest, the manifest's signature is not")
    for line in problems:
        typer.echo(f"ALTERED  {line}")
    if problems:
        raise typer.Exit(1)
    typer.echo(f"intact: every file matches the manifest{'' if key is None else ' and the signature is valid'}")
