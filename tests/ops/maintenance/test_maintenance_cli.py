"""`camgrid maintenance list` as an operator runs it (subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

from maintenance_helpers import raise_alarm

from camgrid.config import Settings
from camgrid.ops.maintenance import orders, store
from camgrid.store.engine import open_store


def camgrid(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "camgrid", *args], capture_output=True, text=True, timeout=120)


def test_list_shows_active_orders_with_team_and_time_left(tmp_path):
    engine = open_store(f"sqlite:///{tmp_path / 'camgrid.db'}")
    store.save_team(engine, "admin1", "north")
    now = datetime.now(UTC)
    alarm_id = raise_alarm(engine, "health.offline", now, priority=1)
    order = orders.open_for_alarm(engine, Settings(), alarm_id, "op1", now=now, team="north")
    engine.dispose()
    table = camgrid("maintenance", "list", "--data-dir", str(tmp_path))
    assert table.returncode == 0, table.stderr
    line = next(line for line in table.stdout.splitlines() if line.strip().startswith(str(order["id"])))
    assert "north" in line and "assigned" in line and "h left" in line
    lines = camgrid("maintenance", "list", "--data-dir", str(tmp_path), "--json").stdout.splitlines()
    item = json.loads(lines[0])
    assert item["team"] == "north" and item["alarm_id"] == alarm_id and item["sla"]["breached"] == []
    none = camgrid("maintenance", "list", "--data-dir", str(tmp_path), "--breached")
    assert none.returncode == 0 and "no work orders" in none.stderr
