"""atheris harness for GB SDP and PTZCmd frames.

    pip install atheris
    python fuzz/fuzz_sdp_ptz.py fuzz/corpus/sdp -max_total_time=300

Anything other than SdpError/PtzError escaping, or a parsed SDP that does not survive
build → parse unchanged, is a bug.
"""

import sys

try:
    import atheris
except ImportError:  # pragma: no cover
    sys.exit("atheris is not installed: pip install atheris")

with atheris.instrument_imports():
    from camgrid.gb28181.ptz import PtzError, decode, encode
    from camgrid.gb28181.sdp import SdpError, build_sdp, parse_sdp


def test_one_input(data: bytes) -> None:
    try:
        sd = parse_sdp(data)
    except SdpError:
        pass
    else:
        try:
            built = build_sdp(sd)
        except SdpError:
            pass  # a value holding a line break is refused rather than written
        else:
            assert parse_sdp(built) == sd
    # The first 8 bytes as a PTZ frame (hex), and the input as text.
    for text in (data[:8].hex(), data.decode("latin-1")):
        try:
            cmd = decode(text)
        except PtzError:
            continue
        assert decode(encode(cmd)) == cmd


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
