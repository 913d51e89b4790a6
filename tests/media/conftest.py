"""Fixtures shared by the playback and export tests: real recorded segments."""

from __future__ import annotations

import pytest
from recording_helpers import record_runs

from camgrid.sim.video import synthetic_footage


@pytest.fixture(scope="module")
def recorded_footage():
    return synthetic_footage("h264", 160, 120, 25, 4, gop_s=1.0)


@pytest.fixture
async def recorded(tmp_path, recorded_footage):
    """Two recordings of the 4 s footage (2 s segments), the second starting 10 s after the first ends."""
    engine, root = await record_runs(tmp_path, recorded_footage)
    yield engine, root
    engine.dispose()
