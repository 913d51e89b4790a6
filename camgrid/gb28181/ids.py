"""GB/T 28181 20-digit codes: centre code · industry · type · network · serial."""

from __future__ import annotations

from dataclasses import dataclass

ID_LENGTH = 20

TYPE_NAMES: dict[str, str] = {
    "111": "DVR",
    "112": "video server",
    "113": "encoder",
    "114": "decoder",
    "115": "video switch matrix",
    "116": "audio/video switch",
    "117": "alarm controller",
    "118": "NVR",
    "119": "reserved",
    "121": "checkpoint",
    "130": "HVR",
    "131": "camera",
    "132": "IPC",
    "133": "display",
    "134": "alarm input",
    "135": "alarm output",
    "136": "audio input",
    "137": "audio output",
    "138": "mobile device",
    "139": "other peripheral",
    "200": "central signalling server",
    "201": "web server",
    "202": "media distribution server",
    "203": "proxy server",
    "204": "security server",
    "205": "alarm server",
    "206": "database server",
    "207": "GIS server",
    "208": "management server",
    "209": "access gateway",
    "210": "media storage server",
    "211": "signalling security gateway",
    "215": "business group",
    "216": "virtual organisation",
    "300": "central user",
    "400": "end user",
}

# Industry codes 00-11 from the standard's appendix; the rest are rarely seen in the field.
INDUSTRY_NAMES: dict[str, str] = {
    "00": "public-security road",
    "01": "public-security community",
    "02": "public-security internal",
    "03": "public-security other",
    "04": "traffic road",
    "05": "traffic checkpoint",
    "06": "traffic internal",
    "07": "traffic other",
    "08": "city management",
    "09": "health and environment",
    "10": "inspection and customs",
    "11": "education",
}

NETWORK_NAMES: dict[str, str] = {
    "0": "public-security video network",
    "1": "public-security video network",
    "5": "PSB information network",
    "6": "e-government extranet",
    "7": "internet",
    "8": "social resource network",
}


class InvalidId(ValueError):
    """A string that is not a usable GB/T 28181 code; the message says what is wrong."""


@dataclass(frozen=True)
class GbId:
    raw: str
    centre_code: str
    province: str
    city: str
    county: str
    unit: str
    industry: str
    type_code: str
    network: str
    serial: str

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.type_code, f"unknown ({self.type_code})")

    @property
    def industry_name(self) -> str:
        return INDUSTRY_NAMES.get(self.industry, f"unknown ({self.industry})")

    @property
    def network_name(self) -> str:
        return NETWORK_NAMES.get(self.network, f"unknown ({self.network})")

    @property
    def is_front_end(self) -> bool:
        return 131 <= int(self.type_code) <= 199

    @property
    def is_platform(self) -> bool:
        return self.type_code == "200"

    @property
    def is_business_group(self) -> bool:
        return self.type_code == "215"

    @property
    def is_virtual_org(self) -> bool:
        return self.type_code == "216"

    @property
    def realm(self) -> str:
        """The SIP domain / digest realm a platform with this ID uses."""
        return self.raw[:10]

    def __str__(self) -> str:
        return self.raw


def _check_digits(value: object, what: str, lengths: tuple[int, ...]) -> str:
    if not isinstance(value, str):
        raise InvalidId(f"{what} must be a string of digits, got {type(value).__name__}: {value!r}")
    text = value.strip()
    if len(text) not in lengths:
        want = " or ".join(str(n) for n in lengths)
        raise InvalidId(f"{what} must be {want} digits, got {len(text)}: {text!r}")
    for pos, ch in enumerate(text):
        if not ("0" <= ch <= "9"):
            raise InvalidId(f"{what} must contain only digits 0-9, found {ch!r} at position {pos + 1}: {text!r}")
    return text


def parse_id(s: str) -> GbId:
    """Split a 20-digit device/platform/channel ID; surrounding whitespace is ignored."""
    text = _check_digits(s, "device ID", (ID_LENGTH,))
    return GbId(
        raw=text,
        centre_code=text[0:8],
        province=text[0:2],
        city=text[2:4],
        county=text[4:6],
        unit=text[6:8],
        industry=text[8:10],
        type_code=text[10:13],
        network=text[13],
        serial=text[14:20],
    )


def is_valid_id(s: object) -> bool:
    try:
        parse_id(s)  # type: ignore[arg-type]
    except InvalidId:
        return False
    return True


def parse_civil_code(code: str) -> tuple[str, str | None, str | None, str | None]:
    """(province, city, county, unit) from a civil code of 2, 4, 6 or 8 digits.

    Devices use such codes as organisation IDs (CivilCode, ParentID); the parts the code does
    not reach are None. A full 20-digit ID is accepted too and its centre code is used.
    """
    text = _check_digits(code, "civil code", (2, 4, 6, 8, ID_LENGTH))[:8]
    parts = [text[i:i + 2] for i in range(0, len(text), 2)]
    province, city, county, unit = (parts + [None, None, None])[:4]
    return province, city, county, unit  # type: ignore[return-value]


def make_id(centre_code: str, industry: str, type_code: str | int, network: str | int, serial: int) -> str:
    """Compose an ID. A 2/4/6-digit civil code is right-padded with zeros to the 8-digit centre code."""
    centre = _check_digits(centre_code, "centre code", (2, 4, 6, 8)).ljust(8, "0")
    industry_s = _check_digits(industry, "industry code", (2,))
    type_s = _check_digits(f"{type_code:03d}" if isinstance(type_code, int) else type_code, "type code", (3,))
    network_s = _check_digits(str(network) if isinstance(network, int) else network, "network code", (1,))
    if isinstance(serial, bool) or not isinstance(serial, int) or not 0 <= serial <= 999_999:
        raise InvalidId(f"serial must be an integer 0-999999, got {serial!r}")
    return f"{centre}{industry_s}{type_s}{network_s}{serial:06d}"
