"""atheris harness for MANSCDP bodies: charset detection, XML parsing, catalog and record mapping, times.

    pip install atheris
    python fuzz/fuzz_manscdp.py fuzz/corpus/manscdp -max_total_time=300

Anything other than ManscdpError escaping is a bug.
"""

import sys

try:
    import atheris
except ImportError:  # pragma: no cover
    sys.exit("atheris is not installed: pip install atheris")

with atheris.instrument_imports():
    from camgrid.gb28181.manscdp import (
        CatalogAssembler,
        ManscdpError,
        RecordAssembler,
        catalog_item_to_channel,
        encode_manscdp,
        parse_gb_time,
        parse_manscdp,
        record_item_to_row,
    )


def test_one_input(data: bytes) -> None:
    try:
        msg = parse_manscdp(data)
    except ManscdpError:
        return
    assembler = CatalogAssembler(msg.device_id, msg.sn, 0.0)
    assembler.feed(msg, 1.0)
    assembler.result()
    records = RecordAssembler(msg.device_id, msg.sn, 0.0)
    records.feed(msg, 1.0)
    records.result()
    for item in msg.items:
        catalog_item_to_channel(item)
        record_item_to_row(item)
    for value in msg.fields.values():
        try:
            parse_gb_time(value)
        except ManscdpError:
            pass
    # What was parsed can be written back and parsed again to the same fields.
    try:
        body = encode_manscdp(msg.root, msg.cmd_type, msg.sn, msg.device_id,
                              [(k, v) for k, v in msg.fields.items() if "." not in k], msg.charset)
    except ValueError:
        return  # a tag that is valid XML but outside what the builder writes (e.g. non-ASCII names)
    again = parse_manscdp(body, max_size=1 << 20)
    assert again.cmd_type == msg.cmd_type.strip() and again.sn == msg.sn


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
