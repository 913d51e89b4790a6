"""SIP dialogs (RFC 3261 section 12): the state two ends share after INVITE or SUBSCRIBE.

Pure: no I/O. A dialog is made from the request and the response that created it, on either
side; it builds the requests sent inside it (BYE, INFO, ACK for a 2xx, re-INVITE, NOTIFY) with
the right Request-URI, Route set, tags and CSeq, and checks the requests that arrive in it
(CSeq order, target refresh). `DialogTable` finds the dialog of an incoming request.

Media sessions (Play, Playback, Download INVITEs) and cascading to upper platforms stand on this.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from camgrid.gb28181.sip.headers import NameAddr, SipUri, new_branch
from camgrid.gb28181.sip.message import SipError, SipMessage, SipParseError

# Requests that replace the peer's remote target with their Contact (RFC 3261 12.2.2, RFC 3311, RFC 6665).
TARGET_REFRESH = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY"})


class DialogError(SipError):
    """A message that cannot create or belong to a dialog; `status` is the answer to give."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _contact_uri(msg: SipMessage) -> str | None:
    contact = msg.get("Contact")
    if not contact:
        return None
    try:
        return str(NameAddr.parse(contact).uri)
    except SipError:
        raise DialogError(f"unreadable Contact: {contact[:80]!r}") from None


def _name_addr(value: str | None, what: str) -> NameAddr:
    try:
        return NameAddr.parse(value or "")
    except SipError:
        raise DialogError(f"unreadable {what}: {(value or '')[:80]!r}") from None


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # our From in requests we send
    remote_uri: str  # our To in requests we send
    remote_target: str  # where requests in the dialog go: the peer's Contact
    local_cseq: int
    remote_cseq: int | None = None
    route_set: list[str] = field(default_factory=list)
    state: str = "confirmed"  # early | confirmed | terminated
    invite_cseq: int | None = None  # the CSeq of the INVITE that an ACK for its 2xx repeats

    @property
    def key(self) -> tuple[str, str, str]:
        return self.call_id, self.local_tag, self.remote_tag

    # -- creation ---------------------------------------------------------------------------------
    @classmethod
    def from_uac(cls, request: SipMessage, response: SipMessage, *, contactless_to_request_uri: bool = False) -> Dialog:
        """We sent `request` and `response` (101-299 with a To tag) answered it (RFC 3261 12.1.2).
        A response without Contact is refused, unless `contactless_to_request_uri`: many GB
        devices leave it out, and requests in the dialog then go where the first one went."""
        status = response.status or 0
        if not 101 <= status <= 299:
            raise DialogError(f"a {status} response does not create a dialog")
        to = _name_addr(response.get("To"), "To")
        if not to.tag:
            raise DialogError("the response has no To tag")
        local = _name_addr(request.get("From"), "From")
        target = _contact_uri(response)
        if target is None and contactless_to_request_uri:
            target = request.uri
        if target is None:
            raise DialogError("the response has no Contact")
        cseq = request.cseq[0]
        return cls(
            call_id=request.call_id, local_tag=local.tag or "", remote_tag=to.tag, local_uri=str(local.uri),
            remote_uri=str(to.uri), remote_target=target, local_cseq=cseq,
            route_set=list(reversed(response.get_all("Record-Route"))),
            state="confirmed" if status >= 200 else "early",
            invite_cseq=cseq if request.method == "INVITE" else None,
        )

    @classmethod
    def from_uas(cls, request: SipMessage, local_tag: str, *, local_cseq: int = 0) -> Dialog:
        """We answer `request` with a 2xx (or 101-199) carrying To tag `local_tag` (RFC 3261 12.1.1)."""
        remote = _name_addr(request.get("From"), "From")
        if not remote.tag:
            raise DialogError("the request has no From tag")
        local = _name_addr(request.get("To"), "To")
        target = _contact_uri(request)
        if target is None:
            raise DialogError("the request has no Contact")
        return cls(
            call_id=request.call_id, local_tag=local_tag, remote_tag=remote.tag, local_uri=str(local.uri),
            remote_uri=str(remote.uri), remote_target=target, local_cseq=local_cseq,
            remote_cseq=request.cseq[0], route_set=list(request.get_all("Record-Route")),
        )

    # -- requests we send -------------------------------------------------------------------------
    def request(self, method: str, *, via_host: str, via_port: int, transport: str = "UDP",
                contact: str | None = None, headers: Iterable[tuple[str, str]] = (), body: bytes = b"",
                content_type: str | None = None, user_agent: str | None = None) -> SipMessage:
        """A request inside the dialog (RFC 3261 12.2.1.1). ACK repeats the INVITE's CSeq number
        and is for a 2xx only (the transaction layer ACKs failures); everything else takes the
        next CSeq. CANCEL is not a dialog request."""
        if self.state == "terminated":
            raise DialogError("the dialog has ended")
        if method == "CANCEL":
            raise DialogError("CANCEL belongs to the INVITE transaction, not to the dialog")
        if method == "ACK":
            if self.invite_cseq is None:
                raise DialogError("no INVITE to acknowledge in this dialog")
            cseq = self.invite_cseq
        else:
            self.local_cseq += 1
            cseq = self.local_cseq
            if method == "INVITE":
                self.invite_cseq = cseq
        uri, routes = self._uri_and_routes()
        msg = SipMessage(method=method, uri=uri)
        msg.add("Via", f"SIP/2.0/{transport.upper()} {via_host}:{via_port};rport;branch={new_branch()}")
        for route in routes:
            msg.add("Route", route)
        msg.add("From", f"<{self.local_uri}>;tag={self.local_tag}")
        msg.add("To", f"<{self.remote_uri}>;tag={self.remote_tag}")
        msg.add("Call-ID", self.call_id)
        msg.add("CSeq", f"{cseq} {method}")
        msg.add("Max-Forwards", "70")
        if contact:
            msg.add("Contact", contact)
        if user_agent:
            msg.add("User-Agent", user_agent)
        for name, value in headers:
            msg.add(name, value)
        if content_type:
            msg.add("Content-Type", content_type)
        msg.body = body
        if method == "BYE":
            self.state = "terminated"
        return msg

    def _uri_and_routes(self) -> tuple[str, list[str]]:
        if not self.route_set:
            return self.remote_target, []
        first = _name_addr(self.route_set[0], "Route")
        if "lr" in first.uri.params:  # loose routing: the target stays the Request-URI
            return self.remote_target, list(self.route_set)
        # Strict routing (RFC 3261 12.2.1.1): the first route becomes the Request-URI, the remote
        # target goes last in the Route set.
        return str(SipUri(first.uri.scheme, first.uri.user, first.uri.host, first.uri.port)), [
            *self.route_set[1:], f"<{self.remote_target}>"]

    # -- messages we receive ----------------------------------------------------------------------
    def receive_request(self, request: SipMessage) -> None:
        """Check a request that arrived in this dialog and take in its changes (RFC 3261 12.2.2).
        Raises DialogError with status 500 for a CSeq lower than the last one."""
        number, method = request.cseq
        if method != "ACK":  # an ACK carries the INVITE's number
            if self.remote_cseq is not None and number < self.remote_cseq:
                raise DialogError(f"CSeq {number} is lower than {self.remote_cseq} already seen", 500)
            if self.remote_cseq is not None and number == self.remote_cseq and method != "CANCEL":
                raise DialogError(f"CSeq {number} repeats the last request's number", 500)
            self.remote_cseq = number
        if method in TARGET_REFRESH:
            target = _contact_uri(request)
            if target:
                self.remote_target = target
        if method == "BYE":
            self.state = "terminated"

    def receive_response(self, response: SipMessage) -> None:
        """A response to a request we sent in the dialog: 2xx confirms an early dialog and, for a
        target refresh, may move the remote target; 481 and 408 end the dialog (RFC 3261 12.2.1.2)."""
        status = response.status or 0
        _, method = response.cseq
        if 200 <= status < 300:
            if self.state == "early":
                self.state = "confirmed"
            if method in TARGET_REFRESH:
                target = _contact_uri(response)
                if target:
                    self.remote_target = target
        elif status in (408, 481):
            self.state = "terminated"


