"""Record tests/monitor/data/ssh-443.pcap: one real OpenSSH login to a server on port 443.

Run as root from the repository root: `python -m tests.monitor.record_capture`. It builds the
same namespaces as the live tests (tests/monitor/netns.py), captures on the client's veth with
tcpdump and logs in once with `ssh ... true`.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from .netns import NetnsPair

OUT = Path(__file__).parent / "data" / "ssh-443.pcap"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        net = NetnsPair(Path(tmp), tag="r")
        try:
            net.start_sshd(443)
            dump = subprocess.Popen(["ip", "netns", "exec", net.client_ns, "tcpdump", "-U", "-s", "0", "-i",
                                     net.client_if, "-w", str(OUT), "tcp port 443"], stderr=subprocess.DEVNULL)
            time.sleep(1)
            assert net.ssh("true").returncode == 0
            time.sleep(1)
            dump.terminate()
            dump.wait()
        finally:
            net.close()
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
