"""`camgrid rates show` and `camgrid rates rollup` as an operator runs them (subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, time, timedelta

import pytest
from rates_helpers import D1, TZ, add_events, seed_registry

from camgrid.store.engine import open_store


def camgrid(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "camgrid", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def data_dir(tmp_path):
    engine = open_store(f"sqlite:///{tmp_path / 'camgrid.db'}")
    seed_registry(engine, d1_status="online", d2_status="offline")
    yesterday = datetime.now(TZ).date() - timedelta(days=1)
    add_events(engine, [(datetime.combine(yesterday, time(10), TZ), "device.online", D1, {})])
    engine.dispose()
    return tmp_path, yesterday


def test_rollup_stores_yesterday_and_show_reads_it(data_dir):
    path, yesterday = data_dir
    done = camgrid("rates", "rollup", "--data-dir", str(path))
    assert done.returncode == 0, done.stderr
    assert f"stored 1 day(s): {yesterday} .. {yesterday}" in done.stdout
    again = camgrid("rates", "rollup", "--data-dir", str(path))
    assert "every day before today was stored already" in again.stdout
    shown = camgrid("rates", "show", "--data-dir", str(path), "--from", str(yesterday), "--to", str(yesterday),
                    "--json")
    assert shown.returncode == 0, shown.stderr
    out = json.loads(shown.stdout)
    one = next(r for r in out["rows"] if r["key"] == "1")  # C1 online from 10:00, C3's device offline all day
    assert one["online_rate"] == pytest.approx(14 / 48, abs=1e-6) and one["meets"]["online_rate"] is False
    table = camgrid("rates", "show", "--data-dir", str(path), "--from", str(yesterday), "--to", str(yesterday),
                    "--by", "organisation")
    assert table.returncode == 0 and "below target" in table.stdout


def test_today_is_shown_before_any_rollup(data_dir):
    path, _ = data_dir
    shown = camgrid("rates", "show", "--data-dir", str(path), "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["total"]["channels"] == 3


@pytest.mark.parametrize("args, message", [
    (["--by", "colour"], "--by must be one of"),
    (["--from", "yesterday"], "--from must be a day as YYYY-MM-DD"),
    (["--from", "2026-12-09", "--to", "2026-12-01"], "--from is after --to"),
])
def test_bad_options_are_refused_with_a_reason(data_dir, args, message):
    path, _ = data_dir
    done = camgrid("rates", "show", "--data-dir", str(path), *args)
    assert done.returncode == 2 and message in done.stderr
