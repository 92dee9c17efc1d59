"""The Rust core gives the records the retired Python engine gave, on every shipped real capture.

tests/core/data/python-engine-records.jsonl holds the Python engine's records for
captures/*.pcap and tests/monitor/data/ssh-443.pcap (findings included: the policy is Python's),
as recorded when the core replaced it, with the deliberate changes since then (each with a test
of its own): finding messages name protocols by their canonical lowercase names; the FTP banner
and POP3 `+OK` patterns (whose text the evidence quotes) accept RFC 2228 and multi-line greetings;
the `tunnel` finding says what rides inside when the shape classifier is confident (its confidence
and rule path follow the shipped portwatch/data/tunnel-model.json). Captures recorded after the
Python engine was retired hold the core's records as first recorded: http-privport-80 and rsh-514
(privileged-source-port), rdp-3389 (a bare X.224 CR and a cookie-less RDP_NEG_REQ are RDP),
nflog-http-dns (link type NFLOG, which the Python engine never read; tests/capture/test_link_types.py),
radius-1812 (RADIUS, whose signature came after it; tests/detection/test_radius.py), quic-443
(tests/detection/test_quic_capture.py), openvpn-1194 (tests/detection/test_openvpn_capture.py),
stun-3478 and dtls-4433 (tests/detection/test_stun_dtls_captures.py), kerberos-88
(tests/detection/test_kerberos_capture.py), smb-445 (tests/detection/test_smb_capture.py),
dhcp-67 (tests/detection/test_dhcp_capture.py), mdns-5353 (tests/detection/test_mdns_capture.py),
ldap-389 (tests/detection/test_ldap_capture.py), socks-1080
(tests/detection/test_socks_capture.py), xmpp-5222 (tests/detection/test_xmpp_capture.py),
llmnr-5355 (tests/detection/test_llmnr_capture.py), ssdp-1900
(tests/detection/test_ssdp_capture.py), git-9418 (tests/detection/test_git_capture.py),
ike-500 (tests/detection/test_ike_capture.py), memcached-11211, nats-4222, zabbix-10050, coap-5683,
z3950-210, bgp-179, ptp-319, vnc-5900, xdmcp-177, netbios-137, x11-6000, wireguard-51820, amqp-5672,
stomp-61613, munin-4949, nntp-119, pptp-1723, dot-853, redis-auth-6379, ftps-21, mqtt-8883, nfs-2049,
modbus-502, bittorrent-6881, bittorrent-utp-6881, rtsp-554, rtmp-1935, smb-139,
http-proxy-3128, snmpv3-161, syslog-tcp-514, nts-4460, ipsec-4500, ldaps-636, mysql-tls-3306,
smtp-587, dns-tcp-53, http2-80, websocket-8080, ldp-646, teredo-3544, s7comm-102, iec104-2404,
bacnet-47808, dnp3-20000, diameter-3868, dcerpc-135 and gtp-2152
(tests/detection/test_<name>_capture.py), and ftp-anonymous-21 (anonymous_login), http-basic-80
(Basic authentication in clear), postgresql-password-5432 (a password the server asked for in
clear) and vnc-noauth-5900 (security type None: tests/test_findings_captures.py).
postgresql-5432 was recorded again with a second, TLS session
(tests/detection/test_postgresql_capture.py), and smb-445 with the name query its recording script
had asked for with an option nmblookup 4.17 refuses: they hold the core's records.
smb-445's session on 139 is smb (the NetBIOS session request only opens it:
tests/detection/test_smb_capture.py), and stun-3478's flows decided only when they end keep their
heads (core/src/pipeline/tests.rs, a_verdict_reached_when_the_flow_ends_keeps_the_heads).
ntp-123's chrony requests are NTP (data-minimised: core/src/detect/probes/ntp.rs).
syslog-514's messages carry the syslog probe's facts (core/src/detect/probes/syslog.rs).
mysql-3306's mysql_version is MariaDB's without its "5.5.5-" (core/src/detect/probes/mysql.rs).
gtp-2152's GTP-C flow, dcerpc-135's, diameter-3868's and s7comm-102's connections and dnp3-20000's
and iec104-2404's sessions carry the gtpc, dcerpc, diameter and s7comm probes' facts, dnp3's
application function and iec104's first ASDU (core/src/detect/probes/), added after they were
recorded.
dcerpc-135's connections to the mapped port are announced by the endpoint mapper's answers
(core/src/detect/announce/epm.rs).
bacnet-47808's flows carry their first APDU's type and service, and the unicast flow, which
begins with the device's I-Am, has the device as its server (core/src/detect/probes/bacnet.rs).
Evidence quotes a signature's prefix and regex with each escape written once, the regex as its
signature spells it (core/src/text.rs, `quoted_bytes` and `pattern_text`); the Python engine escaped
them twice (`\\r\\n`) and cut a long regex at 60 characters, escapes or not; it is now cut before an
escape and ends in an ellipsis.
Connections a control connection announced are named by it (ftp-21's data connections are
`ftp-data` with `control_flow_id`/`control_community_id`/`announced_by`, and no `unassigned-port`;
the FTP and SIP control flows list `announced`), and cleartext on an unassigned high port is one low
`unassigned-port`, not a `port-mismatch` (http-8443: /etc/services assigns 8443 nothing to
mismatch); ftp-pasv-21, ftp-active-21 and sip-call-5060 hold the core's records. A client's first
bytes (`client_head`) stop at its signature's login line, so no password or SASL response is kept
(ftp and pop3 captures). A fact both sides state keeps the client's value under its name and the
server's answer as `<name>_server` (krb_msg_server, tls_version_server, ...: the server's used to
replace the client's when it came later; core/src/pipeline/tests.rs tests the order). A verdict one side
decided alone takes the other side's matching answer into its confidence and evidence
(`a_verdict_from_one_sides_bytes_gains_the_other_sides_evidence` in core/src/pipeline/tests.rs). A difference
here is a regression or a deliberate change, which then updates that file in the same commit.
The join fields and the tunnel shape facts are the core's additions and are not compared.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portwatch.pipeline import JOIN_FIELDS, CaptureError, Config, Setup, analyze_path

REPO = Path(__file__).resolve().parent.parent.parent
GOLDEN = Path(__file__).resolve().parent / "data" / "python-engine-records.jsonl"
NEW_META = ("shape", "tunnel_contents")  # added by the core after the Python engine
CAPTURES = [*sorted((REPO / "captures").glob("*.pcap")), REPO / "tests" / "monitor" / "data" / "ssh-443.pcap"]


def _golden() -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for line in GOLDEN.read_text().splitlines():
        entry = json.loads(line)
        out.setdefault(entry["capture"], []).append(entry["record"])
    return out


@pytest.fixture(scope="module")
def setup_config():
    config = Config()
    return Setup.load(config), config


def core_records(path: Path, setup_config) -> list[dict]:
    setup, config = setup_config
    out: list[dict] = []
    analyze_path(str(path), setup, config, lambda r: out.append(r.as_dict()))
    # The join fields are the core's alone (the Python engine had none).
    for r in out:
        r["meta"] = {k: v for k, v in r["meta"].items() if k not in NEW_META}
    return [json.loads(json.dumps({k: v for k, v in r.items() if k not in JOIN_FIELDS}, sort_keys=True))
            for r in out]


@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: p.name)
def test_core_records_equal_the_python_engines(capture, setup_config):
    want = _golden()[str(capture.relative_to(REPO))]
    got = core_records(capture, setup_config)
    assert got == want


def test_join_fields_are_on_every_record(setup_config):
    setup, config = setup_config
    out = []
    analyze_path(str(REPO / "captures" / "ssh-443.pcap"), setup, config, out.append)
    ids = [r.flow_id for r in out]  # the number of each flow's first packet in the capture
    assert len(set(ids)) == len(ids) and ids[0] == 1 and all(i >= 1 for i in ids)
    for r in out:
        assert r.community_id.startswith("1:") and len(r.community_id) == 30
        assert r.duration == pytest.approx(r.ts_end - r.ts_start)
        assert r.state in ("S0", "S1", "SF", "REJ", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "OTH")


@pytest.mark.parametrize("data,message", [(b"", "empty file, not a capture"),
                                          (b"hello world\n", "not a pcap or pcapng capture")])
def test_an_unreadable_file_is_one_clear_error(tmp_path, setup_config, data, message):
    setup, config = setup_config
    path = tmp_path / "bad.pcap"
    path.write_bytes(data)
    with pytest.raises(CaptureError, match=message):
        analyze_path(str(path), setup, config, lambda r: None)


def test_a_cut_capture_keeps_the_flows_before_the_cut(tmp_path, setup_config):
    setup, config = setup_config
    data = (REPO / "captures" / "http-80.pcap").read_bytes()
    path = tmp_path / "cut.pcap"
    path.write_bytes(data[: len(data) * 2 // 3])
    out: list = []
    stats = analyze_path(str(path), setup, config, out.append)
    assert stats.error and "cut.pcap" in stats.error
    assert out, "the flows read before the cut are reported"
