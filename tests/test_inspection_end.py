"""A classified flow stops being inspected once its probes say both sides are done.

Re-reading a TLS or SSH stream after its hellos adds nothing but cost (each direction used to be
parsed again on every later segment, up to the metadata budget); these tests hold the pipeline
to reading each side until its facts are in, and no further, on captures of real daemons.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pcapkit import analyze_path, ether, tcp_session, timed, write_pcap

from portwatch.capture.sources import CaptureSource
from portwatch.model import FlowRecord
from portwatch.pipeline import Analyzer, Config, Setup
from portwatch.services import fallback_path

CAPTURES = Path(__file__).resolve().parent.parent / "captures"
CONFIG = Config(services_path=str(fallback_path()))


def run_counting(name: str) -> tuple[list[FlowRecord], int]:
    setup = Setup.load(CONFIG)
    calls = 0
    extract = setup.engine.extract

    def counting(*args, **kwargs):
        nonlocal calls
        calls += 1
        return extract(*args, **kwargs)

    setup.engine.extract = counting  # type: ignore[method-assign]
    records: list[FlowRecord] = []
    with CaptureSource(str(CAPTURES / name)) as source:
        analyzer = Analyzer(CONFIG, on_record=records.append, setup=setup)
        analyzer.run(source)
        analyzer.close()
    return records, calls


@pytest.mark.parametrize(
    ("capture", "protocol", "keys", "reads"),
    [
        # TLS: the ClientHello is read while classifying, the server's flight once.
        ("https-443.pcap", "tls", ("ja3", "ja4", "sni", "ja3s", "cipher"), 1),
        ("tls-22.pcap", "tls", ("ja3", "ja4", "ja3s"), 1),
        # OpenSSH sends its banner and its KEXINIT in separate segments: the server banner
        # classifies, then the client's banner, the server's KEXINIT and the client's KEXINIT.
        ("ssh-22.pcap", "ssh", ("hassh", "hassh_server", "ssh_client", "ssh_server"), 3),
        ("ssh-443.pcap", "ssh", ("hassh", "hassh_server"), 3),
        # HTTP: the request classifies; the response headers settle it (no CONNECT, no Upgrade).
        ("http-8443.pcap", "http", ("http_host", "http_user_agent", "http_status"), 1),
    ],
)
def test_inspection_ends_after_the_hellos(capture, protocol, keys, reads):
    records, calls = run_counting(capture)
    flows = [r for r in records if r.protocol == protocol]
    assert flows
    for rec in flows:
        assert all(k in rec.meta for k in keys), (rec.meta.keys(), keys)
    assert calls <= reads * len(flows), (calls, len(flows))


def test_cleartext_protocols_keep_watching_for_starttls():
    # SMTP's facts (STARTTLS, a login in clear) come late: its inspection does not stop early.
    records, calls = run_counting("smtp-25.pcap")
    smtp = [r for r in records if r.protocol == "smtp"]
    assert smtp and calls > len(smtp)
    assert any(r.meta.get("upgraded_to") == "tls" or "banner" in r.meta for r in smtp)


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


def test_text_protocol_facts_are_read_once_at_the_end(monkeypatch):
    # SMTP's STARTTLS and logins can come at any point: the conversation is read once when
    # inspection ends (and once at the verdict, for the banner), not on every segment, with the
    # same facts as reading it every time.
    import portwatch.pipeline as pipeline

    def facts(records):
        return [(r.meta.get("banner"), r.meta.get("smtp_helo"), r.meta.get("upgraded_to"),
                 r.meta.get("cleartext_login")) for r in records if r.protocol == "smtp"]

    calls = []
    real = pipeline.upgrade_meta
    monkeypatch.setattr(pipeline, "upgrade_meta", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    records, _ = run_counting("smtp-25.pcap")
    smtp = [r for r in records if r.protocol == "smtp"]
    assert smtp and len(calls) <= 2 * len(smtp)
    monkeypatch.setattr(pipeline, "upgrade_settles", lambda protocol: True)  # read on every segment
    calls.clear()
    every_segment, _ = run_counting("smtp-25.pcap")
    assert len(calls) > 2 * len(smtp)
    assert facts(records) == facts(every_segment)
    assert any(f[0] for f in facts(records))  # the banner is there
