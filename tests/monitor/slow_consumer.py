"""A consumer of the core's live capture that is slower than the link: for test_live_ring.py.

    python -m tests.monitor.slow_consumer IFACE MAX_PENDING RING_KIB   (in the receiving netns)

Opens 2 fanout rings of RING_KIB KiB each on IFACE with an outbox of MAX_PENDING records per
ring, starts the threads, prints `ready`, and then takes nothing (the slowest possible sink)
until a line arrives on stdin. Then it drains: the first poll (whose size shows the outboxes
stayed bounded), every record until the threads are stopped, and prints one JSON object with the
rings' counters and what the records account for.
"""

from __future__ import annotations

import json
import sys
import time

from portwatch import _core
from portwatch.model import FlowRecord
from portwatch.monitor import reload as reloading
from portwatch.pipeline import Config

BLOCK = 64 << 10  # ring block: larger than any frame of the generated mix


def main() -> None:
    iface, max_pending, ring_kib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    config = Config()
    setup, error = reloading.load(config)
    assert setup is not None, error
    mon = _core.LiveMonitor([iface], setup.engine, setup.known_ports, config.core_settings(), workers=2,
                            block_size=BLOCK, block_count=max(2, (ring_kib << 10) // BLOCK), block_timeout_ms=10,
                            max_pending=max_pending, record_type=FlowRecord)
    mon.start()
    print("ready", flush=True)
    sys.stdin.readline()  # the sender is done: until now nothing was taken from the outboxes
    classified, finished = mon.poll(0)
    first_poll = len(classified) + len(finished)
    records = list(finished)
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < 1.0:  # until the threads have nothing more to give
        c, f = mon.poll(0.1)
        if c or f:
            quiet_since = time.monotonic()
        records += f
    mon.stop()
    _, f = mon.poll(0)
    records += f
    rings = mon.stats()
    print(json.dumps({
        "first_poll": first_poll,
        "rings": rings,
        "flow_records": len(records),
        "packets_in_records": sum(r.packets_c2s + r.packets_s2c for r in records),
        "flow_ids": len({r.flow_id for r in records}),
    }), flush=True)


if __name__ == "__main__":
    main()
