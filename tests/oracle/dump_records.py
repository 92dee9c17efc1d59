"""Print every record of a capture as core/examples/dump_records.rs does, from the Python reader.

Per record: the timestamp (repr, in Rust's `{:?}` spelling of exponents, and its IEEE bits), link
type, length and CRC-32 of the bytes; then the malformed count and the error, if any.

    python tests/oracle/dump_records.py FILE   ("-" reads standard input)
"""

from __future__ import annotations

import re
import struct
import sys
import zlib

from portwatch.capture.sources import CaptureError, CaptureSource


def rust_float(value: float) -> str:
    """repr(value) as Rust's Debug writes it: 1e-07 -> 1e-7, 1e+16 -> 1e16."""
    return re.sub(r"e([+-])0*(\d)", lambda m: "e" + ("-" if m.group(1) == "-" else "") + m.group(2), repr(value))


def main() -> None:
    try:
        src = CaptureSource(sys.argv[1])
    except CaptureError as exc:
        print(f"open error: {exc}")
        return
    out = sys.stdout
    with src:
        for ts, linktype, buf, off, length in src:
            data = buf[off : off + length]
            bits = struct.unpack("<Q", struct.pack("<d", ts))[0]
            out.write(f"{rust_float(ts)} {bits:016x} {linktype} {len(data)} {zlib.crc32(data):08x}\n")
    print(f"malformed: {src.stats.malformed}")
    print(f"error: {src.stats.error}")


if __name__ == "__main__":
    main()
