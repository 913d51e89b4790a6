"""MemoryBus delivers each event to the subscribers whose prefix its kind has, also when the
routes are kept per kind: a subscription made later still gets the kinds already routed."""

from __future__ import annotations

from camgrid.bus import Event, MemoryBus


async def test_events_reach_matching_subscribers_in_order_and_later_subscriptions_too():
    bus = MemoryBus()
    seen: list[tuple[str, str]] = []
    queued: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError("a broken subscriber")

    async def on_device(event: Event) -> None:
        queued.append(event.kind)

    bus.subscribe_inline("", lambda e: seen.append(("all", e.kind)))
    bus.subscribe_inline("device.", broken)
    bus.subscribe_inline("device.on", lambda e: seen.append(("online", e.kind)))
    bus.subscribe("device.", on_device)
    await bus.start()
    for kind in ("device.online", "sip.ban", "device.online", "device.offline"):
        bus.publish(Event(kind, "34020000001320000001"))
    bus.subscribe_inline("sip.", lambda e: seen.append(("sip", e.kind)))  # after both kinds were routed
    bus.subscribe_inline("device.online", lambda e: seen.append(("late", e.kind)))
    bus.publish(Event("sip.ban", "x"))
    bus.publish(Event("device.online", "x"))
    await bus.drain()
    await bus.stop()
    assert seen == [("all", "device.online"), ("online", "device.online"), ("all", "sip.ban"),
                    ("all", "device.online"), ("online", "device.online"), ("all", "device.offline"),
                    ("all", "sip.ban"), ("sip", "sip.ban"),
                    ("all", "device.online"), ("online", "device.online"), ("late", "device.online")]
    assert bus.inline_errors == 4  # the broken one ran for each device event, and the others still did
    assert queued == ["device.online", "device.online", "device.offline", "device.online"]
