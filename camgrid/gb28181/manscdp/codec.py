"""MANSCDP XML bodies: charset detection, tolerant parsing and encoding."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Union
from xml.sax.saxutils import escape

import defusedxml
import defusedxml.ElementTree as DET

MAX_BODY_SIZE = 64 * 1024
ROOTS = ("Query", "Control", "Response", "Notify")
# Elements whose <Item> children make up the message's `items`, in order of preference.
ITEM_LISTS = ("DeviceList", "RecordList", "AlarmList", "PresetList")
_ITEM_LISTS_LOWER = frozenset(name.lower() for name in ITEM_LISTS)
_HEADER_TAGS = {"cmdtype": "CmdType", "sn": "SN", "deviceid": "DeviceID", "sumnum": "SumNum"}
_MAX_DEPTH = 8

_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)
_DECL_ENCODING = re.compile(rb"^\s*<\?xml[^>]*encoding\s*=\s*[\"']([A-Za-z0-9._-]+)", re.IGNORECASE)
_BARE_AMP = re.compile(r"&(?!(?:amp|lt|gt|quot|apos|#[0-9]+|#[xX][0-9A-Fa-f]+);)")
# Characters XML 1.0 forbids; devices pad bodies with NULs and the odd control byte.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_INTEGER = re.compile(r"^[+-]?[0-9]{1,18}$")
_ELEMENT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
# Non-ASCII a Chinese device plausibly sends: Latin-1 symbols, punctuation, arrows and
# maths, enclosed numbers, CJK (radicals to unified ideographs, compatibility forms,
# extensions B+), fullwidth forms, emoji. GB2312 text that happens to be valid UTF-8
# decodes to something else (通 = CD A8 = U+0368, 獍奠发 = Glagolitic + Hangul).
_GB_AS_UTF8 = re.compile(
    "[^\x00-\x7f\xa0-\xff\u2000-\u27bf\u2e80-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef\ufffd"
    "\U0001f000-\U0001faff\U00020000-\U0003ffff]"
)


class ManscdpError(ValueError):
    """A MANSCDP body that cannot be used; the message says why."""


def _declared_encoding(data: bytes) -> str | None:
    m = _DECL_ENCODING.match(data[:200])
    return m.group(1).decode("ascii").lower() if m else None


def _suspicious(text: str) -> int:
    return len(_GB_AS_UTF8.findall(text))


def decode_body(data: bytes) -> tuple[str, str]:
    """Return (text, charset) where charset is "GB18030" or "UTF-8".

    Rule: bytes that are valid strict UTF-8 are UTF-8, whatever the XML declaration says
    (many devices declare GB2312 and send UTF-8, and UTF-8 Chinese decodes "cleanly" as
    GB18030 into mojibake, so GB18030 cannot go first). One exception: short GB2312 text can
    be valid UTF-8 by accident (通 is CD A8 = U+0368), and then decodes to characters no
    Chinese device sends (combining marks, Cyrillic, Hangul, ...: see _GB_AS_UTF8); if the
    UTF-8 reading holds such characters and the bytes are clean GB18030, GB18030 wins. (So a
    real UTF-8 Cyrillic or Korean name is read as GB18030: the price of serving GB devices.)
    If neither decodes cleanly, the reading with fewer replacement (and, for UTF-8,
    suspicious) characters wins, UTF-8 on a tie. Pure ASCII reports the charset its
    declaration names (GB18030 unless it says UTF-8), so answers go out as the device expects.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", "replace"), "UTF-8"
    if data.isascii():
        declared = _declared_encoding(data)
        return data.decode("ascii"), "UTF-8" if declared in ("utf-8", "utf8") else "GB18030"
    try:
        as_utf8 = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if not _suspicious(as_utf8):
            return as_utf8, "UTF-8"
        try:
            return data.decode("gb18030"), "GB18030"
        except UnicodeDecodeError:
            return as_utf8, "UTF-8"
    try:
        return data.decode("gb18030"), "GB18030"
    except UnicodeDecodeError:
        pass
    as_gb = data.decode("gb18030", "replace")
    as_utf8 = data.decode("utf-8", "replace")
    if as_utf8.count("\ufffd") + _suspicious(as_utf8) <= as_gb.count("\ufffd"):
        return as_utf8, "UTF-8"
    return as_gb, "GB18030"


@dataclass
class ManscdpMessage:
    root: str
    cmd_type: str
    sn: int
    device_id: str
    fields: dict[str, str] = field(default_factory=dict)
    items: list[dict[str, str]] = field(default_factory=list)
    sum_num: int | None = None
    list_num: int | None = None
    charset: str = "GB18030"
    # Every element with <Item> children, by tag (DeviceStatus Alarmstatus, PresetList, ...).
    lists: dict[str, list[dict[str, str]]] = field(default_factory=dict)


