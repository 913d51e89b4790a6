"""`camgrid vqd ...`: video quality diagnosis from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

vqd_app = typer.Typer(help="Video quality diagnosis: find black, frozen, blurred, covered, moved ... pictures.",
                      no_args_is_help=True)


def _thresholds(file: Path | None):
    from camgrid.ops.vqd.thresholds import Thresholds

    if file is None:
        return Thresholds()
    import yaml

    try:
        data = yaml.safe_load(file.read_text()) or {}
        return Thresholds.model_validate(data)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        typer.echo(f"error: thresholds {file}: {exc}", err=True)
        raise typer.Exit(2) from None


@vqd_app.command("diagnose")
def diagnose_cmd(
    source: Annotated[str, typer.Argument(help="Video file or stream URL (rtsp://, http://, ... anything FFmpeg reads).")],
    reference: Annotated[Optional[Path], typer.Option(help="The channel's reference picture (image or video file): enables scene_change and sharpens occlusion, blur and colour-loss judgement.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    seconds: Annotated[float, typer.Option(help="How much of the input to look at (from its start).", min=0.5)] = 12.0,
    ptz_at: Annotated[Optional[list[float]], typer.Option("--ptz-at", help="A PTZ command was sent this many seconds into the input (repeatable): judges ptz_unresponsive.")] = None,
    thresholds: Annotated[Optional[Path], typer.Option(help="YAML or JSON file of thresholds to override (see docs/vqd.md).")] = None,
    threads: Annotated[int, typer.Option(help="Decoder threads.", min=1, max=64)] = 1,
) -> None:
    """Diagnose a clip or stream and print its faults (exit 0 whether faults were found or not;
    2 when the input or the reference cannot be opened). Input that opens but holds no decodable
    video is reported as signal_loss."""
    from camgrid.ops.vqd.diagnose import diagnose
    from camgrid.ops.vqd.frames import SourceError, load_image, open_sample
    from camgrid.ops.vqd.reference import make_reference

    th = _thresholds(thresholds)
    ref = None
    try:
        if reference is not None:
            ref = make_reference([load_image(reference)])
        sample = open_sample(source, seconds=seconds, threads=threads)
    except SourceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    result = diagnose(sample, th, ref, ptz_at or ())
    out = result.to_dict()
    out["source"] = source
    if as_json:
        typer.echo(json.dumps(out, ensure_ascii=False))
        return
    res = f"{result.resolution[0]}x{result.resolution[1]}" if result.resolution else "unknown"
    typer.echo(f"{source}: {res}{' (HD)' if result.hd else ''}, {result.codec or 'no video'}, "
               f"{result.frames_analysed} frames over {result.duration_s:g} s")
    if not result.faults:
        typer.echo("normal: no fault found")
    for f in result.faults:
        extra = ", ".join(f"{k}={v}" for k, v in f.items() if k not in ("type", "score", "severity"))
        typer.echo(f"  {f['severity']:8} {f['type']:17} score {f['score']:.2f}{'  (' + extra + ')' if extra else ''}")
    for key, value in result.notes.items():
        typer.echo(f"note: {key}: {value}")
