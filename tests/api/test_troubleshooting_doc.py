"""docs/troubleshooting.md names settings, metrics, events and refusal reasons for the operator
on call: each must still exist, or the guide sends them after something that is not there."""

from __future__ import annotations

import re
from pathlib import Path

from camgrid.api.routes.metrics import KNOWN
from camgrid.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8")
SOURCE = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "camgrid").rglob("*.py"))
METRICS_ROUTE = (ROOT / "camgrid" / "api" / "routes" / "metrics.py").read_text(encoding="utf-8")
SECTIONS = set(Settings.model_fields)


FIELDS = {f"{section}.{name}" for section in SECTIONS
          for name in getattr(Settings.model_fields[section].annotation, "model_fields", {})}


def _dotted() -> set[str]:
    """`section.name` in backticks (a setting, or an event or alarm kind), without a value after it."""
    return {q.split(":")[0] for q in re.findall(r"`([^`]+)`", DOC) if re.fullmatch(r"[a-z_]+\.[a-z_]+(: \S+)?", q)}


def _raised(kind: str) -> bool:
    return f'"{kind}"' in SOURCE or f'"{kind}|' in SOURCE


def test_every_setting_named_exists():
    named = {n for n in _dotted() if n.split(".")[0] in SECTIONS}
    settings = named & FIELDS
    assert len(settings) > 15
    assert sorted(n for n in named - FIELDS if not _raised(n)) == []  # neither a setting nor a kind


def test_every_metric_named_is_exported():
    names = set(re.findall(r"\bcamgrid_[a-z_]+", DOC))
    assert len(names) > 10
    known = {name for name, *_ in KNOWN.values()} | set(re.findall(r'"(camgrid_[a-z_]+)"', METRICS_ROUTE))
    for name in sorted(names):
        base = name.removesuffix("_total")
        key = base.removeprefix("camgrid_")
        # a counter's collect() key ends in _total; a gauge's is its name without the prefix
        exported = base in known or re.search(rf'["\s(]({re.escape(key)}(_total)?)["=:]', SOURCE)
        assert exported, f"{name} is not exported by /metrics"


def test_every_event_and_alarm_kind_named_is_raised():
    kinds = {n for n in _dotted() - FIELDS if n.split(".")[0] in ("device", "sip", "media", "recording", "health")}
    assert {"sip.ban", "media.stream_timeout", "recording.low_space", "health.flapping"} <= kinds
    assert sorted(k for k in kinds if not _raised(k)) == []


def test_every_refusal_reason_named_is_counted():
    registrar = (ROOT / "camgrid" / "signaling" / "registrar.py").read_text(encoding="utf-8")
    reasons = set(re.findall(r"^\| [^|]+ \| `([a-z_]+)` \|", DOC, flags=re.M))
    assert {"bad_credentials", "banned", "unknown", "pending", "overload", "replayed"} <= reasons
    assert sorted(r for r in reasons if f'"{r}"' not in registrar) == []
