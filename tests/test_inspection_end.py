"""A classified flow is inspected until its probes say both sides are done, and no further.

Through the public interface these tests hold the pipeline to the first half on captures of real
daemons: each side's facts are in the record (TLS and SSH hellos, HTTP response headers), text
protocols keep watching for STARTTLS, a CONNECT keeps watching until the tunnel speaks and an
Upgrade is settled by the response. How often the core re-reads a stream (the second half) is
not visible from Python; the core keeps that to itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pcapkit import analyze_path, ether, tcp_session, timed, write_pcap

from portwatch.model import FlowRecord
from portwatch.pipeline import Config, Setup
from portwatch.pipeline import analyze_path as run_path
from portwatch.services import fallback_path

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
CONFIG = Config(services_path=str(fallback_path()))


def run(name: str) -> list[FlowRecord]:
    records: list[FlowRecord] = []
    run_path(str(CAPTURES / name), Setup.load(CONFIG), CONFIG, records.append)
    return records


@pytest.mark.parametrize(
    ("capture", "protocol", "keys"),
    [
        # TLS: the ClientHello is read while classifying, the server's flight after.
        ("https-443.pcap", "tls", ("ja3", "ja4", "sni", "ja3s", "cipher")),
        ("tls-22.pcap", "tls", ("ja3", "ja4", "ja3s")),
        # OpenSSH sends its banner and its KEXINIT in separate segments: the server banner
        # classifies, then the client's banner, the server's KEXINIT and the client's KEXINIT.
        ("ssh-22.pcap", "ssh", ("hassh", "hassh_server", "ssh_client", "ssh_server")),
        ("ssh-443.pcap", "ssh", ("hassh", "hassh_server")),
        # HTTP: the request classifies; the response headers settle it (no CONNECT, no Upgrade).
        ("http-8443.pcap", "http", ("http_host", "http_user_agent", "http_status")),
    ],
)
def test_inspection_reads_both_hellos(capture, protocol, keys):
    flows = [r for r in run(capture) if r.protocol == protocol]
    assert flows
    for rec in flows:
        assert all(k in rec.meta for k in keys), (rec.meta.keys(), keys)


def test_cleartext_protocols_keep_watching_for_starttls():
    # SMTP's facts (STARTTLS, a login in clear) come late: its inspection does not stop early.
    smtp = [r for r in run("smtp-25.pcap") if r.protocol == "smtp"]
    assert smtp
    assert any(r.meta.get("upgraded_to") == "tls" or "banner" in r.meta for r in smtp)
    # the server's banner classifies; the client's EHLO, read after, is there too
    assert all("smtp_helo" in r.meta for r in smtp)


def test_connect_keeps_watching_until_the_tunnel_speaks(tmp_path):
    # Headers complete on both sides do not end a CONNECT: its facts are in the bytes that follow.
    request = (Path(__file__).parent / "data" / "real" / "http-connect.bin").read_bytes()
    ssh_client = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\r\n"
    ssh_server = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\r\n"
    frames = tcp_session([request, ssh_client], [b"HTTP/1.1 200 Connection established\r\n\r\n", ssh_server],
                         dport=3128)
    path = write_pcap(tmp_path / "connect.pcap", timed([ether(f) for f in frames]))
    records, _ = analyze_path(path, services_path=CONFIG.services_path)
    (rec,) = records
    assert rec.protocol == "http"
    assert rec.meta["connect_target"] == "ssh.example.test:22" and rec.meta["tunnel_protocol"] == "ssh"


def test_upgrade_request_is_settled_by_the_response(tmp_path):
    ws = (Path(__file__).parent / "data" / "real" / "http-websocket.bin").read_bytes()
    switching = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    frames = tcp_session([ws, b"\x81\x05hello"], [switching, b"\x81\x02ok"], dport=8080)
    path = write_pcap(tmp_path / "ws.pcap", timed([ether(f) for f in frames]))
    records, _ = analyze_path(path, services_path=CONFIG.services_path)
    (rec,) = records
    assert rec.meta["upgraded_to"] == "websocket" and rec.meta["http_status"] == 101
