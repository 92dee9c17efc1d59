"""The loopback prober against small servers of our own on 127.0.0.1 (no other address is used)."""

from __future__ import annotations

import datetime
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from portwatch.audit.model import Listener
from portwatch.audit.prober import ProbeLimits, connect_address, hello_order, probe_endpoint, probe_listeners
from portwatch.pipeline import Config, Setup
from portwatch.services import fallback_path

HTTP_REPLY = b"HTTP/1.0 200 OK\r\nServer: tiny\r\nContent-Length: 0\r\n\r\n"
FAST = ProbeLimits(connect_timeout=1.0, banner_wait=0.3, read_timeout=0.6)


@pytest.fixture(scope="module")
def engine():
    return Setup.load(Config(services_path=str(fallback_path()))).engine


@contextmanager
def serve(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with suppress(OSError):
                handle(self.request)

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    with Server(("127.0.0.1", 0), Handler) as server:
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield server.server_address[1]
        finally:
            server.shutdown()


def banner(text: bytes) -> Callable[[socket.socket], None]:
    def handle(conn: socket.socket) -> None:
        conn.sendall(text)
        conn.settimeout(2)
        conn.recv(1024)

    return handle


def http_server(conn: socket.socket) -> None:
    conn.settimeout(2)
    data = conn.recv(4096)
    if data.startswith(b"HEAD "):
        conn.sendall(HTTP_REPLY)


def echo_server(conn: socket.socket) -> None:
    conn.settimeout(2)
    while data := conn.recv(4096):
        conn.sendall(data)


def silent_server(conn: socket.socket) -> None:
    conn.settimeout(3)
    conn.recv(4096)
    time.sleep(3)


def test_server_first_banner_is_classified_without_a_hello(engine):
    with serve(banner(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")) as port:
        got = probe_endpoint(engine, "0.0.0.0", port, ["http", "tls"], FAST)
    assert got["protocol"] == "ssh" and got["probe"] == "banner"
    assert got["ssh_server"] == "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"
    assert got["confidence"] >= 0.9


def test_smtp_banner_is_kept_clean(engine):
    with serve(banner(b"220 mail.example ESMTP \x1b[2JPostfix\r\n")) as port:
        got = probe_endpoint(engine, "127.0.0.1", port, ["http"], FAST)
    assert got["protocol"] == "smtp"
    assert "\x1b" not in got["banner"] and got["banner"].startswith("220 mail.example ESMTP \\x1b[2J")


def test_client_first_server_gets_an_http_hello(engine):
    with serve(http_server) as port:
        got = probe_endpoint(engine, "127.0.0.1", port, ["http", "tls"], FAST)
    assert got["protocol"] == "http" and got["probe"] == "hello:http"
    assert got["bytes_c2s"] > 0 and got["bytes_s2c"] == len(HTTP_REPLY)
    assert got["banner"] == "HTTP/1.0 200 OK"


@pytest.fixture(scope="module")
def tls_context(tmp_path_factory) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    d = tmp_path_factory.mktemp("tls")
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    return ctx


def test_tls_server_is_found_by_the_second_hello(engine, tls_context):
    def handle(conn: socket.socket) -> None:
        conn.settimeout(2)
        with tls_context.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)

    with serve(handle) as port:
        got = probe_endpoint(engine, "127.0.0.1", port, hello_order(set()), FAST)  # http first, then tls
    assert got["protocol"] == "tls" and got["probe"] == "hello:tls"
    assert hello_order({"tls"}) == ["tls", "http"]


def test_own_bytes_echoed_back_never_classify(engine):
    with serve(echo_server) as port:
        got = probe_endpoint(engine, "127.0.0.1", port, ["http", "tls"], FAST)
    assert got["protocol"] == "unknown" and got["probe"] == "hello:http,tls"


def test_silent_server_is_bounded_in_time(engine):
    with serve(silent_server) as port:
        started = time.monotonic()
        got = probe_endpoint(engine, "127.0.0.1", port, ["http", "tls"], FAST)
        elapsed = time.monotonic() - started
    assert got["protocol"] == "unknown"
    # banner wait + one read per hello, plus scheduling slack
    assert elapsed < FAST.banner_wait + 2 * FAST.read_timeout + 1.0


def test_refused_connection_is_reported(engine):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: refused
        got = probe_endpoint(engine, "127.0.0.1", port, ["http"], FAST)
    assert got["protocol"] == "unknown" and got["probe"] == "connect" and "refused" in got["probe_error"].lower()


def test_probe_listeners_runs_tcp_only_in_parallel(engine):
    with serve(banner(b"SSH-2.0-x\r\n")) as p1, serve(silent_server) as p2:
        listeners = [
            Listener("tcp", 4, "127.0.0.1", p1, 101, 0),
            Listener("tcp", 4, "127.0.0.1", p2, 102, 0),
            Listener("udp", 4, "127.0.0.1", 9, 103, 0),
        ]
        started = time.monotonic()
        got = probe_listeners(engine, listeners, lambda port, t: set(), FAST)
        elapsed = time.monotonic() - started
    assert set(got) == {101, 102}
    assert got[101]["protocol"] == "ssh" and got[102]["protocol"] == "unknown"
    assert elapsed < FAST.banner_wait + 2 * FAST.read_timeout + 1.0


def test_wildcards_are_reached_on_loopback():
    assert connect_address("0.0.0.0") == "127.0.0.1"
    assert connect_address("::") == "::1"
    assert connect_address("127.0.0.53") == "127.0.0.53"
