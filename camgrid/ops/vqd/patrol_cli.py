"""`camgrid vqd patrol`: the running platform's patrol from this machine's command line. With
--once it starts a round now (or joins the one running), shows its progress and waits for it;
without, it shows where the patrol stands. It talks to the platform that runs on the data
directory through <data-dir>/run/control.json (written by `camgrid serve`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer

from camgrid.cli_common import DataDir, fail


def _control(data_dir: Path) -> tuple[str, dict[str, str]]:
    path = data_dir / "run" / "control.json"
    try:
        control = json.loads(path.read_text())
    except FileNotFoundError:
        raise fail(f"no running platform for {data_dir} ({path} is missing): start it with camgrid serve "
                   f"--data-dir {data_dir}") from None
    except (OSError, ValueError) as exc:
        raise fail(f"cannot read {path}: {exc}") from None
    return control["url"], {"X-Camgrid-Control": control["secret"]}


def _call(client: httpx.Client, method: str, url: str, headers: dict[str, str]) -> dict:
    try:
        response = client.request(method, url, headers=headers)
    except httpx.HTTPError as exc:
        raise fail(f"the platform does not answer at {url} ({exc}); is camgrid serve running?") from None
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        raise fail(f"the platform refused: {response.status_code} {message}")
    return response.json()


def _line(p: dict) -> str:
    return (f"round {p.get('round_id')}: {p.get('done', 0)}/{p.get('total', 0)} channels, {p.get('diagnosed', 0)} "
            f"diagnosed, {p.get('with_faults', 0)} with faults, {p.get('failed', 0)} without picture, "
            f"{p.get('skipped', 0)} skipped (device offline)")


def patrol_cmd(
    data_dir: DataDir = Path("./data"),
    once: Annotated[bool, typer.Option("--once", help="Run one round now (or join the running one) and wait for it.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
    timeout_s: Annotated[float, typer.Option("--timeout", help="Give up waiting after this many seconds.")] = 3600.0,
) -> None:
    """The video-quality patrol of the running platform: a round now (--once), or where it stands."""
    base, headers = _control(data_dir)
    with httpx.Client(timeout=30) as client:
        if not once:
            progress = _call(client, "GET", f"{base}/api/v1/local/vqd/patrol", headers)
            typer.echo(json.dumps(progress, ensure_ascii=False) if as_json else
                       (_line(progress) if progress.get("running") else f"no round running; last: {progress.get('last_round')}"))
            return
        started = _call(client, "POST", f"{base}/api/v1/local/vqd/patrol/run", headers)
        seq = started.get("seq") or 0
        if not started.get("started"):
            typer.echo("a round is running already; waiting for it", err=True)
        deadline = time.monotonic() + timeout_s
        shown = ""
        while True:
            progress = _call(client, "GET", f"{base}/api/v1/local/vqd/patrol", headers)
            last = progress.get("last_round") or {}
            if not progress.get("running") and (last.get("seq") or 0) >= seq:
                break
            line = _line(progress)
            if line != shown and not as_json:
                typer.echo(line, err=True)
                shown = line
            if time.monotonic() > deadline:
                raise fail(f"the round did not finish within {timeout_s:.0f} s; it goes on in the platform")
            time.sleep(0.5)
    if as_json:
        typer.echo(json.dumps(last, ensure_ascii=False))
    else:
        typer.echo("done: " + _line(last))