class DialogTable:
    """The dialogs one endpoint holds, found by (Call-ID, local tag, remote tag)."""

    def __init__(self) -> None:
        self._dialogs: dict[tuple[str, str, str], Dialog] = {}

    def __len__(self) -> int:
        return len(self._dialogs)

    def add(self, dialog: Dialog) -> Dialog:
        self._dialogs[dialog.key] = dialog
        return dialog

    def remove(self, dialog: Dialog) -> None:
        self._dialogs.pop(dialog.key, None)

    def for_request(self, request: SipMessage) -> Dialog | None:
        """The dialog an incoming request belongs to: our tag is in its To, the peer's in its From."""
        return self._lookup(request, local_header="To", remote_header="From")

    def for_response(self, response: SipMessage) -> Dialog | None:
        """The dialog a response to our own request belongs to: our tag in its From, the peer's in its To."""
        return self._lookup(response, local_header="From", remote_header="To")

    def _lookup(self, msg: SipMessage, *, local_header: str, remote_header: str) -> Dialog | None:
        try:
            local = NameAddr.parse(msg.get(local_header) or "").tag
            remote = NameAddr.parse(msg.get(remote_header) or "").tag
        except (SipError, SipParseError):
            return None
        if not local or not remote:
            return None
        return self._dialogs.get((msg.call_id, local, remote))
