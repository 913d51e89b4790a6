"""Event bus: facts the platform publishes ("device went offline"). See memory.py."""

from camgrid.bus.memory import Event, EventBus, MemoryBus

__all__ = ["Event", "EventBus", "MemoryBus"]
