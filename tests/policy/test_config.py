"""Site policy files: what each key does, and errors that name file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest
from findkit import context, findings, kinds, record

from portwatch.policy.config import PolicyError, load_policy

SSH_META = {"ssh_server": "SSH-2.0-OpenSSH_9.2p1", "ssh_client": "SSH-2.0-OpenSSH_9.2p1"}


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "site.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_builtin_policy_loads_with_every_kind_graded() -> None:
    pol = load_policy()
    assert pol.is_egress(443, "tcp") and pol.is_egress(53, "udp") and not pol.is_egress(22, "tcp")
    assert pol.severity["tunnel"] == "high"
    assert "chargen" in pol.insecure_services and "finger" in pol.insecure_services


def test_allow_a_protocol_port_pair_for_a_cidr_only(tmp_path: Path) -> None:
    ctx = context(write(tmp_path, '[[allow]]\nprotocol = "ssh"\nport = 443\nhosts = ["192.0.2.0/24"]\n'))
    assert findings(record("ssh", 443, server="192.0.2.10", meta=SSH_META), ctx) == []
    assert kinds(findings(record("ssh", 443, server="203.0.113.5", meta=SSH_META), ctx))["tunnel"] == "high"


def test_allow_globally_for_some_kinds_and_for_clients(tmp_path: Path) -> None:
    text = ('[[allow]]\nprotocol = "ssh"\nports = [443]\nkinds = ["tunnel"]\n'
            '[[allow]]\nclients = ["198.51.100.0/24"]\nkinds = ["port-mismatch"]\n')
    ctx = context(write(tmp_path, text))
    assert findings(record("ssh", 443, meta=SSH_META), ctx) == []  # tunnel allowed, mismatch by client
    fs = findings(record("ssh", 443, client="10.1.1.1", meta=SSH_META), ctx)
    assert kinds(fs) == {"port-mismatch": "high"}


def test_egress_list_decides_tunnel(tmp_path: Path) -> None:
    ctx = context(write(tmp_path, "[egress]\ntcp = [2222]\n"))
    assert kinds(findings(record("ssh", 443, meta=SSH_META), ctx)) == {"port-mismatch": "high"}
    assert kinds(findings(record("ssh", 2222, meta=SSH_META), ctx)) == {"tunnel": "high", "unassigned-port": "info"}


def test_severity_override_disabled_kinds_and_min_severity(tmp_path: Path) -> None:
    text = 'min_severity = "medium"\ndisabled = ["tunnel"]\n[severity]\nport-mismatch = "low"\n'
    ctx = context(write(tmp_path, text))
    # mismatch overridden to low, then below the floor; tunnel disabled
    assert findings(record("ssh", 443, meta=SSH_META), ctx) == []
    ctx = context(write(tmp_path, '[severity]\ninsecure-protocol = "high"\n'))
    assert kinds(findings(record("telnet", 23), ctx)) == {"insecure-protocol": "high"}


def test_site_can_add_and_withdraw_insecure_services_and_protocol_services(tmp_path: Path) -> None:
    text = ('[insecure_services]\nfinger = ""\nsnmp = "community strings cross in clear"\n'
            '[protocol_services]\nhttp = ["mysql"]\n')
    ctx = context(write(tmp_path, text))
    assert findings(record("unknown", 79, meta={"entropy_server": {"looks_encrypted": False}}), ctx) == []
    assert kinds(findings(record("unknown", 161, "udp"), ctx)) == {"insecure-protocol": "medium"}
    assert findings(record("http", 3306), ctx) == []


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ('min_severity = "loud"\n', 1, "min_severity"),
        ('\n\n[severity]\ntunnel = "high"\nmismatch = "low"\n', 5, "severity.mismatch"),
        ('[severity]\ntunnel = "urgent"\n', 2, "severity.tunnel"),
        ('[egress]\ntcp = [80, 70000]\n', 2, "egress.tcp"),
        ('[egress]\nsctp = [80]\n', 2, "egress.sctp"),
        ('disabled = ["tunnel", "nope"]\n', 1, "disabled"),
        ('[[allow]]\nport = 22\n\n[[allow]]\nprotocol = "ssh"\nport = "443"\n', 6, "allow[1].port"),
        ('[[allow]]\nhosts = ["10.0.0.0/33"]\n', 2, "allow[0].hosts"),
        ('[[allow]]\nprotocl = "ssh"\n', 2, "allow[0].protocl"),
        ('colour = "red"\n', 1, "colour"),
        ('[severity\n', 1, ""),
    ],
)
def test_bad_policy_is_one_line_naming_file_line_and_key(tmp_path: Path, text: str, line: int, key: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}:{line}: ")
    if key:
        assert f": {key}: " in msg


def test_unreadable_policy_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as err:
        load_policy(tmp_path / "missing.toml")
    assert "missing.toml" in str(err.value) and "cannot read" in str(err.value)


def test_negotiated_protocols_are_at_home_on_high_ports(tmp_path: Path) -> None:
    tftp = record("tftp", 43139, "udp", meta={"evidence": "client bytes x; server bytes y"})
    assert kinds(findings(tftp), "low") == {}
    ctx = context(write(tmp_path, "negotiated = []\n"))
    assert kinds(findings(tftp, ctx), "low") == {"unassigned-port": "low"}


def test_dns_allowed_domains_are_not_tunnels(tmp_path: Path) -> None:
    name = "mfzwizltoq2gk3tfmnxw2ylsnruxg3thmfzwizltoq2gk3tfmnxw2.av.vendor-example.com."
    rec = record("dns", 53, "udp", meta={"dns_query": name, "dns_qtype": "A"}, packets=(1, 1))
    assert kinds(findings(rec)) == {"dns-tunnel": "low"}
    ctx = context(write(tmp_path, 'dns_allowed = ["vendor-example.com."]\n'))
    assert findings(rec, ctx) == []


def test_insecure_versions_are_the_policys_and_a_site_can_add_or_withdraw_one(tmp_path: Path) -> None:
    tls10 = record("tls", 443, meta={"tls_version": "1.2", "tls_version_server": "1.0"})
    assert kinds(findings(tls10)) == {"insecure-protocol": "medium"}
    assert "TLS 1.0 (RFC 8996" in findings(tls10)[0].message
    # What the client offered is not what the server chose.
    assert findings(record("tls", 443, meta={"tls_version": "1.0", "tls_version_server": "1.2"})) == []
    text = '[insecure_versions.tls_version_server]\n"1.0" = ""\n"1.2" = "not here"\n'
    ctx = context(write(tmp_path, text))
    assert findings(tls10, ctx) == []
    assert kinds(findings(record("tls", 443, meta={"tls_version_server": "1.2"}), ctx)) == {
        "insecure-protocol": "medium"}


def test_insecure_settings_are_the_policys_and_a_site_can_withdraw_one(tmp_path: Path) -> None:
    open_vnc = record("vnc", 5900, meta={"rfb_security": ["none"], "rfb_auth": "none"})
    assert kinds(findings(open_vnc), "low") == {"insecure-protocol": "high"}
    assert "no authentication" in findings(open_vnc)[-1].message
    chosen = record("vnc", 5900, meta={"rfb_security": ["none", "vnc-auth"], "rfb_security_choice": "none"})
    assert kinds(findings(chosen), "low") == {"insecure-protocol": "high"}
    assert kinds(findings(record("vnc", 5900, meta={"rfb_auth": "success"})), "low") == {}
    ctx = context(write(tmp_path, '[insecure_settings.rfb_auth]\n"none" = ""\n'))
    assert kinds(findings(open_vnc, ctx), "low") == {}


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ('[insecure_settings]\nrfb_auth = "none"\n', 2, "insecure_settings.rfb_auth"),
        ("insecure_versions = 3\n", 1, "insecure_versions"),
        ('[insecure_versions]\ntls_version_server = "1.0"\n', 2, "insecure_versions.tls_version_server"),
        ('[insecure_versions.tls_version_server]\n"1.0" = 1\n', 2, 'insecure_versions.tls_version_server.1.0'),
    ],
)
def test_bad_insecure_versions_name_the_line(tmp_path: Path, text: str, line: int, key: str) -> None:
    with pytest.raises(PolicyError) as e:
        load_policy(write(tmp_path, text))
    assert (e.value.line, e.value.key) == (line, key)
