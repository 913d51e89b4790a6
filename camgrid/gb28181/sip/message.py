"""SIP messages (RFC 3261): parse bytes into SipMessage and serialise back. Pure, no I/O.

Bodies stay bytes (MANSCDP bodies are GB18030 or UTF-8; decoding them is the body parser's
job). Header names are normalised to their canonical long form, so compact forms (`v`, `i`,
`l`, ...) and any capitalisation are accepted. Header values are text decoded as UTF-8 with
surrogate escapes, which round-trips any byte a device may put there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from camgrid.gb28181.sip.fastpath import parse as _native_parse

MAX_MESSAGE_BYTES = 65536


class SipError(ValueError):
    """A SIP message that cannot be accepted; `status` is the response to send, if any."""

    status = 400


class SipParseError(SipError):
    pass


class MessageTooLarge(SipError):
    status = 413


COMPACT = {
    "i": "Call-ID", "m": "Contact", "e": "Content-Encoding", "l": "Content-Length",
    "c": "Content-Type", "f": "From", "s": "Subject", "k": "Supported", "t": "To",
    "v": "Via", "o": "Event", "u": "Allow-Events", "r": "Refer-To", "x": "Session-Expires",
}
_CANONICAL = {name.lower(): name for name in (
    "Via", "From", "To", "Call-ID", "CSeq", "Contact", "Max-Forwards", "Content-Type",
    "Content-Length", "Expires", "User-Agent", "Server", "Allow", "Supported", "Subject",
    "Date", "Event", "Subscription-State", "Authorization", "WWW-Authenticate",
    "Proxy-Authorization", "Proxy-Authenticate", "Route", "Record-Route", "Allow-Events",
    "Content-Encoding", "Min-Expires", "Retry-After", "Warning", "Accept", "Require",
    "Session-Expires", "Refer-To", "Monitor-User-Identity", "X-GB-Ver", "Note",
)}
_CANONICAL["call-id"] = "Call-ID"
_CANONICAL["cseq"] = "CSeq"
_CANONICAL["www-authenticate"] = "WWW-Authenticate"
_CANONICAL["x-gb-ver"] = "X-GB-Ver"

# Headers whose values may be comma-joined lists that we split into separate entries.
_LIST_HEADERS = {"Via", "Route", "Record-Route"}

REASONS = {
    100: "Trying", 180: "Ringing", 200: "OK", 202: "Accepted", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    408: "Request Timeout", 413: "Request Entity Too Large", 415: "Unsupported Media Type",
    420: "Bad Extension", 423: "Interval Too Brief", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 489: "Bad Event", 500: "Server Internal Error",
    501: "Not Implemented", 503: "Service Unavailable", 504: "Server Time-out",
}


def _canonicalise(name: str) -> str:
    low = name.strip().lower()
    if len(low) == 1 and low in COMPACT:
        return COMPACT[low]
    known = _CANONICAL.get(low)
    if known:
        return known
    return "-".join(p.capitalize() for p in low.split("-"))


# Every spelling seen so far, to its canonical form: the hot path is one dict lookup. Bounded,
# because the names come from the network.
_NAME_CACHE: dict[str, str] = {name: name for name in _CANONICAL.values()}
_NAME_CACHE_MAX = 4096


def canonical_name(name: str) -> str:
    known = _NAME_CACHE.get(name)
    if known is not None:
        return known
    canonical = _canonicalise(name)
    if len(_NAME_CACHE) < _NAME_CACHE_MAX:
        _NAME_CACHE[name] = canonical
    return canonical


@dataclass(slots=True)
class SipMessage:
    """A request (method and uri set) or a response (status set)."""

    method: str | None = None
    uri: str | None = None
    status: int | None = None
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # Set by the SIP stack on received requests (transaction key, where answers go), so that
    # answering does not parse the Via again. Not part of the message.
    stack_data: object = field(default=None, repr=False, compare=False)

    @property
    def is_request(self) -> bool:
        return self.method is not None

    # -- header access -------------------------------------------------------------------
    def get(self, name: str, default: str | None = None) -> str | None:
        name = _NAME_CACHE.get(name) or canonical_name(name)
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        name = canonical_name(name)
        return [v for k, v in self.headers if k == name]

    def set(self, name: str, value: str) -> None:
        """Replace every occurrence of a header with one value (appended if absent)."""
        name = canonical_name(name)
        out, placed = [], False
        for k, v in self.headers:
            if k == name:
                if not placed:
                    out.append((k, value))
                    placed = True
            else:
                out.append((k, v))
        if not placed:
            out.append((name, value))
        self.headers = out

    def add(self, name: str, value: str, *, first: bool = False) -> None:
        entry = (canonical_name(name), value)
        if first:
            self.headers.insert(0, entry)
        else:
            self.headers.append(entry)

    def remove(self, name: str) -> None:
        name = canonical_name(name)
        self.headers = [(k, v) for k, v in self.headers if k != name]

    # -- common fields ---------------------------------------------------------------------
    @property
    def call_id(self) -> str:
        return self.get("Call-ID") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        raw = self.get("CSeq") or ""
        num, _, method = raw.strip().partition(" ")
        try:
            return int(num), method.strip().upper()
        except ValueError:
            raise SipParseError(f"bad CSeq header: {raw!r}") from None

    @property
    def top_via(self) -> str:
        return self.get("Via") or ""

    @property
    def content_type(self) -> str:
        return (self.get("Content-Type") or "").split(";", 1)[0].strip().lower()

    def first_line(self) -> str:
        if self.is_request:
            return f"{self.method} {self.uri} SIP/2.0"
        return f"SIP/2.0 {self.status} {self.reason or REASONS.get(self.status or 0, '')}"

    def to_bytes(self) -> bytes:
        lines = [self.first_line()]
        for k, v in self.headers:
            if k != "Content-Length":
                lines.append(f"{k}: {v}")
        lines.append(f"Content-Length: {len(self.body)}")
        head = "\r\n".join(lines) + "\r\n\r\n"
        return head.encode("utf-8", "surrogateescape") + self.body

    def __bytes__(self) -> bytes:
        return self.to_bytes()


_REQUIRED = ("Via", "From", "To", "Call-ID", "CSeq")


def split_list(value: str) -> list[str]:
    """Split a comma-joined header value, ignoring commas inside quotes or <...>."""
    if "," not in value:
        return [value.strip()]
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(value):
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth = max(0, depth - 1)
        elif ch == "," and not quoted and depth == 0:
            parts.append(value[start:i].strip())
            start = i + 1
    parts.append(value[start:].strip())
    return [p for p in parts if p]


def parse_message(data: bytes, *, max_size: int = MAX_MESSAGE_BYTES, stream: bool = False) -> SipMessage:
    """Parse one SIP message.

    With ``stream=False`` (UDP) a missing Content-Length means "the rest of the datagram" and
    extra bytes after the declared length are ignored. With ``stream=True`` the caller has
    already framed the message by Content-Length.

    The native module (camgrid.gb28181.sip.fastpath) takes the clean shape of a message; it
    hands everything else, errors included, to parse_message_python, the reference.
    """
    if _native_parse is not None:
        parsed = _native_parse(data, max_size, stream)
        if parsed is not None:
            return SipMessage(*parsed)
    return parse_message_python(data, max_size=max_size, stream=stream)


def parse_message_python(data: bytes, *, max_size: int = MAX_MESSAGE_BYTES, stream: bool = False) -> SipMessage:
    if len(data) > max_size:
        raise MessageTooLarge(f"message of {len(data)} bytes exceeds the {max_size}-byte limit")
    end = data.find(b"\r\n\r\n")
    sep = 4
    if end < 0:
        end = data.find(b"\n\n")
        sep = 2
    if end < 0:
        head_bytes, body = data, b""
    else:
        head_bytes, body = data[:end], data[end + sep:]
    head = head_bytes.decode("utf-8", "surrogateescape")
    raw_lines = head.split("\n")
    if not raw_lines or not raw_lines[0].strip():
        # Tolerate leading blank lines (RFC 3261 7.5) but not an empty message.
        while raw_lines and not raw_lines[0].strip():
            raw_lines.pop(0)
        if not raw_lines:
            raise SipParseError("empty message")
    start = raw_lines[0].rstrip("\r")
    msg = _parse_start_line(start)

    headers: list[tuple[str, str]] = []
    append = headers.append
    for line in raw_lines[1:]:
        line = line.rstrip("\r")
        if not line:
            continue
        if line[0] in " \t":
            if not headers:
                raise SipParseError("header continuation before any header")
            k, v = headers[-1]
            headers[-1] = (k, v + " " + line.strip())
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip() or " " in name.strip():
            raise SipParseError(f"malformed header line: {line[:80]!r}")
        cname = _NAME_CACHE.get(name) or canonical_name(name)
        value = value.strip()
        if cname in _LIST_HEADERS and "," in value:
            headers.extend((cname, part) for part in split_list(value))
        else:
            append((cname, value))
    msg.headers = headers
    present = {k: v for k, v in reversed(headers)}  # first occurrence of each name wins

    length_text = present.get("Content-Length")
    if length_text is not None:
        try:
            length = int(length_text)
        except ValueError:
            raise SipParseError(f"bad Content-Length: {length_text!r}") from None
        if length < 0:
            raise SipParseError("negative Content-Length")
        if length > len(body):
            raise SipParseError(f"Content-Length {length} but only {len(body)} body bytes")
        body = body[:length]
    elif stream:
        body = b""
    msg.body = body

    if msg.is_request:
        for name in _REQUIRED:
            if name not in present:
                raise SipParseError(f"request lacks the {name} header")
        num, method = msg.cseq
        if method != msg.method:
            raise SipParseError(f"CSeq method {method} does not match request method {msg.method}")
    else:
        for name in ("Via", "CSeq", "Call-ID"):
            if name not in present:
                raise SipParseError(f"response lacks the {name} header")
        msg.cseq  # noqa: B018 - validates
    return msg


def _parse_start_line(line: str) -> SipMessage:
    if line.startswith("SIP/"):
        parts = line.split(" ", 2)
        if len(parts) < 2 or parts[0] != "SIP/2.0":
            raise SipParseError(f"bad status line: {line[:80]!r}")
        try:
            status = int(parts[1])
        except ValueError:
            raise SipParseError(f"bad status code: {line[:80]!r}") from None
        if not 100 <= status <= 699:
            raise SipParseError(f"status code out of range: {status}")
        return SipMessage(status=status, reason=parts[2].strip() if len(parts) > 2 else "")
    parts = line.split(" ")
    if len(parts) != 3 or parts[2] != "SIP/2.0":
        raise SipParseError(f"bad request line: {line[:80]!r}")
    method, uri = parts[0], parts[1]
    if not method.isalpha() or not method.isupper():
        raise SipParseError(f"bad method: {method[:20]!r}")
    if ":" not in uri:
        raise SipParseError(f"bad request URI: {uri[:80]!r}")
    return SipMessage(method=method, uri=uri)


def frame_stream(buffer: bytearray, *, max_size: int = MAX_MESSAGE_BYTES) -> bytes | None:
    """Take one complete message off the front of a TCP stream buffer, or None if incomplete.

    Keep-alive CRLFs between messages (RFC 5626) are skipped. Raises MessageTooLarge when the
    headers alone or the declared body would exceed max_size; the caller closes the stream.
    """
    while buffer[:2] == b"\r\n":
        del buffer[:2]
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > max_size:
            raise MessageTooLarge("header block exceeds the size limit")
        return None
    head = bytes(buffer[:end])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        n = name.strip().lower()
        if n in (b"content-length", b"l"):
            try:
                length = int(value.strip())
            except ValueError:
                raise SipParseError("bad Content-Length on stream") from None
            if length < 0:
                raise SipParseError("negative Content-Length on stream")
            break
    total = end + 4 + length
    if total > max_size:
        raise MessageTooLarge(f"message of {total} bytes exceeds the {max_size}-byte limit")
    if len(buffer) < total:
        return None
    data = bytes(buffer[:total])
    del buffer[:total]
    return data
