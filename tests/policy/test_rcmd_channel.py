"""rsh's stderr channel (rshd(8), rcmd(3)) against `privileged-source-port` and `unassigned-port`.

The real recording is captures/rsh-514.pcap (tests/test_trusted_ports_captures.py); these are the
near misses around the rule: both ends in rresvport's 512..1023 with nothing recognised is the
channel; anything else from a reserved port is still a finding.
"""

from __future__ import annotations

from findkit import findings, kinds, record

from portwatch.policy.rules import rcmd_stderr_channel


def test_reserved_to_reserved_unknown_is_the_stderr_channel() -> None:
    rec = record("unknown", 1021, cport=1022, c2s=10, s2c=0)
    assert rcmd_stderr_channel(rec)
    found = kinds(findings(rec))
    assert "privileged-source-port" not in found and found.get("unassigned-port") == "info"


def test_a_recognised_protocol_between_reserved_ports_is_still_a_finding() -> None:
    # a root tool binding 600 to reach IMAPS: TLS is recognised, so this is no stderr channel
    rec = record("tls", 993, cport=600)
    assert not rcmd_stderr_channel(rec)
    assert kinds(findings(rec)).get("privileged-source-port") == "medium"


def test_below_rresvport_range_is_still_a_finding() -> None:
    # source port 53 (the firewall-slipping classic) to an unknown service on a reserved port
    rec = record("unknown", 700, cport=53, c2s=10, s2c=10)
    assert not rcmd_stderr_channel(rec)
    found = kinds(findings(rec))
    assert found.get("privileged-source-port") == "medium" and found.get("unassigned-port") == "low"


def test_udp_between_reserved_ports_is_not_the_channel() -> None:
    assert not rcmd_stderr_channel(record("unknown", 700, "udp", cport=800))
