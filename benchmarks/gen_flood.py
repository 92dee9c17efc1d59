#!/usr/bin/env python3
"""Adversarial captures for the flow table and the reassembly buffers (issue 8).

    python benchmarks/gen_flood.py syn -o benchmarks/data/syn-1m.pcap            # 1,000,000 SYNs
    python benchmarks/gen_flood.py ooo -o benchmarks/data/ooo.pcap --flows 4     # out-of-order flood

``syn``: a SYN flood of ``--flows`` distinct flows (default 1,000,000): one SYN each, from
random 10/8 clients and ports to a few servers on ports 80/443/22, with a SYN-ACK answered
for ``--answered`` of them (default 10%) and nothing else. Every 5-tuple is distinct, so a
flow table that does not bound itself grows by one entry per packet.

``ooo``: ``--flows`` long TCP flows (default 4) whose data segments arrive out of order:
each window of ``--window`` segments (default 64) is shuffled, ``--dup`` of them (default
5%) are sent twice, and a ``--hole`` fraction (default 1%) of windows lose their first
segment until the very end of the flow, so the reassembly buffer has to hold everything
after a gap. Stream content is TLS application data after a real handshake, so a detector
classifies the flow early and then has to stay cheap. ``--packets`` bounds the total.

Same options, same bytes.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from gen_capture import (
    ACK,
    CLOCK,
    FIN,
    PCAP_HEADER,
    PSH,
    REC,
    Flow,
    make_sources,
    tls_client_hello,
    tls_server_hello,
)

START_NS = 1_715_680_800 * 1_000_000_000


class Writer:
    def __init__(self, path: str, pps: float):
        self.fh = open(path, "wb", buffering=1 << 22)  # noqa: SIM115
        self.fh.write(PCAP_HEADER)
        self.t = START_NS
        self.step = int(1e9 / pps)
        self.n = 0

    def put(self, frame: bytes):
        self.t += self.step
        CLOCK[0] = self.t
        sec, ns = divmod(self.t, 1_000_000_000)
        n = len(frame)
        self.fh.write(REC.pack(sec, ns // 1000, n, n))
        self.fh.write(frame)
        self.n += 1

    def close(self):
        self.fh.close()


def syn_flood(path: str, flows: int, seed: int, answered: float) -> int:
    rng = random.Random(seed)
    servers = [bytes([198, 18, 7, i]) for i in range(1, 9)]
    w = Writer(path, 500_000)  # a 500 kpps flood
    used = set()
    for i in range(flows):
        while True:
            cip = bytes([10, rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)])
            cport = rng.randrange(1024, 65536)
            sip = servers[i % len(servers)]
            sport = (80, 443, 22)[i % 3]
            key = (cip, cport, sip, sport)
            if key not in used:
                used.add(key)
                break
        f = Flow(i, "unknown", "tcp", cip, cport, sip, sport, "", False)
        f.setup(rng, 64)
        w.put(f.syn(0))
        if rng.random() < answered:
            w.put(f.syn(1))
    w.close()
    return w.n


def ooo_flood(path: str, nflows: int, packets: int, seed: int, window: int, dup: float, hole: float) -> int:
    rng = random.Random(seed)
    src = make_sources(rng)
    w = Writer(path, 150_000)
    flows = []
    for i in range(nflows):
        f = Flow(i, "tls", "tcp", bytes([10, 9, 0, 1 + i]), 40000 + i, bytes([198, 18, 9, 1 + i]), 443, "", False)
        f.setup(rng, 56)
        flows.append(f)
    per_flow = max(10, packets // nflows)
    mss = 1448
    tls = src["tls"]
    for f in flows:
        # handshake and the first flights, in order
        sid = rng.randbytes(32)
        w.put(f.syn(0))
        w.put(f.syn(1))
        w.put(f.pkt(0, ACK))
        w.put(f.pkt(0, PSH | ACK, tls_client_hello(rng, "ooo.example.com", sid)))
        w.put(f.pkt(1, PSH | ACK, tls_server_hello(rng, sid) + b"\x14\x03\x03\x00\x01\x01"))
        w.put(f.pkt(0, ACK))
    # then data segments, windows shuffled, flows interleaved window by window
    base = [f.seq[1] for f in flows]
    offs = [0] * nflows
    held: list[list] = [[] for _ in flows]  # segments withheld until the end (holes)
    budget = packets - w.n
    while budget > 0:
        progressed = False
        for k, f in enumerate(flows):
            if offs[k] >= per_flow * mss or budget <= 0:
                continue
            progressed = True
            segs = []
            for _ in range(window):
                o = offs[k]
                segs.append((o, tls.buf[o % tls.period:o % tls.period + mss]))
                offs[k] += mss
            rng.shuffle(segs)
            if rng.random() < hole:
                held[k].append(segs.pop(0))
            segs += [s for s in segs if rng.random() < dup]
            for o, payload in segs:
                if budget <= 0:
                    break
                f.seq[1] = (base[k] + o) & 0xFFFFFFFF
                w.put(f.pkt(1, ACK, payload))
                budget -= 1
        if not progressed:
            break
    for k, f in enumerate(flows):  # late retransmissions fill the holes, then teardown
        for o, payload in held[k]:
            f.seq[1] = (base[k] + o) & 0xFFFFFFFF
            w.put(f.pkt(1, ACK, payload))
        f.seq[1] = (base[k] + offs[k]) & 0xFFFFFFFF
        w.put(f.pkt(0, ACK))
        w.put(f.pkt(0, FIN | ACK))
        f.seq[0] = (f.seq[0] + 1) & 0xFFFFFFFF
        w.put(f.pkt(1, FIN | ACK))
        f.seq[1] = (f.seq[1] + 1) & 0xFFFFFFFF
        w.put(f.pkt(0, ACK))
    w.close()
    return w.n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=("syn", "ooo"))
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--flows", type=int, help="distinct flows (syn: 1,000,000; ooo: 4)")
    ap.add_argument("--answered", type=float, default=0.1, help="syn: fraction of SYNs answered by SYN-ACK")
    ap.add_argument("--packets", type=int, default=500_000, help="ooo: packets in all")
    ap.add_argument("--window", type=int, default=64, help="ooo: segments shuffled together")
    ap.add_argument("--dup", type=float, default=0.05, help="ooo: fraction of segments sent twice")
    ap.add_argument("--hole", type=float, default=0.01, help="ooo: fraction of windows with a late segment")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    if a.kind == "syn":
        n = syn_flood(a.output, a.flows or 1_000_000, a.seed, a.answered)
    else:
        n = ooo_flood(a.output, a.flows or 4, a.packets, a.seed, a.window, a.dup, a.hole)
    print(f"wrote {a.output}: {n:,} packets in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
