"""Findings on the real captures in captures/ (real daemons, real clients; see captures/README.md).

Each finding kind that a Debian daemon can produce is checked on its capture, and the ordinary
captures (standard services on standard ports) must raise nothing above info.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from portwatch.model import SEVERITY_RANK, FlowRecord
from portwatch.pipeline import Config, Setup, analyze_path
from portwatch.services import fallback_path

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
# portwatch's copy of Debian's netbase file, which the captures' labels were written against
CONFIG = Config(services_path=str(fallback_path()))


@cache
def analyse(name: str) -> tuple[FlowRecord, ...]:
    path = CAPTURES / name
    if not path.exists():
        pytest.skip(f"{name} not recorded yet")
    records: list[FlowRecord] = []
    setup = Setup.load(CONFIG)  # a fresh setup per capture: the DNS tracker's state starts empty
    analyze_path(str(path), setup, CONFIG, records.append)
    return tuple(records)


def worst(name: str, port: int | None = None) -> dict[str, str]:
    """kind -> worst severity over the capture's flows (to server `port` when given)."""
    out: dict[str, str] = {}
    for rec in analyse(name):
        if port is not None and rec.dst_port != port:
            continue
        for f in rec.findings:
            if f.kind not in out or SEVERITY_RANK[f.severity] > SEVERITY_RANK[out[f.kind]]:
                out[f.kind] = f.severity
    return out


def messages(name: str, kind: str) -> list[str]:
    return [f.message for rec in analyse(name) for f in rec.findings if f.kind == kind]


def test_ssh_on_443_is_a_high_tunnel_and_mismatch_with_banner_and_assignment() -> None:
    assert worst("ssh-443.pcap") == {"tunnel": "high", "port-mismatch": "high"}
    msg = messages("ssh-443.pcap", "tunnel")[0]
    assert "10.77.0.1:443" in msg and "443/tcp (/etc/services: https)" in msg and "SSH-2.0-OpenSSH" in msg


def test_tls_wrapper_on_22_is_a_high_mismatch_with_sni() -> None:
    assert worst("tls-22.pcap") == {"port-mismatch": "high"}
    assert all("secure.example.test" in m and "assigned to ssh" in m for m in messages("tls-22.pcap", "port-mismatch"))


def test_telnet_is_insecure() -> None:
    assert SEVERITY_RANK[worst("telnet-23.pcap")["insecure-protocol"]] >= SEVERITY_RANK["medium"]


def test_http_basic_authentication_in_clear_is_high_and_never_shows_the_password() -> None:
    by_status = {}
    for rec in analyse("http-basic-80.pcap"):
        by_status.setdefault(rec.meta.get("cleartext_login") is True, []).append(rec.meta.get("http_status"))
        shown = " ".join([str(dict(rec.meta))] + [f.message for f in rec.findings])
        assert "pwcap-secret" not in shown and "cHdjYXA6cHdjYXAtc2VjcmV0" not in shown
    # Basic on the first request; a 401 answered by a retry with it on the same connection; a 401
    # nobody answered: no login
    assert sorted(by_status[True]) == [200, 401] and by_status[False] == [401]
    assert worst("http-basic-80.pcap", 80) == {"insecure-protocol": "high"}
    assert all("http login" in m and "credentials crossed in clear" in m
               for m in messages("http-basic-80.pcap", "insecure-protocol"))


def test_postgresql_password_in_clear_is_high_and_md5_or_scram_is_not() -> None:
    by_user = {}
    for rec in analyse("postgresql-password-5432.pcap"):
        user = bytes.fromhex(rec.meta["client_head"]).split(b"user\x00", 1)[1].split(b"\x00", 1)[0].decode()
        by_user[user] = (rec.meta.get("cleartext_login"), [(f.kind, f.severity) for f in rec.findings])
        assert all("pw-secret" not in f.message for f in rec.findings)
    assert by_user == {"pwclear": (True, [("insecure-protocol", "high")]), "pwmd5": (None, []), "postgres": (None, [])}


