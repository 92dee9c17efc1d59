"""Findings from host facts: the shared catalogue kinds and the audit's own."""

from __future__ import annotations

from pathlib import Path

import pytest

from portwatch.audit.host import gather
from portwatch.audit.inetd import parse_inetd
from portwatch.audit.model import HostFacts, Listener
from portwatch.audit.rules import audit_records, tcpd_convention
from portwatch.pipeline import Config, Setup
from portwatch.services import fallback_path

ROOT = Path(__file__).parent / "data" / "root"


@pytest.fixture(scope="module")
def setup() -> Setup:
    return Setup.load(Config(services_path=str(fallback_path())))


def _findings(records):
    out: dict[tuple[str, str, str], list] = {}
    for r in records:
        key = (r.meta["audit"], str(r.meta.get("service", r.meta.get("process", ""))), r.transport)
        out.setdefault(key, []).extend(r.findings)
    return out


def _kinds(found, key):
    return sorted(f.kind for f in found.get(key, []))


def test_sample_image_findings(setup):
    facts = gather(ROOT, with_sockets=False)
    records = audit_records(facts, setup.ctx, 1000.0)
    found = _findings(records)
    # inetd internal services: DoS vectors; UDP echo/chargen are reflectors, hence high.
    assert _kinds(found, ("inetd", "echo", "tcp")) == ["insecure-protocol"]
    assert [f.severity for f in found["inetd", "echo", "udp"]] == ["high"]
    assert [f.severity for f in found["inetd", "chargen", "udp"]] == ["high"]
    assert "CVE-1999-0103" in found["inetd", "chargen", "udp"][0].message
    assert _kinds(found, ("inetd", "daytime", "tcp")) == ["insecure-protocol"]
    # Insecure services; telnetd needs root, so no root-service for it.
    telnet = found["inetd", "telnet", "tcp"]
    assert [(f.kind, f.severity) for f in telnet] == [("insecure-protocol", "high")]
    assert "inetd.conf:25" in telnet[0].message
    assert _kinds(found, ("xinetd", "login", "tcp")) == ["insecure-protocol"]
    # finger as root: insecure and needlessly root; wrapped, so not unwrapped-service.
    assert _kinds(found, ("inetd", "finger", "tcp")) == ["insecure-protocol", "root-service"]
    # tftp in inetd: not through tcpd although the file's convention is tcpd; as nobody: fine.
    assert _kinds(found, ("inetd", "tftp", "udp")) == ["insecure-protocol", "unwrapped-service"]
    # tftp in xinetd: root, but xinetd does its own libwrap, so no unwrapped-service.
    assert _kinds(found, ("xinetd", "tftp", "udp")) == ["insecure-protocol", "root-service"]
    assert _kinds(found, ("inetd", "talk", "udp")) == ["insecure-protocol"]
    # A local daemon unknown to /etc/services: inetd cannot start it, and it skips tcpd.
    assert _kinds(found, ("inetd", "mydaemon", "tcp")) == ["unknown-service", "unwrapped-service"]
    assert _kinds(found, ("xinetd", "gopher-proxy", "tcp")) == ["unknown-service"]
    # UNLISTED on a trusted port: deliberately absent from /etc/services, so unassigned-port, not unknown.
    assert _kinds(found, ("xinetd", "backdoor", "tcp")) == ["unassigned-port"]
    # Nothing to say about these.
    assert _kinds(found, ("inetd", "auth", "tcp")) == []
    assert _kinds(found, ("inetd", "pop3", "tcp")) == []


def test_record_shape(setup):
    facts = gather(ROOT, with_sockets=False)
    rec = next(r for r in audit_records(facts, setup.ctx, 1000.0) if r.meta.get("service") == "auth")
    d = rec.as_dict()
    assert (d["dst_ip"], d["dst_port"], d["transport"], d["assigned"]) == ("127.0.0.1", 113, "tcp", ["auth"])
    assert (d["src_ip"], d["src_port"], d["orientation"], d["protocol"]) == ("", 0, "audit", "unknown")
    assert d["meta"]["file"].endswith("etc/inetd.conf") and d["meta"]["line"] == 51
    assert d["meta"]["daemon"] == "in.identd" and d["meta"]["wrapped"] is True and d["meta"]["group"] == "identd"


def test_no_tcpd_convention_no_unwrapped_findings(setup):
    conf = parse_inetd("ftp stream tcp nowait root /usr/sbin/in.ftpd in.ftpd\n"
                       "tftp dgram udp wait nobody /usr/sbin/in.tftpd in.tftpd\n"
                       "#telnet stream tcp nowait root /usr/sbin/tcpd in.telnetd\n")
    facts = HostFacts(services=conf.services, disabled=conf.disabled)
    assert not tcpd_convention(facts)
    assert not any(f.kind == "unwrapped-service" for r in audit_records(facts, setup.ctx, 0.0) for f in r.findings)
    conf2 = parse_inetd("#ftp stream tcp nowait root /usr/sbin/tcpd in.ftpd\n"
                        "#telnet stream tcp nowait root /usr/sbin/tcpd in.telnetd\n"
                        "tftp dgram udp wait nobody /usr/sbin/in.tftpd in.tftpd\n")
    assert tcpd_convention(HostFacts(services=conf2.services, disabled=conf2.disabled))


def _listener(**kw) -> Listener:
    base = dict(transport="tcp", family=4, address="0.0.0.0", port=443, inode=7, uid=0, pids=[10], process="x",
                user="root", proc_uid=0)
    base.update(kw)
    return Listener(**base)