def _text(el: ET.Element) -> str:
    return (el.text or "").strip()


def _to_int(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    return int(value) if _INTEGER.match(value) else None


def _flatten(el: ET.Element, prefix: str, out: dict[str, str], depth: int) -> None:
    """Leaves of el as dotted paths ("Info.AlarmType"); Item lists are left to `lists`."""
    if depth > _MAX_DEPTH:
        return
    for child in el:
        if not isinstance(child.tag, str) or child.tag == "Item":
            continue
        key = f"{prefix}{child.tag}"
        if len(child):
            if any(c.tag == "Item" for c in child):
                continue
            _flatten(child, key + ".", out, depth + 1)
        else:
            out.setdefault(key, _text(child))


def _item_dict(item: ET.Element, out: dict[str, str], depth: int = 0) -> dict[str, str]:
    """An Item's leaves; nested elements (Info, ...) are flattened into the same dict."""
    if depth > _MAX_DEPTH:
        return out
    nested = []
    for child in item:
        if not isinstance(child.tag, str):
            continue
        if len(child):
            nested.append(child)
        else:
            out[child.tag] = _text(child)
    for child in nested:  # the item's own fields win over same-named nested ones
        for k, v in _item_dict(child, {}, depth + 1).items():
            out.setdefault(k, v)
    return out


def _find_ci(root: ET.Element, name: str) -> ET.Element | None:
    found = root.find(name)
    if found is not None:
        return found
    lower = name.lower()
    for child in root:
        if isinstance(child.tag, str) and child.tag.lower() == lower:
            return child
    return None


def _parse_xml(text: str) -> ET.Element:
    text = _XML_DECL.sub("", text, count=1)
    text = _XML_ILLEGAL.sub("", text)
    text = _BARE_AMP.sub("&amp;", text)
    if "<!" not in text:
        # No markup declaration at all, so no DTD and no entity can be declared: expat's C
        # tree builder is safe here and ~5x cheaper than defusedxml's pure-Python parser,
        # which is kept for every body that carries a declaration (and refuses DTDs).
        try:
            return ET.fromstring(text)
        except ET.ParseError as exc:
            raise ManscdpError(f"body is not well-formed XML: {exc}") from None
    try:
        return DET.fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise ManscdpError(f"DTD or entity declarations are not allowed in MANSCDP bodies ({type(exc).__name__})") from None
    except ET.ParseError as exc:
        raise ManscdpError(f"body is not well-formed XML: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise ManscdpError(f"body is not usable XML: {exc}") from None


# The keepalive exactly as nearly every device sends it (the platform's hottest message). A body
# that matches is fully parsed by this pattern; any other shape (an Info element, odd spacing
# inside tags, entities, ...) goes through the XML parser. Both give the same ManscdpMessage.
_PLAIN_KEEPALIVE = re.compile(
    rb"\s*(?:<\?xml(?P<decl>[^<>]*)\?>)?\s*<Notify>\s*<CmdType>Keepalive</CmdType>\s*<SN>\s*(?P<sn>[0-9]{1,18})\s*</SN>"
    rb"\s*<DeviceID>\s*(?P<id>[0-9A-Za-z]{1,32})\s*</DeviceID>\s*<Status>\s*(?P<status>[A-Za-z]{1,16})\s*</Status>"
    rb"\s*</Notify>[\s\x00]*"
)


def _plain_keepalive(data: bytes) -> ManscdpMessage | None:
    m = _PLAIN_KEEPALIVE.fullmatch(data)
    if m is None:
        return None
    declared = _declared_encoding(data) if m.group("decl") else None
    return ManscdpMessage(
        root="Notify", cmd_type="Keepalive", sn=int(m.group("sn")), device_id=m.group("id").decode("ascii"),
        fields={"Status": m.group("status").decode("ascii")},
        charset="UTF-8" if declared in ("utf-8", "utf8") else "GB18030",
    )


def parse_manscdp(data: bytes, *, max_size: int = MAX_BODY_SIZE) -> ManscdpMessage:
    """Parse a MANSCDP body. Any malformed input raises ManscdpError.

    A missing or non-numeric SN gives sn=0; a missing DeviceID gives "".
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ManscdpError(f"body must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_size:
        raise ManscdpError(f"body is {len(data)} bytes, more than the {max_size}-byte limit")
    keepalive = _plain_keepalive(data)
    if keepalive is not None:
        return keepalive
    text, charset = decode_body(data.rstrip(b"\x00 \t\r\n"))
    if not text.strip():
        raise ManscdpError("body is empty")
    root = _parse_xml(text)
    if root.tag not in ROOTS:
        raise ManscdpError(f"unknown root element <{root.tag}>; expected one of {', '.join(ROOTS)}")
    # The header elements, matched without regard to case (exact spelling wins over others).
    head: dict[str, ET.Element] = {}
    fields: dict[str, str] = {}
    lists: dict[str, list[dict[str, str]]] = {}
    nums: dict[str, int | None] = {}
    has_list_element = False
    for child in root:
        if not isinstance(child.tag, str):
            continue
        low = child.tag.lower()
        has_list_element = has_list_element or low in _ITEM_LISTS_LOWER
        if low in _HEADER_TAGS:
            current = head.get(low)
            if current is None or (child.tag == _HEADER_TAGS[low] != current.tag):
                head[low] = child
            continue
        if any(c.tag == "Item" for c in child):
            lists.setdefault(child.tag, [_item_dict(it, {}) for it in child if it.tag == "Item"])
            nums.setdefault(child.tag, _to_int(child.get("Num")))
        elif len(child):
            _flatten(child, child.tag + ".", fields, 1)
        else:
            fields.setdefault(child.tag, _text(child))

    # An empty <DeviceList Num="0"/> is still the primary list: it carries list_num.
    primary = next((name for name in ITEM_LISTS if name in lists), None)
    if primary is None and has_list_element:
        for name in ITEM_LISTS:
            el = _find_ci(root, name)
            if el is not None:
                primary = el.tag
                nums.setdefault(primary, _to_int(el.get("Num")))
                fields.pop(primary, None)
                break
    cmd_el, sn_el, dev_el, sum_el = head.get("cmdtype"), head.get("sn"), head.get("deviceid"), head.get("sumnum")
    if cmd_el is None or not _text(cmd_el):
        raise ManscdpError(f"<{root.tag}> has no <CmdType>")
    return ManscdpMessage(
        root=root.tag,
        cmd_type=_text(cmd_el),
        sn=max(_to_int(_text(sn_el)) or 0, 0) if sn_el is not None else 0,
        device_id=_text(dev_el) if dev_el is not None else "",
        fields=fields,
        items=lists.get(primary, []) if primary else [],
        sum_num=_to_int(_text(sum_el)) if sum_el is not None else None,
        list_num=nums.get(primary) if primary else None,
        charset=charset,
        lists=lists,
    )


FieldValue = Union[str, int, float, None, list, dict]


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _ELEMENT_NAME.match(name):
        raise ValueError(f"not a usable XML element name: {name!r}")
    return name


def _clean_text(value: object) -> str:
    return escape(_XML_ILLEGAL.sub("", str(value)))


def _write(out: list[str], name: str, value: FieldValue) -> None:
    name = _check_name(name)
    if value is None:
        return
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, dict):
        out.append(f"<{name}>")
        for k, v in value.items():
            _write(out, k, v)
        out.append(f"</{name}>")
    elif isinstance(value, list):
        out.append(f'<{name} Num="{len(value)}">')
        for item in value:
            if not isinstance(item, dict):
                raise ValueError(f"items of <{name}> must be dicts of element name to value, got {type(item).__name__}")
            _write(out, "Item", item)
        out.append(f"</{name}>")
    else:
        out.append(f"<{name}>{_clean_text(value)}</{name}>")


def encode_manscdp(root: str, cmd_type: str, sn: int, device_id: str,
                   fields_in_order: list[tuple[str, FieldValue]], charset: str = "GB18030") -> bytes:
    """Serialise a body. A list value becomes `<Name Num="n"><Item>…</Item>…</Name>`, a dict
    value a nested element, None is left out. charset "GB18030" declares GB2312 as devices expect.
    """
    if root not in ROOTS:
        raise ValueError(f"root must be one of {', '.join(ROOTS)}, got {root!r}")
    gb = charset.upper().replace("-", "") in ("GB18030", "GB2312", "GBK")
    out = [f'<?xml version="1.0" encoding="{"GB2312" if gb else "UTF-8"}"?>', f"<{root}>"]
    _write(out, "CmdType", cmd_type)
    _write(out, "SN", int(sn))
    _write(out, "DeviceID", device_id)
    for name, value in fields_in_order:
        _write(out, name, value)
    out.append(f"</{root}>")
    return ("\r\n".join(out) + "\r\n").encode("gb18030" if gb else "utf-8")
