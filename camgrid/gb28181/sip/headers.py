"""Structured SIP header values: URIs, name-addr (From/To/Contact), Via. Pure."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field

from camgrid.gb28181.sip.message import SipParseError


def _parse_params(text: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        k, _, v = part.partition("=")
        params[k.strip().lower()] = v.strip()
    return params


def _format_params(params: dict[str, str]) -> str:
    return "".join(f";{k}={v}" if v != "" else f";{k}" for k, v in params.items())


@dataclass(slots=True)
class SipUri:
    scheme: str = "sip"
    user: str = ""
    host: str = ""
    port: int | None = None
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> SipUri:
        text = text.strip()
        scheme, colon, rest = text.partition(":")
        if not colon or scheme.lower() not in ("sip", "sips"):
            raise SipParseError(f"not a SIP URI: {text[:80]!r}")
        rest, _, headers_part = rest.partition("?")
        hostport, _, param_text = rest.partition(";")
        user, at, hostport2 = hostport.rpartition("@")
        if not at:
            user, hostport2 = "", hostport
        host, port = _split_hostport(hostport2)
        return cls(scheme.lower(), user, host, port, _parse_params(param_text))

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}" if self.port else self.host

    def __str__(self) -> str:
        userpart = f"{self.user}@" if self.user else ""
        return f"{self.scheme}:{userpart}{self.hostport}{_format_params(self.params)}"


def _split_hostport(text: str) -> tuple[str, int | None]:
    text = text.strip()
    if not text:
        raise SipParseError("empty host")
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError(f"bad IPv6 host: {text[:60]!r}")
        host, rest = text[: end + 1], text[end + 1:]
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = text.partition(":")
    if port_text:
        try:
            port = int(port_text)
        except ValueError:
            raise SipParseError(f"bad port: {port_text[:20]!r}") from None
        if not 0 < port < 65536:
            raise SipParseError(f"port out of range: {port}")
        return host, port
    return host, None


@dataclass(slots=True)
class NameAddr:
    """From, To, Contact: `"display" <uri>;params` or a bare uri with params."""

    uri: SipUri
    display: str = ""
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        text = text.strip()
        lt = text.find("<")
        if lt >= 0:
            gt = text.find(">", lt)
            if gt < 0:
                raise SipParseError(f"unterminated <uri>: {text[:80]!r}")
            display = text[:lt].strip().strip('"')
            uri = SipUri.parse(text[lt + 1: gt])
            params = _parse_params(text[gt + 1:])
            return cls(uri, display, params)
        uri_text, _, param_text = text.partition(";")
        return cls(SipUri.parse(uri_text), "", _parse_params(param_text))

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    def __str__(self) -> str:
        display = f'"{self.display}" ' if self.display else ""
        return f"{display}<{self.uri}>{_format_params(self.params)}"


def user_of(name_addr: str) -> str:
    """The user part of a From/To/Contact value's URI ("" when there is none).

    The common shape `<sip:user@host>;tag=x` is cut out directly (this runs for every keepalive);
    anything else goes through the full parser, which raises SipParseError when malformed.
    """
    start = name_addr.find("<sip:")
    if start >= 0:
        at = name_addr.find("@", start + 5)
        end = name_addr.find(">", start + 5)
        if 0 < at < end:
            user = name_addr[start + 5:at]
            if user and not any(c in user for c in ";:?<\"\\"):
                return user
    return NameAddr.parse(name_addr).uri.user


@dataclass(slots=True)
class Via:
    transport: str
    host: str
    port: int | None
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Via:
        text = text.strip()
        proto, _, rest = text.partition(" ")
        bits = proto.split("/")
        if len(bits) != 3 or bits[0].upper() != "SIP":
            raise SipParseError(f"bad Via: {text[:80]!r}")
        sent_by, _, param_text = rest.strip().partition(";")
        host, port = _split_hostport(sent_by)
        return cls(bits[2].upper(), host, port, _parse_params(param_text))

    @property
    def branch(self) -> str:
        return self.params.get("branch", "")

    def response_address(self, default_port: int = 5060) -> tuple[str, int]:
        """Where responses go (RFC 3261 18.2.2 with RFC 3581 rport)."""
        host = self.params.get("received") or self.host
        rport = self.params.get("rport")
        if rport:
            try:
                return host, int(rport)
            except ValueError:
                pass
        return host, self.port or default_port

    def __str__(self) -> str:
        return f"SIP/2.0/{self.transport} {self.host}{':' + str(self.port) if self.port else ''}{_format_params(self.params)}"


MAGIC_COOKIE = "z9hG4bK"


def new_branch() -> str:
    return MAGIC_COOKIE + secrets.token_hex(8)


_TAG_PREFIX = secrets.token_hex(3)
_tag_counter = itertools.count(secrets.randbelow(1 << 24))


def new_tag() -> str:
    """A tag unique to this process run (tags must be unique, not secret; RFC 3261 19.3)."""
    return f"{_TAG_PREFIX}{next(_tag_counter):x}"


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(10)}@{host}"
