"""Two network namespaces joined by a veth pair, a real sshd on port 443 in one of them.

    client ns  <pfx>c : <pfx>b 10.77.1.2/24  ──veth──  <pfx>a 10.77.1.1/24 : <pfx>s  server ns (sshd :443)

Names carry the test process id so parallel runs never collide; `close()` always removes both
namespaces (which deletes the veth pair with them) and stops sshd.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

SERVER_IP = "10.77.1.1"
CLIENT_IP = "10.77.1.2"
SSHD = "/usr/sbin/sshd"


def run(*args: str, check: bool = True, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=timeout)


class NetnsPair:
    def __init__(self, tmp: Path, tag: str = "") -> None:
        pfx = f"pw{os.getpid() % 100000}{tag}"
        self.server_ns, self.client_ns = f"{pfx}s", f"{pfx}c"
        self.server_if, self.client_if = f"{pfx}a", f"{pfx}b"
        self.tmp = tmp
        self.sshd: subprocess.Popen | None = None
        self.key = tmp / "id_ed25519"
        try:
            self._create()
        except BaseException:
            self.close()
            raise

    def _create(self) -> None:
        run("ip", "netns", "add", self.server_ns)
        run("ip", "netns", "add", self.client_ns)
        run("ip", "link", "add", self.server_if, "netns", self.server_ns, "type", "veth",
            "peer", "name", self.client_if, "netns", self.client_ns)
        ends = ((self.server_ns, self.server_if, SERVER_IP), (self.client_ns, self.client_if, CLIENT_IP))
        for ns, ifname, ip in ends:
            run("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", ifname)
            run("ip", "-n", ns, "link", "set", ifname, "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")

    def client(self, *args: str, **kw) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
        return run("ip", "netns", "exec", self.client_ns, *args, **kw)

    def start_sshd(self, port: int = 443) -> None:
        host_key = self.tmp / "ssh_host_ed25519_key"
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key))
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key))
        (self.tmp / "authorized_keys").write_text((self.tmp / "id_ed25519.pub").read_text())
        cfg = self.tmp / "sshd_config"
        cfg.write_text(
            f"Port {port}\nListenAddress {SERVER_IP}\nHostKey {host_key}\nPidFile {self.tmp}/sshd.pid\n"
            f"AuthorizedKeysFile {self.tmp}/authorized_keys\nPermitRootLogin prohibit-password\n"
            "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PrintMotd no\n"
        )
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.sshd = subprocess.Popen(
            ["ip", "netns", "exec", self.server_ns, SSHD, "-D", "-e", "-f", str(cfg)],
            stdout=subprocess.DEVNULL, stderr=open(self.tmp / "sshd.log", "w"),  # noqa: SIM115
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            out = run("ip", "netns", "exec", self.server_ns, "ss", "-Hltn", f"sport = :{port}", check=False).stdout
            if out.strip():
                return
            if self.sshd.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"sshd did not start: {(self.tmp / 'sshd.log').read_text()}")

    def ssh(self, command: str = "true", port: int = 443, background: bool = False):  # type: ignore[no-untyped-def]
        args = [
            "ip", "netns", "exec", self.client_ns, "ssh", "-i", str(self.key), "-p", str(port),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR", f"root@{SERVER_IP}", command,
        ]
        if background:
            return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        return run(*args, timeout=20)

    def close(self) -> None:
        if self.sshd is not None and self.sshd.poll() is None:
            self.sshd.terminate()
            try:
                self.sshd.wait(5)
            except subprocess.TimeoutExpired:
                self.sshd.kill()
        for ns in (self.client_ns, self.server_ns):
            run("ip", "netns", "del", ns, check=False)
