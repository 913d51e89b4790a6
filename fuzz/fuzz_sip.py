"""atheris harness for the SIP parser, stream framing and digest header parsing.

    pip install atheris
    python fuzz/fuzz_sip.py fuzz/corpus/sip -max_total_time=300

Anything other than SipError/DigestError escaping is a bug.
"""

import sys

try:
    import atheris
except ImportError:  # pragma: no cover
    sys.exit("atheris is not installed: pip install atheris")

with atheris.instrument_imports():
    from camgrid.gb28181.sip.digest import Challenge, Credentials, DigestError
    from camgrid.gb28181.sip.headers import NameAddr, Via
    from camgrid.gb28181.sip.message import SipError, frame_stream, parse_message


def test_one_input(data: bytes) -> None:
    try:
        msg = parse_message(data)
        for name in ("From", "To", "Contact"):
            value = msg.get(name)
            if value:
                try:
                    NameAddr.parse(value)
                except SipError:
                    pass
        try:
            Via.parse(msg.top_via)
        except SipError:
            pass
        parse_message(msg.to_bytes())
    except SipError:
        pass
    buf = bytearray(data)
    try:
        while frame_stream(buf) is not None:
            pass
    except SipError:
        pass
    text = data.decode("utf-8", "replace")
    for parse in (Credentials.parse, Challenge.parse):
        try:
            parse(text)
        except DigestError:
            pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
