"""Catalog SUBSCRIBE dialogs: subscribe after registration, refresh before expiry, end on unregister.

The NOTIFYs that a subscription brings (ON, OFF, VLOST, DEFECT, ADD, DEL, UPDATE) arrive as
ordinary requests and are handled by the server; this module only keeps the dialogs alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from camgrid.gb28181 import manscdp
from camgrid.gb28181.sip.headers import new_call_id, new_tag
from camgrid.gb28181.sip.stack import SipStack, TransactionTimeout, TransportUnavailable, tag_of
from camgrid.signaling.errors import CommandError
from camgrid.signaling.registrations import RegistrationTable

log = logging.getLogger(__name__)
MANSCDP_TYPE = "Application/MANSCDP+xml"
REFRESH_AT = 0.8  # of the granted duration


@dataclass(slots=True)
class CatalogSubscription:
    device_id: str
    call_id: str
    from_tag: str
    to_tag: str | None
    cseq: int
    expires: int
    task: asyncio.Task | None = None


class SubscriptionManager:
    def __init__(self, stack: SipStack, registrations: RegistrationTable, *, platform_id: str, expires_s: int,
                 next_sn: Callable[[], int], charset_of: Callable[[str], str] = lambda _device_id: "GB18030") -> None:
        self.stack = stack
        self.registrations = registrations
        self.platform_id = platform_id
        self.realm = platform_id[:10]
        self.expires_s = expires_s
        self.next_sn = next_sn
        self.charset_of = charset_of
        self.active: dict[str, CatalogSubscription] = {}

    async def subscribe(self, device_id: str) -> CatalogSubscription:
        sub = self.active.get(device_id)
        if sub is None:
            sub = CatalogSubscription(device_id, new_call_id(self.realm), new_tag(), None, 0, self.expires_s)
        granted = await self._send(sub, self.expires_s)
        sub.expires = granted
        self.active[device_id] = sub
        if sub.task is None or sub.task.done():
            sub.task = asyncio.get_running_loop().create_task(self._refresh_loop(sub))
        return sub

    async def _send(self, sub: CatalogSubscription, expires: int) -> int:
        peer = self.registrations.peer_of(sub.device_id)
        if peer is None:
            raise CommandError(409, f"device {sub.device_id} is not registered")
        sub.cseq += 1
        host = self.stack.local_host(peer)
        req = self.stack.new_request(
            "SUBSCRIBE", f"sip:{sub.device_id}@{peer.host}:{peer.port}",
            from_uri=f"sip:{self.platform_id}@{self.realm}", to_uri=f"sip:{sub.device_id}@{self.realm}", peer=peer,
            call_id=sub.call_id, from_tag=sub.from_tag, to_tag=sub.to_tag, cseq=sub.cseq,
            contact=f"<sip:{self.platform_id}@{host}:{self.stack.local_port(peer)}>",
            headers=[("Event", "Catalog"), ("Expires", str(expires))],
            body=manscdp.catalog_subscribe_query(sub.device_id, self.next_sn(), charset=self.charset_of(sub.device_id)),
            content_type=MANSCDP_TYPE,
        )
        try:
            resp = await self.stack.request(req, peer)
        except (TransactionTimeout, TransportUnavailable) as exc:
            raise CommandError(504, f"device {sub.device_id} did not answer the catalog SUBSCRIBE: {exc}") from None
        if (resp.status or 0) >= 300:
            raise CommandError(502, f"device {sub.device_id} refused the catalog SUBSCRIBE: {resp.status} {resp.reason}")
        sub.to_tag = tag_of(resp.get("To")) or sub.to_tag
        try:
            return int(resp.get("Expires") or expires)
        except ValueError:
            return expires

    async def _refresh_loop(self, sub: CatalogSubscription) -> None:
        while True:
            await asyncio.sleep(max(5.0, sub.expires * REFRESH_AT))
            try:
                sub.expires = await self._send(sub, self.expires_s)
            except CommandError as exc:
                log.info("catalog subscription of %s lapsed: %s", sub.device_id, exc.message)
                self.active.pop(sub.device_id, None)
                return

    async def unsubscribe(self, device_id: str, *, tell_device: bool = True) -> None:
        sub = self.active.pop(device_id, None)
        if sub is None:
            return
        if sub.task is not None:
            sub.task.cancel()
        if tell_device:
            with contextlib.suppress(CommandError):
                await self._send(sub, 0)

    async def stop(self) -> None:
        for device_id in list(self.active):
            await self.unsubscribe(device_id, tell_device=False)