def test_vnc_without_authentication_is_high_and_with_it_is_not() -> None:
    assert worst("vnc-noauth-5900.pcap", 5900) == {"insecure-protocol": "high", "unassigned-port": "info"}
    [rec] = analyse("vnc-noauth-5900.pcap")
    assert rec.meta["rfb_auth"] == "none" and rec.meta["rfb_security"] == ["none"]
    assert "no authentication" in messages("vnc-noauth-5900.pcap", "insecure-protocol")[0]
    assert "insecure-protocol" not in worst("vnc-5900.pcap", 5900)  # VNC Authentication


def test_anonymous_ftp_login_is_medium_with_no_secret() -> None:
    assert worst("ftp-anonymous-21.pcap", 21) == {"insecure-protocol": "medium"}
    assert all("anonymous login" in m and "no secret crossed" in m
               for m in messages("ftp-anonymous-21.pcap", "insecure-protocol"))
    control = [r for r in analyse("ftp-anonymous-21.pcap") if r.dst_port == 21]
    assert len(control) == 2
    assert all(r.meta.get("anonymous_login") is True and "cleartext_login" not in r.meta for r in control)


def test_ftp_login_is_high_and_never_shows_the_password() -> None:
    assert worst("ftp-21.pcap", 21) == {"insecure-protocol": "high"}
    assert all("credentials crossed in clear" in m for m in messages("ftp-21.pcap", "insecure-protocol"))
    for rec in analyse("ftp-21.pcap"):
        for f in rec.findings:
            assert "pwcap-secret" not in f.message
    # the passive data connections: ftp-data, announced by the control connection's EPSV reply, on a
    # negotiated port: nothing to ask
    data = [r for r in analyse("ftp-21.pcap") if r.dst_port == 50000]
    control = {r.flow_id: r for r in analyse("ftp-21.pcap") if r.dst_port == 21}
    assert len(data) == 2 and all(r.protocol == "ftp-data" and not r.findings for r in data)
    for r in data:
        announcer = control[r.meta["control_flow_id"]]
        assert r.meta["control_community_id"] == announcer.community_id and r.meta["announced_by"] == "EPSV"
        assert announcer.meta["announced"] == [
            {"endpoint": "10.77.0.1:50000", "transport": "tcp", "protocol": "ftp-data", "by": "EPSV"}]


@pytest.mark.parametrize("name", ["pop3-110.pcap", "imap-143.pcap"])
def test_mail_login_without_tls_is_high_and_the_starttls_session_is_clean(name: str) -> None:
    flagged = [bool(r.findings) for r in analyse(name)]
    assert worst(name) == {"insecure-protocol": "high"}
    assert sorted(flagged) == [False, True]  # one session logs in in clear, the other upgrades first


def test_finger_is_insecure() -> None:
    assert worst("finger-79.pcap") == {"insecure-protocol": "medium"}


def test_plain_http_on_443_is_cleartext_on_secure_port() -> None:
    found = worst("http-on-443.pcap")
    assert found["cleartext-on-secure-port"] == "high" and found["port-mismatch"] == "high"


def test_plain_http_on_unassigned_8443_is_low() -> None:
    # /etc/services lists no 8443: nothing to mismatch, one finding (low for the clear text) and no
    # inventory note besides
    assert worst("http-8443.pcap") == {"unassigned-port": "low"}


def test_iodine_dns_tunnel_is_high() -> None:
    assert worst("dns-tunnel.pcap") == {"dns-tunnel": "high"}
    msg = messages("dns-tunnel.pcap", "dns-tunnel")[-1]
    assert "10.77.0.1:53" in msg and "53/udp (/etc/services: domain)" in msg and "NULL" in msg


ORDINARY = ["ssh-22.pcap", "https-443.pcap", "smtp-25.pcap", "dns-53.pcap", "http-80.pcap", "redis-6379.pcap",
            "postgresql-5432.pcap", "mysql-3306.pcap", "mqtt-1883.pcap", "ntp-123.pcap", "snmp-161.pcap",
            "rsync-873.pcap", "syslog-514.pcap", "sip-5060.pcap", "whois-43.pcap", "irc-6667.pcap",
            "tftp-69.pcap", "rdp-3389.pcap"]


@pytest.mark.parametrize("name", ORDINARY)
def test_ordinary_traffic_raises_nothing_above_info(name: str) -> None:
    above = [(r.dst_port, f.kind, f.severity, f.message) for r in analyse(name) for f in r.findings
             if f.severity != "info"]
    assert above == []
