"""Each finding kind on crafted flow records (where no daemon produced a capture) and the grading."""

from __future__ import annotations

import random

from findkit import context, findings, kinds, record, unknown_with

from portwatch import _core
from portwatch.policy.dnstunnel import DnsTunnelTracker

SSH_META = {"ssh_server": "SSH-2.0-OpenSSH_9.2p1", "ssh_client": "SSH-2.0-OpenSSH_9.2p1"}


def random_bytes(n: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    while True:
        data = bytes(rng.getrandbits(8) for _ in range(n))
        # the GFW exemptions exempt about a quarter of random first packets; keep a non-exempt one
        if not (0x20 <= data[0] <= 0x7E) and _core.entropy_facts(data)["looks_encrypted"]:
            return data
        seed += 1
        rng = random.Random(seed)


# ---- port-mismatch, tunnel, cleartext-on-secure-port: graded by the pair ----------------------

def test_protocols_on_their_own_ports_raise_nothing() -> None:
    assert findings(record("ssh", 22, meta=SSH_META)) == []
    assert findings(record("tls", 443, meta={"sni": "example.com"})) == []
    assert findings(record("dns", 53, "udp", meta={"dns_query": "example.com.", "dns_qtype": "A"})) == []
    assert findings(record("smtp", 587)) == []  # submission means smtp (signature services)


def test_http_on_http_alt_8080_is_no_mismatch() -> None:
    assert findings(record("http", 8080, meta={"http_host": "proxy"})) == []


def test_ssh_on_443_is_a_high_tunnel_and_a_high_mismatch_naming_port_and_assignment() -> None:
    fs = findings(record("ssh", 443, meta=SSH_META))
    assert kinds(fs) == {"tunnel": "high", "port-mismatch": "high"}
    tunnel = next(f for f in fs if f.kind == "tunnel")
    assert "192.0.2.10:443" in tunnel.message
    assert "443/tcp (/etc/services: https)" in tunnel.message
    assert "SSH-2.0-OpenSSH_9.2p1" in tunnel.message  # the banner as evidence


def test_tls_on_the_ssh_port_is_high() -> None:
    fs = findings(record("tls", 22, meta={"sni": "secure.example.test"}))
    assert kinds(fs) == {"port-mismatch": "high"}
    assert "assigned to ssh" in fs[0].message and "secure.example.test" in fs[0].message


def test_protocol_on_a_registered_port_of_another_protocol_is_medium() -> None:
    # 3306 is mysql's: HTTP there is a mismatch, above 1024 so medium
    assert kinds(findings(record("http", 3306))) == {"port-mismatch": "medium"}


def test_cleartext_on_an_unassigned_high_port_is_a_low_unassigned_port_not_a_mismatch() -> None:
    # /etc/services assigns 8443 to nothing, so there is no assignment for HTTP to mismatch
    fs = findings(record("http", 8443))
    assert kinds(fs, "low") == {"unassigned-port": "low"}
    assert "cleartext http server 192.0.2.10:8443 on an unassigned high port 8443/tcp" in fs[0].message
    # one fact, one finding: no inventory note (info) restating that the port is unassigned
    assert kinds(fs) == {"unassigned-port": "low"}


def test_encrypted_protocol_on_an_unassigned_high_port_is_only_noted() -> None:
    assert kinds(findings(record("ssh", 2222, meta=SSH_META)), "low") == {}


def test_implicit_tls_on_a_starttls_port_is_low() -> None:
    assert kinds(findings(record("tls", 143)), "info") == {"port-mismatch": "low"}


def test_http_on_443_is_cleartext_on_secure_port_and_mismatch() -> None:
    fs = findings(record("http", 443, meta={"http_host": "10.0.0.1:443"}))
    assert kinds(fs) == {"cleartext-on-secure-port": "high", "port-mismatch": "high"}
    assert any("expects an encrypted protocol (tls)" in f.message for f in fs)


def test_imap_without_tls_on_993_is_cleartext_on_secure_port() -> None:
    assert kinds(findings(record("imap", 993)))["cleartext-on-secure-port"] == "high"


def test_weak_one_direction_evidence_lowers_the_severity_and_says_so() -> None:
    fs = findings(record("tls", 22, confidence=0.8, evidence="client bytes match /x/"))
    assert kinds(fs) == {"port-mismatch": "medium"}
    assert "one direction" in fs[0].message


def test_a_server_that_never_answered_offers_nothing_worth_an_alarm() -> None:
    fs = findings(record("ssh", 443, s2c=0, packets=(3, 0), meta=SSH_META))
    assert kinds(fs, "low") == {}
    assert kinds(fs) == {"tunnel": "info", "port-mismatch": "info"}


def test_http_connect_to_a_web_port_is_info_and_to_ssh_is_a_high_tunnel() -> None:
    web = findings(record("http", 8080, meta={"http_connect_target": "example.org:443"}))
    assert kinds(web) == {"tunnel": "info"}
    ssh = findings(record("http", 8080, meta={"http_connect_target": "10.9.9.9:22"}))
    assert kinds(ssh) == {"tunnel": "high"} and "10.9.9.9:22" in ssh[0].message


def test_a_refused_connect_relays_nothing() -> None:
    # RFC 9110 section 9.3.6: only a 2xx answer makes the proxy a tunnel.
    refused = findings(record("http", 8080, meta={"http_connect_target": "10.9.9.9:25", "http_status": 403}))
    assert kinds(refused) == {"tunnel": "low"} and "refused CONNECT to 10.9.9.9:25 (status 403)" in refused[0].message
    web = findings(record("http", 8080, meta={"http_connect_target": "example.org:443", "http_status": 407}))
    assert kinds(web) == {"tunnel": "info"} and "refused" in web[0].message
    opened = findings(record("http", 8080, meta={"http_connect_target": "10.9.9.9:25", "http_status": 200}))
    assert kinds(opened) == {"tunnel": "high"}


# ---- unassigned-port ------------------------------------------------------------------------

def test_known_protocol_on_an_unassigned_trusted_port() -> None:
    fs = findings(record("tls", 453, meta={"sni": "dns1.example"}))
    assert kinds(fs) == {"unassigned-port": "low"}
    assert "trusted port 453/tcp (unassigned in /etc/services)" in fs[0].message


def test_unknown_server_on_an_unassigned_port_is_an_inventory_note() -> None:
    fs = findings(record("unknown", 50000, meta={"entropy_server": {"looks_encrypted": False}}))
    assert kinds(fs) == {"unassigned-port": "info"}


# ---- encrypted-unknown ----------------------------------------------------------------------

def test_random_bytes_on_an_unassigned_port_are_encrypted_unknown_with_figures() -> None:
    fs = findings(unknown_with(random_bytes(600), 8388))
    assert kinds(fs, "low") == {"encrypted-unknown": "medium"}
    msg = next(f.message for f in fs if f.kind == "encrypted-unknown")
    assert "bits/byte over 600 bytes" in msg and "popcount" in msg and "printable" in msg


def test_random_bytes_after_a_handshake_on_443_look_like_an_obfuscated_proxy() -> None:
    fs = findings(unknown_with(random_bytes(600), 443))
    assert kinds(fs, "low") == {"encrypted-unknown": "high"}
    assert "obfuscated proxy" in fs[0].message


def test_mid_stream_tls_records_are_exempt_as_a_known_framing() -> None:
    data = b"\x17\x03\x03\x02\x00" + random_bytes(600)[5:]
    assert findings(unknown_with(data, 443, orientation="inferred")) == []


def test_compressed_and_printable_payloads_are_exempt() -> None:
    import zlib

    compressed = zlib.compress(random_bytes(2000, seed=3), 9)
    assert compressed[:2] == b"\x78\xda"
    assert kinds(findings(unknown_with(compressed, 9000)), "low") == {}
    # the same bytes without the zlib header are a cipher stream as far as anyone can tell
    assert kinds(findings(unknown_with(b"\x91" + compressed[2:], 9000)), "low") == {"encrypted-unknown": "medium"}
    text = b"HELLO there, this is a printable protocol line with more than twenty characters\r\n"
    assert kinds(findings(unknown_with(text, 9000)), "low") == {}


def test_encrypted_unknown_on_a_port_whose_service_has_no_signature_is_info() -> None:
    # the bytes are probably that service's; which ports lack a signature changes as signatures grow
    ctx = context()
    candidates = [(1812, "udp"), (749, "tcp"), (1645, "udp"), (2105, "tcp"), (1352, "tcp"), (1524, "tcp")]
    port, transport = next((p, t) for p, t in candidates
                           if ctx.services.names(p, t) and not ctx.expected_protocols(p, t))
    fs = findings(unknown_with(random_bytes(400), port, transport), ctx)
    assert kinds(fs) == {"encrypted-unknown": "info"}
    assert "no signature" in fs[0].message


def test_short_encrypted_samples_are_one_step_lower() -> None:
    fs = findings(unknown_with(random_bytes(40), 8388))
    assert kinds(fs, "low") == {"encrypted-unknown": "low"}
    assert "short sample" in fs[0].message


# ---- insecure-protocol ----------------------------------------------------------------------

def test_telnet_is_insecure_and_a_login_makes_it_high_without_showing_credentials() -> None:
    assert kinds(findings(record("telnet", 23))) == {"insecure-protocol": "medium"}
    fs = findings(record("telnet", 23, meta={"cleartext_login": True}))
    assert kinds(fs) == {"insecure-protocol": "high"}
    assert "credentials crossed in clear" in fs[0].message


def test_ftp_login_never_prints_the_password() -> None:
    head = b"USER alice\r\nPASS s3cr3t-pw\r\n".hex()
    fs = findings(record("ftp", 21, meta={"client_head": head, "cleartext_login": True}))
    assert kinds(fs) == {"insecure-protocol": "high"}
    assert "s3cr3t" not in fs[0].message and "alice" not in fs[0].message


def test_http_basic_authentication_in_clear_is_high() -> None:
    # the core's cleartext_login from http.toml's [conversation] login (Authorization: Basic)
    assert findings(record("http", 80, meta={"http_host": "intranet.example"})) == []
    fs = findings(record("http", 80, meta={"http_host": "intranet.example", "cleartext_login": True}))
    assert kinds(fs) == {"insecure-protocol": "high"}
    assert "http login" in fs[0].message and "credentials crossed in clear" in fs[0].message


def test_ftp_without_a_login_is_not_flagged() -> None:
    head = b"AUTH TLS\r\n".hex()
    assert findings(record("ftp", 21, meta={"client_head": head})) == []


def test_inetd_internal_services_and_rsh_are_insecure_when_they_answer() -> None:
    for port, word in ((19, "chargen"), (7, "echo"), (13, "daytime"), (37, "time"), (514, "rsh"), (513, "rlogin"),
                       (512, "rexec"), (79, "finger")):
        fs = findings(record("unknown", port, meta={"entropy_server": {"looks_encrypted": False}}))
        assert kinds(fs) == {"insecure-protocol": "medium"}, port
        assert word in fs[0].message
    # nobody answered: nothing is offered
    assert findings(record("unknown", 19, s2c=0, c2s=0, packets=(1, 1))) == []


def test_talk_over_udp_is_insecure() -> None:
    fs = findings(record("unknown", 517, "udp", meta={"entropy_server": {"looks_encrypted": False}}))
    assert kinds(fs) == {"insecure-protocol": "medium"}


def test_another_protocol_on_an_insecure_service_port_is_not_that_service() -> None:
    # syslog over TCP on 514 (shell): not rsh
    ctx = context()
    fs = findings(record("syslog", 514), ctx) if "syslog" in ctx.signatures else []
    assert all(f.kind != "insecure-protocol" for f in fs)


# ---- dns-tunnel and stream-anomaly ----------------------------------------------------------

def test_stream_anomaly_names_both_endpoints() -> None:
    fs = findings(record("http", 80, meta={"tcp_overlap_conflicts": 3}))
    assert kinds(fs) == {"stream-anomaly": "medium"}
    assert "198.51.100.7:50000" in fs[0].message and "192.0.2.10:80" in fs[0].message


def test_dns_tunnel_raised_across_flows_once_a_domain_collects_encoded_names() -> None:
    ctx = context()
    rng = random.Random(1)
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    sev = []
    for i in range(12):
        label = "".join(rng.choice(alphabet) for _ in range(50))
        meta = {"dns_query": f"{label}.t.tunnel.example.", "dns_qtype": "TXT"}
        rec = record("dns", 53, "udp", cport=40000 + i, meta=meta, packets=(1, 1))
        sev.append(kinds(findings(rec, ctx)).get("dns-tunnel"))
    assert sev[0] == "low"  # one encoded name: a note of the shape
    assert sev[-1] == "high"  # many: a tunnel
    assert isinstance(ctx.dns, DnsTunnelTracker) and ctx.dns.counts("tunnel.example") is not None


def test_ordinary_dns_raises_nothing() -> None:
    ctx = context()
    for i, name in enumerate(["www.example.com.", "mail.example.com.", "_dmarc.example.com.",
                              "e1234.dscb.akamaiedge.net.", "1.2.0.192.in-addr.arpa."] * 10):
        rec = record("dns", 53, "udp", cport=30000 + i, meta={"dns_query": name, "dns_qtype": "A"}, packets=(1, 1))
        assert findings(rec, ctx) == []


def test_unrecognised_tcp_listener_on_an_unlisted_trusted_port_is_low() -> None:
    plain = {"entropy_server": {"looks_encrypted": False}}
    fs = findings(record("unknown", 666, meta=plain))
    assert kinds(fs) == {"unassigned-port": "low"} and "trusted port 666/tcp" in fs[0].message
    assert kinds(findings(record("unknown", 666, "udp", meta=plain))) == {"unassigned-port": "info"}


def test_insecure_protocols_are_insecure_on_any_port() -> None:
    for proto in ("telnet", "rsh", "finger"):
        if proto in context().signatures:
            fs = findings(record(proto, 40123))
            assert kinds(fs)["insecure-protocol"] == "medium", proto


def test_anonymous_ftp_login_is_medium() -> None:
    head = b"USER anonymous\r\nPASS".hex()
    fs = findings(record("ftp", 21, meta={"client_head": head, "anonymous_login": True}))
    assert kinds(fs) == {"insecure-protocol": "medium"} and "anonymous" in fs[0].message
    # a real login after the anonymous one in the same session
    fs = findings(record("ftp", 21, meta={"client_head": head, "anonymous_login": True, "cleartext_login": True}))
    assert kinds(fs) == {"insecure-protocol": "high"} and "credentials crossed in clear" in fs[0].message


def test_a_login_is_the_cores_fact_not_a_guess_from_the_head() -> None:
    # Which lines are a login is the signature's [conversation] data, read by the core: POP3's APOP
    # sends a digest, not the password, so a head that opens with it is no login in clear.
    apop = {"client_head": b"APOP mrose c4c9334bac560ecc979e58001b3e22fb".hex()[:64]}
    assert not any(f.kind == "insecure-protocol" and f.severity == "high"
                   for f in findings(record("pop3", 110, meta=apop)))
    fs = findings(record("pop3", 110, meta={**apop, "cleartext_login": True}))
    assert any(f.severity == "high" and "credentials crossed in clear" in f.message for f in fs)


# ---- announced connections and ftp-bounce -----------------------------------------------------

ANNOUNCED = {"control_flow_id": 1, "control_community_id": "1:x", "announced_by": "EPSV"}


def test_announced_data_and_media_connections_on_unassigned_ports_raise_nothing() -> None:
    assert findings(record("ftp-data", 50000, meta=ANNOUNCED)) == []
    assert findings(record("ftp-data", 20, meta={**ANNOUNCED, "announced_by": "PORT"})) == []
    assert findings(record("rtp", 7000, "udp", meta={**ANNOUNCED, "announced_by": "SDP"})) == []
    assert findings(record("rtcp", 7001, "udp", meta={**ANNOUNCED, "announced_by": "SDP"})) == []


def test_port_naming_a_third_host_is_an_ftp_bounce() -> None:
    bounce = {"announced_foreign": [{"endpoint": "203.0.113.5:25", "transport": "tcp", "protocol": "ftp-data",
                                     "by": "PORT"}]}
    fs = findings(record("ftp", 21, meta=bounce))
    assert kinds(fs)["ftp-bounce"] == "high"
    msg = next(f.message for f in fs if f.kind == "ftp-bounce")
    assert "203.0.113.5:25" in msg and "192.0.2.10:21" in msg
    # a server announcing another address (a NAT's inside one) is no bounce; nor is SDP naming a relay
    passive = {"announced_foreign": [{**bounce["announced_foreign"][0], "by": "PASV"}]}
    assert "ftp-bounce" not in kinds(findings(record("ftp", 21, meta=passive)))
    sdp = {"announced_foreign": [{"endpoint": "203.0.113.5:7000", "transport": "udp", "protocol": "rtp",
                                  "by": "SDP"}]}
    assert "ftp-bounce" not in kinds(findings(record("sip", 5060, "udp", meta=sdp)))


def test_known_framings_are_the_cores_ex5_and_raise_nothing() -> None:
    body = random_bytes(600)[8:]
    for head, rule in ((b"ZBXD\x01\x00\x00\x00", "Ex5 ASCII protocol tag"),
                       (b"\x00\x00\x01\x2aMQTT", "Ex5 length-prefixed ASCII tag"),
                       (b"\x17\x03\x03\x02\x00", "Ex5 TLS record framing")):
        facts = _core.entropy_facts(head + body)
        assert facts["exempt_rule"] == rule and facts["looks_encrypted"] is False
        assert kinds(findings(unknown_with(head + body, 9000)), "low") == {}
    # not ASCII letters or digits: no tag, a cipher stream as far as anyone can tell
    assert _core.entropy_facts(b"ZB\xc4D\x01\x00\x00\x00" + body)["exempt_rule"] is None


def test_a_known_binary_framing_on_one_side_is_no_cleartext_protocol() -> None:
    # TLS records from the client (the handshake not captured) and a line in clear from the server
    records = b"\x17\x03\x03\x02\x00" + random_bytes(600)[5:]
    meta = {"entropy_client": _core.entropy_facts(records),
            "entropy_server": _core.entropy_facts(b"220 service ready here\r\n")}
    flow = {"orientation": "inferred", "s2c": 24, "packets": (3, 2)}
    assert "cleartext-on-secure-port" not in kinds(findings(record("unknown", 443, meta=meta, **flow)))
    del meta["entropy_client"]
    assert "cleartext-on-secure-port" in kinds(findings(record("unknown", 443, meta=meta, **flow)))
