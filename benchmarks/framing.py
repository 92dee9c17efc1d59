"""Capture framing cost: portwatch's struct reader against dpkt's, on the same file.

    python benchmarks/framing.py benchmarks/data/mix-2m.pcap [--records 1000000]

Prints records per CPU second for: portwatch's CaptureSource (records handed out as chunk +
offset, no copy), dpkt.pcap.Reader (a header object and a copied bytes per record), and
dpkt.pcap.Reader plus a dpkt Ethernet object per packet (what decoding with dpkt would cost).
"""

from __future__ import annotations

import argparse
import itertools
import time

import dpkt

from portwatch.capture.sources import CaptureSource


def rate(run) -> float:
    start = time.process_time()
    count = run()
    return count / max(time.process_time() - start, 1e-9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("capture")
    ap.add_argument("--records", type=int, default=1_000_000)
    args = ap.parse_args()
    n = args.records

    def ours() -> int:
        return sum(1 for _ in itertools.islice(iter(CaptureSource(args.capture)), n))

    def dpkt_framing() -> int:
        with open(args.capture, "rb") as fh:
            return sum(1 for _ in itertools.islice(dpkt.pcap.Reader(fh), n))

    def dpkt_objects() -> int:
        count = 0
        with open(args.capture, "rb") as fh:
            for _ts, buf in itertools.islice(dpkt.pcap.Reader(fh), n):
                dpkt.ethernet.Ethernet(buf)
                count += 1
        return count

    for name, fn in (("portwatch CaptureSource", ours), ("dpkt.pcap.Reader", dpkt_framing),
                     ("dpkt.pcap.Reader + Ethernet object", dpkt_objects)):
        print(f"{name:<36} {rate(fn):>12,.0f} records per CPU second")


if __name__ == "__main__":
    main()
