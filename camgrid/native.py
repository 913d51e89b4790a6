"""Loading an optional C extension (camgrid.media._native, camgrid.gb28181.sip._sipfast): the
module, or None and the reason it is not used.

CAMGRID_NATIVE=0 (or false/no/off) turns every one off for a process, e.g. to compare or to rule
them out. A module built from other source than this checkout (an install that was not rebuilt)
is refused by its API_VERSION rather than called for what it lacks.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

_OFF = ("0", "false", "no", "off")


def load(name: str, api_version: int) -> tuple[ModuleType | None, str]:
    setting = os.environ.get("CAMGRID_NATIVE", "").strip().lower()
    if setting in _OFF:
        return None, f"turned off (CAMGRID_NATIVE={setting})"
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        return None, f"not built ({exc}); reinstall with a C compiler and the Python headers to build it"
    built = getattr(module, "API_VERSION", None)
    if built != api_version:
        return None, f"built from other source (API {built}, expected {api_version}): rebuild it with `pip install -e .`"
    return module, f"loaded from {os.path.basename(getattr(module, '__file__', None) or name)}"
