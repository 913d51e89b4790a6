"""Assembling an answer that a device sends as several pages counted by SumNum."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

from camgrid.gb28181.manscdp.codec import ManscdpMessage


class PagedAssembler:
    """Pages of one answer (Catalog, RecordInfo, ...) → the full item list.

    Items are deduplicated by `key` (a later copy replaces an earlier one, keeping its
    position); items whose key is None are dropped and counted. Any SN is accepted, since
    devices answer with the query's SN or their own; `sns` records what arrived. The largest
    SumNum seen is expected, so a page with a smaller count never ends the answer early.
    """

    def __init__(self, device_id: str, sn: int, started_at: float) -> None:
        self.device_id = device_id
        self.sn = sn
        self.started_at = started_at
        self.last_page_at = started_at
        self.expected: int | None = None
        self.pages = 0
        self.sns: list[int] = []
        self.dropped = 0
        self._items: dict[Hashable, dict[str, str]] = {}

    def key(self, item: Mapping[str, str]) -> Hashable | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def feed(self, msg: ManscdpMessage, now: float) -> None:
        self.pages += 1
        self.last_page_at = now
        if msg.sn not in self.sns:
            self.sns.append(msg.sn)
        if msg.sum_num is not None and msg.sum_num >= 0:
            self.expected = msg.sum_num if self.expected is None else max(self.expected, msg.sum_num)
        for item in msg.items:
            key = self.key(item)
            if key is None:
                self.dropped += 1
                continue
            self._items[key] = dict(item)

    @property
    def received(self) -> int:
        return len(self._items)

    @property
    def complete(self) -> bool:
        return self.expected is not None and (self.expected == 0 or len(self._items) >= self.expected)

    def timed_out(self, now: float, page_timeout_s: float) -> bool:
        """True when the answer is incomplete and no page has arrived for page_timeout_s."""
        return not self.complete and now - self.last_page_at >= page_timeout_s

    def result(self) -> tuple[list[dict[str, str]], bool, int | None]:
        """(items, partial, expected SumNum or None if no page said)."""
        return list(self._items.values()), not self.complete, self.expected
