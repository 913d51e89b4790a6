"""SUBSCRIBE dialogs to devices — the catalog (`Event: Catalog`) and alarms (`Event: presence`
with a Query/Alarm body) —: subscribe after registration, refresh before expiry, end on unregister.

The first SUBSCRIBE creates a dialog (camgrid.gb28181.sip.dialog, RFC 3261 s.12 / RFC 6665);
refreshes and the final Expires: 0 are sent inside it (the device's Contact as Request-URI,
its Record-Route set, our CSeq). A device that lost the dialog (481 to a refresh, e.g. after it
rebooted) gets a fresh subscription. The NOTIFYs that a subscription brings (catalog events ON,
OFF, VLOST, DEFECT, ADD, DEL, UPDATE; Notify/Alarm) are handled by the server, which passes them
to `on_notify` so the dialog follows the device's CSeq and target refreshes; devices that send
their NOTIFYs outside the dialog (many do) are accepted all the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from camgrid.gb28181 import manscdp
from camgrid.gb28181.sip.dialog import Dialog, DialogError
from camgrid.gb28181.sip.headers import new_call_id, new_tag
from camgrid.gb28181.sip.stack import SipStack, TransactionTimeout, TransportUnavailable
from camgrid.signaling.errors import CommandError
from camgrid.signaling.registrations import RegistrationTable

log = logging.getLogger(__name__)
MANSCDP_TYPE = "Application/MANSCDP+xml"
REFRESH_AT = 0.8  # of the granted duration
CATALOG, ALARM = "Catalog", "presence"  # the Event header of each kind
_WHAT = {CATALOG: "catalog", ALARM: "alarm"}


@dataclass(slots=True)
class Subscription:
    device_id: str
    expires: int
    event: str = CATALOG
    dialog: Dialog | None = None
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
        self.active: dict[str, Subscription] = {}  # catalog subscriptions by device
        self.alarms: dict[str, Subscription] = {}  # alarm subscriptions by device

    def _table(self, event: str) -> dict[str, Subscription]:
        return self.active if event == CATALOG else self.alarms

    async def subscribe(self, device_id: str, event: str = CATALOG) -> Subscription:
        table = self._table(event)
        sub = table.get(device_id)
        if sub is None:
            sub = Subscription(device_id, self.expires_s, event)
        granted = await self._send(sub, self.expires_s)
        sub.expires = granted
        table[device_id] = sub
        if sub.task is None or sub.task.done():
            sub.task = asyncio.get_running_loop().create_task(self._refresh_loop(sub))
        return sub

    def _body(self, sub: Subscription) -> bytes:
        charset = self.charset_of(sub.device_id)
        if sub.event == ALARM:
            return manscdp.alarm_subscribe_query(sub.device_id, self.next_sn(), charset=charset)
        return manscdp.catalog_subscribe_query(sub.device_id, self.next_sn(), charset=charset)

    async def _send(self, sub: Subscription, expires: int) -> int:
        peer = self.registrations.peer_of(sub.device_id)
        if peer is None:
            raise CommandError(409, f"device {sub.device_id} is not registered")
        host, port = self.stack.local_host(peer), self.stack.local_port(peer)
        contact = f"<sip:{self.platform_id}@{host}:{port}>"
        headers = [("Event", sub.event), ("Expires", str(expires))]
        body = self._body(sub)
        if sub.dialog is not None and sub.dialog.state != "terminated":
            req = sub.dialog.request("SUBSCRIBE", via_host=host, via_port=port,
                                     transport="TCP" if peer.transport == "tcp" else "UDP", contact=contact,
                                     headers=headers, body=body, content_type=MANSCDP_TYPE, user_agent=self.stack.user_agent)
        else:
            sub.dialog = None
            req = self.stack.new_request(
                "SUBSCRIBE", f"sip:{sub.device_id}@{peer.host}:{peer.port}",
                from_uri=f"sip:{self.platform_id}@{self.realm}", to_uri=f"sip:{sub.device_id}@{self.realm}", peer=peer,
                call_id=new_call_id(self.realm), from_tag=new_tag(), contact=contact, headers=headers, body=body,
                content_type=MANSCDP_TYPE)
        try:
            resp = await self.stack.request(req, peer)
        except (TransactionTimeout, TransportUnavailable) as exc:
            raise CommandError(504, f"device {sub.device_id} did not answer the {_WHAT[sub.event]} SUBSCRIBE: {exc}") from None
        status = resp.status or 0
        if sub.dialog is not None:
            sub.dialog.receive_response(resp)
        if status >= 300:
            raise CommandError(status if status == 481 else 502,
                               f"device {sub.device_id} refused the {_WHAT[sub.event]} SUBSCRIBE: {resp.status} {resp.reason}")
        if sub.dialog is None and expires:
            sub.dialog = self._dialog_from(req, resp)
        try:
            return int(resp.get("Expires") or expires)
        except ValueError:
            return expires

    def _dialog_from(self, req, resp) -> Dialog | None:  # noqa: ANN001
        try:
            return Dialog.from_uac(req, resp, contactless_to_request_uri=True)
        except DialogError as exc:
            log.info("subscription %s: no dialog (%s); refreshes start new ones", resp.call_id, exc)
            return None

    def on_notify(self, device_id: str, req) -> None:  # noqa: ANN001
        """A NOTIFY from the device: if it is in one of our dialogs, the dialog takes in its CSeq and Contact."""
        for sub in (self.active.get(device_id), self.alarms.get(device_id)):
            if sub is not None and sub.dialog is not None and sub.dialog.call_id == req.call_id:
                with contextlib.suppress(DialogError):
                    sub.dialog.receive_request(req)
                return

    async def _refresh_loop(self, sub: Subscription) -> None:
        while True:
            await asyncio.sleep(max(5.0, sub.expires * REFRESH_AT))
            try:
                sub.expires = await self._send(sub, self.expires_s)
            except CommandError as exc:
                if exc.status == 481:
                    with contextlib.suppress(CommandError):  # the device lost the dialog: subscribe afresh
                        sub.expires = await self._send(sub, self.expires_s)
                        continue
                log.info("%s subscription of %s lapsed: %s", _WHAT[sub.event], sub.device_id, exc.message)
                self._table(sub.event).pop(sub.device_id, None)
                return

    async def unsubscribe(self, device_id: str, *, tell_device: bool = True) -> None:
        """End the device's subscriptions (both kinds)."""
        for table in (self.active, self.alarms):
            sub = table.pop(device_id, None)
            if sub is None:
                continue
            if sub.task is not None:
                sub.task.cancel()
            if tell_device:
                with contextlib.suppress(CommandError):
                    await self._send(sub, 0)

    async def stop(self) -> None:
        for device_id in {*self.active, *self.alarms}:
            await self.unsubscribe(device_id, tell_device=False)
