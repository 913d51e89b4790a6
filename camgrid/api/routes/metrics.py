"""GET /metrics: Prometheus text, from a CollectorRegistry owned by this app (never the global one).

Gauges come from the store (devices and channels online) and whatever the signaling side's
`collect()` reports: numbers become gauges (counters for known counters and *_total keys),
mappings become one series per key with a label.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from camgrid.api.routes.health import summarise
from camgrid.api.security import Principal, require
from camgrid.governance import roles

router = APIRouter(tags=["metrics"])

# key in collect() → (metric name, type, help, label for mappings)
KNOWN: dict[str, tuple[str, str, str, str]] = {
    "registered": ("camgrid_sip_registered_devices", "gauge", "Devices with a live SIP registration.", ""),
    "messages": ("camgrid_sip_messages", "counter", "MANSCDP messages received, by kind.", "kind"),
    "sip": ("camgrid_sip_stack_events", "counter", "SIP stack events: requests and responses by method or class, "
            "retransmissions, timeouts, parse errors.", "kind"),
    "registration_failures": ("camgrid_sip_registration_failures", "counter", "Refused registrations, by reason.",
                              "reason"),
    "bans_total": ("camgrid_sip_bans", "counter", "Temporary bans imposed after digest failures.", ""),
    "bans_active": ("camgrid_sip_bans_active", "gauge", "Bans in force now.", ""),
}
_SKIP = re.compile(r"(_at|_time|_timestamp)$")


def _name(key: str) -> str:
    return "camgrid_" + re.sub(r"[^a-zA-Z0-9_]", "_", key).strip("_").lower()


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    return float(value) if isinstance(value, int | float) else None


def source_families(data: dict[str, Any]) -> Iterator[Metric]:
    """Metric families for one collect() snapshot."""
    for key, value in sorted(data.items()):
        if _SKIP.search(key):
            continue
        if key in KNOWN:
            name, kind, help_text, label = KNOWN[key]
        else:
            counter = key.endswith("_total")
            name = _name(key[:-6] if counter else key)
            kind, help_text, label = ("counter" if counter else "gauge"), f"{key} as reported by signaling.", "kind"
        family_type = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
        if isinstance(value, dict):
            family = family_type(name, help_text, labels=[label or "kind"])
            for sub, sub_value in sorted(value.items()):
                number = _number(sub_value)
                if number is not None:
                    family.add_metric([str(sub)], number)
            yield family
        elif (number := _number(value)) is not None:
            yield family_type(name, help_text, value=number)


class PlatformCollector:
    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        s = summarise(self.ctx)
        yield GaugeMetricFamily("camgrid_devices_total", "Approved devices in the registry.", value=s["devices"]["total"])
        yield GaugeMetricFamily("camgrid_devices_online", "Devices online now.", value=s["devices"]["online"])
        yield GaugeMetricFamily("camgrid_devices_pending", "Devices waiting for approval.", value=s["devices"]["pending"])
        yield GaugeMetricFamily("camgrid_channels_total", "Channels in the registry.", value=s["channels"]["total"])
        yield GaugeMetricFamily("camgrid_channels_online", "Channels online (channel and its device online).",
                                value=s["channels"]["online"])
        by_class = GaugeMetricFamily("camgrid_channels_online_by_point_class",
                                     "Channels online, by point class.", labels=["point_class"])
        for point_class, entry in s["by_point_class"].items():
            by_class.add_metric([point_class], entry["online"])
        yield by_class
        if self.ctx.metrics is not None:
            yield from source_families(self.ctx.metrics.collect() or {})


def build_registry(ctx: Any) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PlatformCollector(ctx))  # type: ignore[arg-type]
    return registry


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}})
def metrics(request: Request, principal: Principal = require(roles.METRICS_READ)) -> Response:
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)
