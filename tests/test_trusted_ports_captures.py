"""`privileged-source-port` on real recordings (issue 19, item 6; captures/record.sh, see captures/README.md).

http-privport-80.pcap: curl bound to port 999 (root only) fetching from nginx, then curl from an
ephemeral port. rsh-514.pcap: netkit rsh (rcmd(3): reserved source port, and in.rshd connecting
back from its reserved port to the client's for stderr) twice, then a python client sending rsh's
first bytes from an unprivileged port, which in.rshd refuses.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from portwatch.model import FlowRecord
from portwatch.pipeline import Config, Setup, analyze_path
from portwatch.services import fallback_path

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
CONFIG = Config(services_path=str(fallback_path()))  # Debian's file, as the labels were written
KIND = "privileged-source-port"


@cache
def records(name: str) -> tuple[FlowRecord, ...]:
    out: list[FlowRecord] = []
    analyze_path(str(CAPTURES / name), Setup.load(CONFIG), CONFIG, out.append)
    assert out
    return tuple(out)


def found(rec: FlowRecord, kind: str = KIND) -> list[tuple[str, str]]:
    return [(f.severity, f.message) for f in rec.findings if f.kind == kind]


def test_http_client_from_port_999_is_a_finding() -> None:
    (rec,) = [r for r in records("http-privport-80.pcap") if r.src_port == 999]
    assert rec.protocol == "http" and rec.dst_port == 80 and rec.orientation == "handshake"
    ((severity, message),) = found(rec)
    assert severity == "medium"  # default-policy.toml
    assert "client 10.77.0.2:999 connected to 10.77.0.1:80 on 80/tcp (/etc/services: http)" in message
    assert "from privileged port 999" in message and "only root can bind a port below 1024" in message
    assert "trusts no source port" in message


def test_ordinary_http_client_is_no_finding() -> None:
    (rec,) = [r for r in records("http-privport-80.pcap") if r.src_port >= 1024]
    assert rec.protocol == "http"
    assert rec.findings == []


def test_rsh_from_a_reserved_port_is_the_protocol_working() -> None:
    sessions = [r for r in records("rsh-514.pcap") if r.dst_port == 514 and r.src_port < 1024]
    assert len(sessions) == 2 and all(r.protocol == "rsh" for r in sessions)
    assert all(512 <= r.src_port < 1024 for r in sessions)  # rresvport(3)
    assert not any(found(r) for r in sessions)
    assert all(found(r, "insecure-protocol") for r in sessions)  # rsh itself still is


def test_rsh_stderr_channel_is_no_finding() -> None:
    # in.rshd connects from its reserved port to the one the client named: server-to-client, both reserved
    back = [r for r in records("rsh-514.pcap") if r.dst_port != 514]
    assert len(back) == 2
    for rec in back:
        assert rec.src_ip == "10.77.0.1" and 512 <= rec.src_port < 1024 and 512 <= rec.dst_port < 1024
        assert rec.protocol == "unknown" and not found(rec)
        assert all(f.severity == "info" for f in rec.findings), rec.findings
    carried = [f.message for r in back for f in r.findings if f.kind == "unassigned-port"]
    assert carried and all("stderr channel of an rsh session" in m for m in carried)  # the one with bytes


def test_rsh_from_an_unprivileged_port_is_a_finding() -> None:
    (rec,) = [r for r in records("rsh-514.pcap") if r.dst_port == 514 and r.src_port >= 1024]
    assert rec.protocol == "rsh" and rec.bytes_s2c == 0  # in.rshd refused it without a word
    ((severity, message),) = found(rec)
    assert severity == "low"
    assert f"rsh client 10.77.0.2:{rec.src_port} reached 10.77.0.1:514 on 514/tcp (/etc/services: shell)" in message
    assert f"from unprivileged port {rec.src_port}" in message
    assert "rshd trusts only clients on ports below 1024" in message


def test_severity_follows_the_site_policy(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[severity]\nprivileged-source-port = "high"\n')
    config = Config(services_path=str(fallback_path()), policy_path=str(policy))
    out: list[FlowRecord] = []
    analyze_path(str(CAPTURES / "http-privport-80.pcap"), Setup.load(config), config, out.append)
    assert [f.severity for r in out for f in r.findings if f.kind == KIND] == ["high"]
