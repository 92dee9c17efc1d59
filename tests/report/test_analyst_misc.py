"""Issue 18 item 13 (the analyze and services halves): `services 99999` is a usage error; -q leaves
on stdout only what its help says."""

from __future__ import annotations

import re

from _kit import CAPTURES, SERVICES, run


def test_services_port_out_of_range_is_a_usage_error():
    res = run("services", *SERVICES, "99999")
    assert res.exit_code == 2
    assert "0..65535" in res.stderr
    assert res.stdout == ""


def test_services_valid_port_still_answers():
    res = run("services", *SERVICES, "443")
    assert res.exit_code == 0 and "443/tcp" in res.stdout


def test_quiet_prints_the_findings_only():
    res = run("analyze", *SERVICES, "-q", str(CAPTURES / "ssh-443.pcap"))
    assert res.exit_code == 1
    assert "tunnel" in res.stdout and "port-mismatch" in res.stdout
    # no protocol table, no totals per kind, no capture counts ("64 packets, 1 flow from ssh-443.pcap"); the
    # word "packets" alone may be in a finding's explanation (the tunnel message counts client packets)
    for absent in ("Flows per protocol", "per kind and severity", " from ssh-443.pcap"):
        assert absent not in res.stdout
    assert not re.search(r"^[\d,]+ packets?, [\d,]+ flows? from ", res.stdout, re.M)
    assert res.stderr == ""
    help_text = run("analyze", "--help").stdout
    assert "findings only" in " ".join(help_text.split())
