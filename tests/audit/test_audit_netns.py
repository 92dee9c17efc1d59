"""Acceptance: a real sshd on port 443 inside a network namespace is found from the host side by
`portwatch audit --probe`, run in that namespace, as SSH-on-443 (port-mismatch)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from portwatch.audit.sockets import parse_proc_net
from portwatch.services import fallback_path

SSHD = "/usr/sbin/sshd"

pytestmark = [pytest.mark.root, pytest.mark.slow]


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace")
    if not (Path(SSHD).exists() and shutil.which("ssh-keygen") and shutil.which("ip")):
        pytest.fail("sshd, ssh-keygen and ip must be installed (Debian: openssh-server, iproute2)")


@pytest.fixture
def netns():
    _need_root()
    name = f"pwaudit-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def _listening(pid: int, port: int) -> bool:
    # /proc/PID/net shows the sockets of that process's namespace, which the host cannot see otherwise.
    try:
        text = Path(f"/proc/{pid}/net/tcp").read_text()
    except OSError:
        return False
    listeners, _ = parse_proc_net(text, "tcp")
    return any(lst.port == port for lst in listeners)


@pytest.fixture
def sshd_443(netns, tmp_path):
    key = tmp_path / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    cfg = tmp_path / "sshd_config"
    cfg.write_text(f"HostKey {key}\nPidFile {tmp_path / 'sshd.pid'}\nListenAddress 127.0.0.1\n"
                   "UsePAM no\nStrictModes no\nPasswordAuthentication no\n")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    proc = subprocess.Popen(["ip", "netns", "exec", netns, SSHD, "-D", "-e", "-f", str(cfg), "-p", "443"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not _listening(proc.pid, 443):
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode(errors="replace") if proc.poll() is not None else "timeout"
                pytest.fail(f"sshd did not start listening on 443: {err}")
            time.sleep(0.05)
        yield netns, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_sshd_on_443_is_a_port_mismatch(sshd_443):
    netns, pid = sshd_443
    started = time.monotonic()
    run = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-m", "portwatch", "audit", "--probe", "--format", "jsonl",
         "--services", str(fallback_path()), "--probe-timeout", "2"],
        capture_output=True, text=True, timeout=60,
    )
    elapsed = time.monotonic() - started
    records = [json.loads(line) for line in run.stdout.splitlines()]
    listeners = [r for r in records if r["meta"].get("audit") == "listener" and r["dst_port"] == 443]
    assert len(listeners) == 1, run.stdout + run.stderr
    rec = listeners[0]
    assert rec["transport"] == "tcp"
    assert rec["dst_ip"] == "127.0.0.1"
    assert rec["assigned"] == ["https"]
    assert rec["protocol"] == "ssh"
    assert rec["confidence"] >= 0.9
    assert rec["meta"]["probe"] == "banner"  # sshd speaks first: no hello was sent
    assert rec["meta"]["ssh_server"].startswith("SSH-2.0-OpenSSH")
    assert rec["meta"]["process"] == "sshd"
    assert rec["meta"]["pid"] == pid
    assert rec["meta"]["user"] == "root"
    kinds = {f["kind"]: f for f in rec["findings"]}
    assert "port-mismatch" in kinds
    assert kinds["port-mismatch"]["severity"] == "high"
    assert "SSH" in kinds["port-mismatch"]["message"] and "https" in kinds["port-mismatch"]["message"]
    assert "tunnel" in kinds  # SSH on 443 is also the classic egress tunnel
    assert "root-service" not in kinds  # sshd needs root to become the user who logs in
    assert run.returncode == 1  # a high finding, --fail-on high
    assert elapsed < 30
