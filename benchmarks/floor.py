"""The pure-Python floor: the bare loop the speed issue (#7) names as the reference, and nothing else.

    python benchmarks/floor.py benchmarks/data/mix-2m.pcap [--repeat 3]

It does what the issue describes and no more: read the classic pcap in 2 MB pieces, walk the
record headers and decode Ethernet + IPv4/IPv6 + TCP/UDP with byte indexing and
`struct.unpack_from` on the record bytes, keep a bidirectional flow dictionary (both directional
keys point at one counter list), look at a flow's first payload bytes against a handful of
prefixes, and at the end write one JSON line per flow. No reassembly, probes, metadata, policy,
timers or findings. Whatever portwatch costs above this is its analysis.

Prints packets, flows, the best wall time of `--repeat` runs and packets/s, and, with `--json`,
writes them to a file. Compare with `benchmarks/run.py` figures from the same quiet period.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time

import orjson

READ = 2 << 20
# First bytes -> a protocol name: the "first-bytes signature check" of the issue, not portwatch's engine.
PREFIXES = {b"\x16\x03": "tls", b"SSH-": "ssh", b"GET ": "http", b"POST": "http", b"HTTP": "http", b"220 ": "smtp",
            b"220-": "smtp", b"EHLO": "smtp"}


def run(path: str) -> tuple[int, int, str]:
    """(packets, flows, the JSON lines' total length): the whole job, in one pass over the file."""
    flows: dict[bytes, list] = {}
    packets = 0
    caplen_at = struct.Struct("<I").unpack_from
    with open(path, "rb") as fh:
        head = fh.read(24)
        if head[:4] != b"\xd4\xc3\xb2\xa1":
            sys.exit("floor.py reads little-endian microsecond pcap files (benchmarks/gen_capture.py writes them)")
        rest = b""
        while True:
            data = fh.read(READ)
            if not data:
                break
            buf = rest + data if rest else data
            off, end = 0, len(buf)
            while off + 16 <= end:
                (caplen,) = caplen_at(buf, off + 8)
                nxt = off + 16 + caplen
                if nxt > end:
                    break
                packets += 1
                f = off + 16
                off = nxt
                if caplen < 54 or (buf[f + 12] != 8 and buf[f + 12] != 0x86):
                    continue
                if buf[f + 12] == 8 and buf[f + 14] == 0x45:
                    proto, t, key = buf[f + 23], f + 34, buf[f + 26 : f + 38]
                    pend = f + 14 + ((buf[f + 16] << 8) | buf[f + 17])
                elif buf[f + 12] == 0x86 and buf[f + 14] >> 4 == 6 and caplen >= 62:
                    proto, t, key = buf[f + 20], f + 54, buf[f + 22 : f + 58]
                    pend = t + ((buf[f + 18] << 8) | buf[f + 19])
                else:
                    continue
                if proto == 6:
                    poff = t + ((buf[t + 12] >> 4) << 2)
                elif proto == 17:
                    poff = t + 8
                else:
                    continue
                flow = flows.get(key)
                if flow is None:
                    # [transport, packets, payload bytes, protocol, the key]; the reverse key shares it
                    a = (len(key) - 4) >> 1
                    flow = [proto, 0, 0, None, key]
                    flows[key] = flows[key[a : 2 * a] + key[:a] + key[2 * a + 2 :] + key[2 * a : 2 * a + 2]] = flow
                flow[1] += 1
                n = pend - poff
                if n > 0:
                    flow[2] += n
                    if flow[3] is None:
                        flow[3] = PREFIXES.get(buf[poff : poff + 4]) or PREFIXES.get(buf[poff : poff + 2]) or (
                            "dns" if proto == 17 and buf[t + 2 : t + 4] == b"\x00\x35" else "unknown")
            rest = buf[off:]
    seen: set[int] = set()
    out = []
    for flow in flows.values():
        if id(flow) in seen:
            continue
        seen.add(id(flow))
        key = flow[4]
        a = (len(key) - 4) >> 1
        out.append(orjson.dumps({"transport": flow[0], "src": key[:a].hex(), "dst": key[a : 2 * a].hex(),
                                 "packets": flow[1], "bytes": flow[2], "protocol": flow[3] or "unknown"}))
    return packets, len(seen), str(sum(len(line) + 1 for line in out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("capture")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        packets, nflows, _ = run(args.capture)
        best = min(best, time.perf_counter() - start)
    result = {"capture": args.capture, "packets": packets, "flows": nflows, "wall_s": round(best, 3),
              "packets_per_s": round(packets / best)}
    print(f"floor loop: {packets:,} packets, {nflows:,} flows, {best:.2f} s, {packets / best:,.0f} packets/s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
