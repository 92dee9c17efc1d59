"""Acceptance: `portwatch monitor` on a veth, a real sshd on 443, a real ssh login.

Needs root (network namespaces, packet sockets); CI runs as root. Every test starts its own
monitor; the namespaces and sshd are shared by the module and always removed.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import MonitorProc, read_db, read_jsonl, wait_for
from .netns import NetnsPair

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, packet sockets)"),
]

NO_TUNNEL_POLICY = 'disabled = ["tunnel"]\n'


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsPair]:
    pair = NetnsPair(tmp_path_factory.mktemp("netns"))
    try:
        pair.start_sshd(443)
        yield pair
    finally:
        pair.close()


@pytest.fixture
def work() -> Iterator[Path]:
    # World-readable: the monitor runs as nobody and rereads the policy file there on SIGHUP.
    d = Path(tempfile.mkdtemp(prefix="pw-monitor-"))
    d.chmod(0o755)
    yield d
    for p in sorted(d.rglob("*"), reverse=True):
        p.unlink()
    d.rmdir()


def start(net: NetnsPair, work: Path, *extra: str) -> MonitorProc:
    mon = MonitorProc(
        ["-i", net.client_if, "--bpf", "tcp", "--jsonl", str(work / "events.jsonl"), "--db", str(work / "pw.db"),
         "--user", "nobody", "--no-view", *extra],
        work, netns=net.client_ns,
    )
    mon.wait_ready()
    return mon


def lines_of(work: Path, kind: str) -> list[dict]:
    return [e for e in read_jsonl(work / "events.jsonl") if e["type"] == kind]


def tunnel_in_jsonl(work: Path) -> list[dict]:
    return [e for e in lines_of(work, "finding") if e["kind"] == "tunnel" and e["dst_port"] == 443]


def tunnel_in_db(work: Path) -> list[tuple]:
    return read_db(work / "pw.db", "SELECT flow_id, protocol, dst_port FROM findings WHERE kind = 'tunnel'")


def test_tunnel_finding_within_5s_of_login_while_running(net: NetnsPair, work: Path) -> None:
    mon = start(net, work)
    try:
        result = net.ssh("true")
        assert result.returncode == 0, result.stderr
        login_done = time.monotonic()
        found = wait_for(lambda: tunnel_in_jsonl(work), timeout=5)
        rows = wait_for(lambda: tunnel_in_db(work), timeout=max(0.0, 5 - (time.monotonic() - login_done)))
        assert time.monotonic() - login_done <= 5.5
        assert mon.proc.poll() is None, "the monitor must still be running"
        assert found, f"no tunnel finding in the JSONL file:\n{mon.log()}"
        assert found[0]["protocol"] == "ssh" and found[0]["dst_ip"] == "10.77.1.1"
        assert rows and rows[0][1:] == ("ssh", 443)
        assert rows[0][0] == found[0]["flow_id"]
        classified = [e for e in lines_of(work, "classified") if e["flow_id"] == found[0]["flow_id"]]
        assert classified and classified[0]["meta"]["ssh_client"].startswith("SSH-2.0-OpenSSH")
    finally:
        assert mon.stop() == 0, mon.log()


def test_privilege_drop_to_nobody(net: NetnsPair, work: Path) -> None:
    mon = start(net, work)
    try:
        status = Path(f"/proc/{mon.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        assert fields["Uid"].split() == ["65534"] * 4, fields["Uid"]
        assert fields["Gid"].split() == ["65534"] * 4, fields["Gid"]
        assert fields["Groups"].split() in ([], ["65534"]), fields["Groups"]
        assert int(fields["CapEff"], 16) == 0
        # ...and the socket opened as root still captures, the files opened as root still take writes.
        assert net.ssh("true").returncode == 0
        assert wait_for(lambda: tunnel_in_db(work), timeout=5)
    finally:
        assert mon.stop() == 0, mon.log()


def test_sighup_policy_change_takes_effect(net: NetnsPair, work: Path) -> None:
    policy = work / "policy.toml"
    policy.write_text(NO_TUNNEL_POLICY)
    policy.chmod(0o644)
    mon = start(net, work, "--policy", str(policy))
    try:
        assert net.ssh("true").returncode == 0
        assert wait_for(lambda: [e for e in lines_of(work, "classified") if e["protocol"] == "ssh"], timeout=5)
        time.sleep(0.3)
        assert not tunnel_in_jsonl(work)
        policy.write_text("# tunnels reported again\n")
        mon.signal(signal.SIGHUP)
        reloads = wait_for(lambda: lines_of(work, "reload"), timeout=5)
        assert reloads and reloads[0]["ok"] is True, mon.log()
        assert any("disabled" in c for c in reloads[0]["changes"]), reloads
        assert net.ssh("true").returncode == 0
        assert wait_for(lambda: tunnel_in_jsonl(work), timeout=5), mon.log()
        assert mon.proc.poll() is None
    finally:
        assert mon.stop() == 0, mon.log()


def test_sighup_broken_policy_keeps_the_old_one(net: NetnsPair, work: Path) -> None:
    policy = work / "policy.toml"
    policy.write_text(NO_TUNNEL_POLICY)
    policy.chmod(0o644)
    mon = start(net, work, "--policy", str(policy))
    try:
        policy.write_text("disabled = [\n")  # invalid TOML
        mon.signal(signal.SIGHUP)
        reloads = wait_for(lambda: lines_of(work, "reload"), timeout=5)
        assert reloads and reloads[0]["ok"] is False, mon.log()
        assert "invalid TOML" in reloads[0]["error"]
        assert "reload failed" in mon.log()
        assert mon.proc.poll() is None, "a bad file must not stop the monitor"
        assert net.ssh("true").returncode == 0
        ssh_flows = wait_for(lambda: [e for e in lines_of(work, "classified") if e["protocol"] == "ssh"], timeout=5)
        assert ssh_flows, mon.log()
        time.sleep(0.5)
        assert not tunnel_in_jsonl(work), "the old policy (tunnel disabled) must still apply"
    finally:
        assert mon.stop() == 0, mon.log()


def test_sigterm_flushes_every_flow_and_finding(net: NetnsPair, work: Path) -> None:
    mon = start(net, work)
    held = None
    try:
        for _ in range(3):
            assert net.ssh("true").returncode == 0
        held = net.ssh("sleep 20", background=True)  # still open when SIGTERM arrives
        assert wait_for(lambda: len(tunnel_in_jsonl(work)) >= 4, timeout=5), mon.log()
        emitted = {e["flow_id"] for e in tunnel_in_jsonl(work)}
        mon.signal(signal.SIGTERM)
        assert mon.proc.wait(15) == 0, mon.log()
    finally:
        if held is not None:
            held.kill()
            held.wait()
        mon.stop()
    events = read_jsonl(work / "events.jsonl")
    classified = {e["flow_id"] for e in events if e["type"] == "classified"}
    ended = {e["flow_id"] for e in events if e["type"] == "flow"}
    assert emitted <= classified
    assert classified <= ended, "every classified flow gets its final record at shutdown"
    # Flows that ended on the wire carry end_reason "closed"; the one flushed at shutdown has none.
    open_at_stop = [e for e in events if e["type"] == "flow" and "end_reason" not in e["meta"]]
    assert [e["flow_id"] for e in open_at_stop if e["flow_id"] in emitted], "the open ssh session was flushed"
    db = work / "pw.db"
    assert read_db(db, "PRAGMA integrity_check") == [("ok",)]
    assert read_db(db, "PRAGMA journal_mode") == [("wal",)]
    db_findings = {r[0] for r in read_db(db, "SELECT flow_id FROM findings WHERE kind = 'tunnel'")}
    assert db_findings == emitted
    db_flows = {r[0] for r in read_db(db, "SELECT flow_id FROM flows")}
    assert db_flows == ended
    assert "stopped (SIGTERM)" in mon.log()


def test_kernel_filter_drops_what_it_excludes(net: NetnsPair, work: Path) -> None:
    mon = MonitorProc(["-i", net.client_if, "--bpf", "udp", "--jsonl", str(work / "events.jsonl"),
                       "--user", "nobody", "--no-view"], work, netns=net.client_ns)
    mon.wait_ready()
    try:
        assert net.ssh("true").returncode == 0
        mon.signal(signal.SIGINT)
        assert mon.proc.wait(10) == 0, mon.log()
    finally:
        mon.stop()
    assert read_jsonl(work / "events.jsonl") == []
    assert "stopped (SIGINT)" in mon.log() and " 0 packets" in mon.log(), mon.log()


def promiscuity(net: NetnsPair) -> int:
    out = subprocess.run(["ip", "-d", "-n", net.client_ns, "link", "show", net.client_if], capture_output=True,
                         text=True, check=True).stdout
    m = re.search(r"promiscuity (\d+)", out)
    assert m, out
    return int(m.group(1))


def test_two_interfaces_and_promiscuous_mode(net: NetnsPair, work: Path) -> None:
    mon = MonitorProc(["-i", net.client_if, "-i", "lo", "--jsonl", str(work / "events.jsonl"), "--user", "nobody",
                       "--no-view"], work, netns=net.client_ns)
    mon.wait_ready()
    try:
        assert promiscuity(net) == 1
        assert net.ssh("true").returncode == 0
        assert wait_for(lambda: tunnel_in_jsonl(work), timeout=5), mon.log()
    finally:
        assert mon.stop() == 0
    assert promiscuity(net) == 0, "the membership goes with the socket"
    mon = MonitorProc(["-i", net.client_if, "--no-promisc", "--duration", "1.5", "--user", "nobody", "--no-view"],
                      work, netns=net.client_ns)
    mon.wait_ready()
    try:
        assert promiscuity(net) == 0
        assert mon.proc.poll() is None, "checked while the monitor held its socket"
        assert mon.proc.wait(10) == 0, "--duration stops the monitor by itself"
    finally:
        mon.stop()
    assert "stopped (duration)" in mon.log()


def test_interface_down_and_up_again(net: NetnsPair, work: Path) -> None:
    mon = start(net, work)
    link = ["ip", "-n", net.client_ns, "link", "set", net.client_if]
    try:
        subprocess.run([*link, "down"], check=True)
        time.sleep(0.5)
        assert mon.proc.poll() is None, mon.log()
        subprocess.run([*link, "up"], check=True)
        # veth needs a moment (and the peer) before traffic flows again
        assert wait_for(lambda: net.ssh("true").returncode == 0, timeout=10, interval=0.2)
        assert wait_for(lambda: tunnel_in_jsonl(work), timeout=5), mon.log()
        assert mon.proc.poll() is None
    finally:
        subprocess.run([*link, "up"], check=False)
        assert mon.stop() == 0, mon.log()
    assert "Network is down" in mon.log(), "the kernel's ENETDOWN is logged"
    assert "internal error" not in mon.log(), mon.log()