def test_listener_rules(setup):
    facts = HostFacts(listeners=[
        _listener(port=999, inode=1, process="weird"),  # trusted, unlisted
        _listener(port=40000, inode=2, process="python3"),  # unlisted high port, root
        _listener(port=53, inode=3, process="dnsmasq", transport="udp"),  # needs no root
        _listener(port=22, inode=4, process="sshd"),
        _listener(port=8080, inode=5, process="app", proc_uid=1000, user="app"),
    ])
    found = {r.dst_port: [(f.kind, f.severity) for f in r.findings] for r in audit_records(facts, setup.ctx, 0.0)}
    assert found[999] == [("unassigned-port", "low")]
    assert found[40000] == [("unassigned-port", "info"), ("root-service", "low")]
    assert found[53] == [("root-service", "medium")]
    assert found[22] == []
    assert found[8080] == []


def test_probed_listener_uses_analyze_rules(setup):
    lst = _listener(port=443, process="sshd")
    probe = {"protocol": "ssh", "confidence": 0.95, "probe": "banner", "ssh_server": "SSH-2.0-OpenSSH_9.2p1",
             "bytes_s2c": 41, "evidence": "server bytes confirmed by the ssh probe"}
    (rec,) = audit_records(HostFacts(listeners=[lst]), setup.ctx, 0.0, {7: probe})
    kinds = {f.kind: f for f in rec.findings}
    assert rec.protocol == "ssh" and rec.meta["probe"] == "banner"
    assert (rec.bytes_c2s, rec.bytes_s2c, rec.packets_s2c) == (0, 41, 1) and "bytes_s2c" not in rec.meta
    assert kinds["port-mismatch"].severity == "high"
    assert "banner: SSH-2.0-OpenSSH_9.2p1" in kinds["port-mismatch"].message
    assert "tunnel" in kinds
    telnet = _listener(port=2323, process="busybox", proc_uid=1000)
    probe = {"protocol": "telnet", "confidence": 0.85, "bytes_s2c": 12}
    (rec,) = audit_records(HostFacts(listeners=[telnet]), setup.ctx, 0.0, {7: probe})
    assert {f.kind for f in rec.findings} == {"insecure-protocol", "unassigned-port"}
    unknown = _listener(port=443, process="nginx")
    (rec,) = audit_records(HostFacts(listeners=[unknown]), setup.ctx, 0.0, {7: {"protocol": "unknown", "probe": "x"}})
    assert rec.protocol == "unknown" and rec.findings == [] and rec.meta["probe"] == "x"


def test_site_policy_applies_to_audit_findings(tmp_path):
    policy = tmp_path / "site.toml"
    policy.write_text('disabled = ["insecure-protocol"]\n[severity]\nunassigned-port = "high"\n'
                      '[[allow]]\nport = 79\n')
    setup = Setup.load(Config(services_path=str(fallback_path()), policy_path=str(policy)))
    records = audit_records(gather(ROOT, with_sockets=False), setup.ctx, 0.0)
    kinds = [f.kind for r in records for f in r.findings]
    assert "insecure-protocol" not in kinds
    assert not [f for r in records if r.dst_port == 79 for f in r.findings]  # allowed: even root-service
    assert [f.severity for r in records for f in r.findings if f.kind == "unassigned-port"] == ["high"]


def test_tcpmux_services_and_hostile_file_names(setup):
    conf = parse_inetd("tcpmux/+date stream tcp nowait nobody /bin/date date\n", "/img/etc/inetd.conf\x1b[2J")
    (rec,) = audit_records(HostFacts(services=conf.services), setup.ctx, 0.0)
    assert rec.dst_port == 1 and not [f for f in rec.findings if f.kind == "unknown-service"]
    bad = parse_inetd("foo stream tcp nowait root /bin/foo\n", "/img/etc/inetd.conf\x1b[2J")
    (rec,) = audit_records(HostFacts(services=bad.services), setup.ctx, 0.0)
    assert rec.findings and all("\x1b" not in f.message for f in rec.findings)
    assert "\x1b" not in rec.meta["file"]


def test_listeners_are_linked_to_their_configuration(setup):
    conf = parse_inetd("finger stream tcp nowait nobody /usr/sbin/tcpd in.fingerd\n"
                       "echo stream tcp nowait root internal\n", "/etc/inetd.conf")
    facts = HostFacts(services=conf.services, listeners=[_listener(port=79, process="inetd")], sockets_read=True)
    finger, echo, lst = audit_records(facts, setup.ctx, 0.0)
    assert finger.meta["listening"] is True and echo.meta["listening"] is False
    assert lst.meta["configured"] == "inetd /etc/inetd.conf:1"
    image = audit_records(HostFacts(services=conf.services), setup.ctx, 0.0)
    assert all("listening" not in r.meta for r in image)


def test_site_insecure_services_decide(tmp_path):
    policy = tmp_path / "site.toml"
    policy.write_text('[insecure_services]\nfinger = ""\ndaytime = ""\npop3 = "cleartext passwords"\n')
    setup = Setup.load(Config(services_path=str(fallback_path()), policy_path=str(policy)))
    found = _findings(audit_records(gather(ROOT, with_sockets=False), setup.ctx, 0.0))
    assert _kinds(found, ("inetd", "finger", "tcp")) == ["root-service"]  # taken back by the site
    assert _kinds(found, ("inetd", "daytime", "tcp")) == []
    (pop3,) = found["inetd", "pop3", "tcp"]
    assert pop3.kind == "insecure-protocol" and pop3.message.endswith("cleartext passwords")
    assert _kinds(found, ("inetd", "tftp", "udp")) == ["insecure-protocol", "unwrapped-service"]  # audit's own table
