"""The labelled tunnel recordings in captures/tunnels/ (made by captures/record-tunnels.sh): every
labelled flow is in its pcap, from its SYN, and is the tunnel it claims to be (SSH banners both
ways, or a TLS handshake both ways); every tunnel flow in a pcap is labelled; every class has at
least three runs, and a run never spans pcaps, so an evaluation can leave whole runs out.
As root, one short run of the recording script must produce a capture with an SSH flow."""

from __future__ import annotations

import csv
import os
import shutil
import socket
import subprocess
from collections import defaultdict
from pathlib import Path

import dpkt
import pytest

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
TUNNELS = CAPTURES / "tunnels"
SCRIPT = CAPTURES / "record-tunnels.sh"
LABELS = TUNNELS / "labels.csv"
COLUMNS = ["pcap", "client_port", "server_port", "class", "run", "carries", "cipher",
           "typing_delay_ms", "obscure_keystroke_timing", "detail"]
CLASSES = {"interactive", "forwarded-http", "forwarded-mail", "x11", "bulk", "socks", "tls-pop3", "tls-http"}
SERVER = "10.79.0.1"
MAX_TOTAL_BYTES = 3 * 1024 * 1024

ROWS = list(csv.DictReader(LABELS.open(encoding="utf-8"))) if LABELS.exists() else []


def is_tls(cls: str) -> bool:
    return cls.startswith("tls-")


def read_flows(path: Path) -> dict[tuple[int, int], dict]:
    """TCP flows of a pcap keyed by (client port, server port): whether the client's SYN was seen,
    the first payload bytes each way (the snap length keeps the first ~90 bytes of a segment)."""
    flows: dict[tuple[int, int], dict] = {}
    with path.open("rb") as fh:
        for _ts, buf in dpkt.pcap.Reader(fh):
            eth = dpkt.ethernet.Ethernet(buf)
            ip = eth.data
            if not isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)) or not isinstance(ip.data, dpkt.tcp.TCP):
                continue
            tcp = ip.data
            src = socket.inet_ntop(socket.AF_INET if isinstance(ip, dpkt.ip.IP) else socket.AF_INET6, ip.src)
            to_server = src != SERVER
            key = (tcp.sport, tcp.dport) if to_server else (tcp.dport, tcp.sport)
            f = flows.setdefault(key, {"syn": False, "c2s": b"", "s2c": b"", "packets": 0})
            f["packets"] += 1
            if to_server and tcp.flags & dpkt.tcp.TH_SYN and not tcp.flags & dpkt.tcp.TH_ACK:
                f["syn"] = True
            side = "c2s" if to_server else "s2c"
            if tcp.data and not f[side]:
                f[side] = bytes(tcp.data)
    return flows


_CACHE: dict[str, dict] = {}


def flows_of(pcap: str) -> dict:
    if pcap not in _CACHE:
        _CACHE[pcap] = read_flows(TUNNELS / pcap)
    return _CACHE[pcap]


def test_labels_exist_with_columns():
    assert LABELS.exists(), "run captures/record-tunnels.sh (as root) to record captures/tunnels/"
    with LABELS.open(encoding="utf-8") as fh:
        assert next(csv.reader(fh)) == COLUMNS
    assert ROWS


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r['pcap']}:{r['client_port']}")
def test_labelled_flow_is_in_its_pcap(row):
    flows = flows_of(row["pcap"])
    key = (int(row["client_port"]), int(row["server_port"]))
    assert key in flows, f"no flow {key} in {row['pcap']}"
    f = flows[key]
    assert f["syn"], "the capture starts before the connection: its SYN must be there"
    if is_tls(row["class"]):
        # TLS record layer, handshake: ClientHello one way, ServerHello the other
        assert f["c2s"][:1] == b"\x16" and f["c2s"][5:6] == b"\x01", f["c2s"][:8]
        assert f["s2c"][:1] == b"\x16" and f["s2c"][5:6] == b"\x02", f["s2c"][:8]
    else:
        assert f["c2s"].startswith(b"SSH-2.0-"), f["c2s"][:20]
        assert f["s2c"].startswith(b"SSH-2.0-OpenSSH"), f["s2c"][:20]
    assert f["packets"] >= 10


def test_every_pcap_and_every_flow_is_labelled():
    labelled: dict[str, set] = defaultdict(set)
    for r in ROWS:
        labelled[r["pcap"]].add((int(r["client_port"]), int(r["server_port"])))
    assert set(labelled) == {p.name for p in TUNNELS.glob("*.pcap")}
    for pcap, keys in labelled.items():
        with_syn = {k for k, f in flows_of(pcap).items() if f["syn"]}
        assert with_syn == keys, f"{pcap}: unlabelled or missing flows {with_syn ^ keys}"


def test_classes_have_three_runs_each():
    runs: dict[str, set] = defaultdict(set)
    for r in ROWS:
        runs[r["class"]].add(r["run"])
    assert set(runs) >= CLASSES, f"missing classes: {CLASSES - set(runs)}"
    for cls, ids in runs.items():
        assert len(ids) >= 3, f"{cls}: only {len(ids)} runs"


def test_a_run_is_one_pcap_of_one_class():
    where: dict[str, set] = defaultdict(set)
    for r in ROWS:
        where[r["run"]].add((r["pcap"], r["class"]))
        assert r["run"].startswith(r["class"] + "-")
    assert all(len(v) == 1 for v in where.values()), {k: v for k, v in where.items() if len(v) > 1}


def test_runs_vary():
    by_class: dict[str, list] = defaultdict(list)
    for r in ROWS:
        by_class[r["class"]].append(r)
    for cls, rows in by_class.items():
        assert len({r["server_port"] for r in rows}) >= 2, f"{cls}: one server port only"
        assert len({r["cipher"] for r in rows}) >= 2, f"{cls}: one cipher only"
    ssh_ciphers = {r["cipher"] for r in ROWS if not is_tls(r["class"])}
    assert {"chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com"} <= ssh_ciphers
    assert len({r["typing_delay_ms"] for r in by_class["interactive"]}) >= 2


def test_committed_set_is_small():
    total = sum(p.stat().st_size for p in TUNNELS.iterdir() if p.is_file())
    assert total < MAX_TOTAL_BYTES, f"captures/tunnels/ is {total} bytes"


@pytest.mark.root
@pytest.mark.slow
def test_recording_script_produces_an_ssh_flow(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root: record-tunnels.sh creates network namespaces and runs sshd and tcpdump")
    missing = [t for t in ("ip", "tcpdump", "ssh", "scp", "sftp", "ssh-keygen", "flock", "useradd")
               if not shutil.which(t)]
    if not Path("/usr/sbin/sshd").exists():
        missing.append("sshd")
    if missing:
        pytest.skip(f"missing tools: {' '.join(missing)} (bash captures/install-deps.sh installs them)")
    out = tmp_path / "tunnels"
    env = dict(os.environ, TUNNELS_OUT=str(out))
    # one short run: scp and sftp of small files over sshd on 22
    proc = subprocess.run(["bash", str(SCRIPT), "bulk:1"], env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    pcap = out / "bulk-r1.pcap"
    assert pcap.exists() and pcap.stat().st_size > 0
    rows = list(csv.DictReader((out / "labels.csv").open(encoding="utf-8")))
    assert [r["class"] for r in rows] == ["bulk", "bulk"]
    flows = read_flows(pcap)
    for r in rows:
        f = flows[(int(r["client_port"]), int(r["server_port"]))]
        assert f["syn"]
        assert f["c2s"].startswith(b"SSH-2.0-") and f["s2c"].startswith(b"SSH-2.0-OpenSSH")
