"""HTTP/1.x probe (through the core's engine): real requests/responses over loopback (http.client, curl,
http.server), near-misses."""

from __future__ import annotations

import http.client
import http.server
import shutil
import socket
import subprocess
import threading

import pytest
from _engine import MATCH, NO, probe
from hypothesis import given, settings
from hypothesis import strategies as st


def _capture_request(send) -> bytes:
    """Listen on loopback, let `send(port)` make a request, return the bytes the server read."""
    with socket.create_server(("127.0.0.1", 0)) as srv:
        port = srv.getsockname()[1]
        got: list[bytes] = []

        def serve() -> None:
            conn, _ = srv.accept()
            with conn:
                conn.settimeout(3)
                buf = b""
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
                got.append(buf)
                conn.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        send(port)
        t.join(5)
    return got[0]


def test_real_http_client_request():
    def send(port: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
        conn.request("GET", "/search?q=portwatch", headers={"User-Agent": "pw-test/1.0", "Host": "example.com"})
        conn.getresponse().read()
        conn.close()

    data = _capture_request(send)
    r = probe("http", data, True)
    assert r.status == MATCH
    assert r.meta == {
        "http_method": "GET",
        "http_path": "/search?q=portwatch",
        "http_version": "1.1",
        "http_host": "example.com",
        "http_user_agent": "pw-test/1.0",
    }
    assert probe("http", data, False).status == NO


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_real_curl_request():
    def send(port: int) -> None:
        subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-X", "POST", "-d", "a=1", f"http://127.0.0.1:{port}/form"],
            timeout=5,
            check=False,
        )

    r = probe("http", _capture_request(send), True)
    assert r.status == MATCH and r.meta["http_method"] == "POST" and r.meta["http_user_agent"].startswith("curl/")


def test_real_http_server_response():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler) as srv:
        t = threading.Thread(target=srv.handle_request, daemon=True)
        t.start()
        with socket.create_connection(srv.server_address, timeout=3) as s:
            s.sendall(b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        t.join(5)
    r = probe("http", data, False)
    assert r.status == MATCH
    assert r.meta["http_status"] == 404 and r.meta["http_version_server"] == "1.0"
    assert r.meta["http_server"].startswith("BaseHTTP/")


def test_upgrade_and_connect():
    ws = b"GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    assert probe("http", ws, True).meta["http_upgrade"] == "websocket"
    h2c = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
    assert probe("http", h2c, False).meta == {"http_version_server": "1.1", "http_status": 101, "http_upgrade": "h2c"}
    r = probe("http", b"CONNECT 10.0.0.1:22 HTTP/1.1\r\nHost: 10.0.0.1:22\r\n\r\n", True)
    assert r.meta["http_connect_target"] == "10.0.0.1:22" and r.meta["http_method"] == "CONNECT"
    assert probe("http", b"CONNECT [2001:db8::1]:443 HTTP/1.1\r\n", True).status == MATCH


def test_prefixes_are_not_confirmed():
    req = b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"
    line_end = req.index(b"\n")
    for i in range(line_end):
        assert probe("http", req[:i], True).status == NO, req[:i]
    assert probe("http", req, True).status == MATCH
    resp = b"HTTP/1.1 200 OK\r\n"
    for i in range(len(resp) - 1):
        assert probe("http", resp[:i], False).status == NO, resp[:i]
    # headers cut mid-line: still a match, the cut header is not reported
    r = probe("http", b"GET / HTTP/1.1\r\nHost: exa", True)
    assert r.status == MATCH and "http_host" not in r.meta


def test_hostile_header_is_sanitised():
    r = probe("http", b"GET / HTTP/1.1\r\nUser-Agent: \x1b[31mred\x1b[0m\xff\r\n\r\n", True)
    assert "\x1b" not in r.meta["http_user_agent"] and "\\x1b" in r.meta["http_user_agent"]


@pytest.mark.parametrize(
    ("data", "from_client"),
    [
        (b"get / HTTP/1.1\r\n", True),  # methods are case-sensitive
        (b"GETX / HTTP/1.1\r\n", True),
        (b"GET / HTTP/2.0\r\n", True),
        (b"GET / HTTP/1.1garbage\r\n", True),
        (b"GET  / HTTP/1.1\r\n", True),
        (b"GET nopath HTTP/1.1\r\n", True),
        (b"CONNECT example.com HTTP/1.1\r\n", True),  # no port
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", True),  # HTTP/2 preface is not HTTP/1.x
        (b"HTTP/1.1 200 OK\r\n", True),  # a response from the client
        (b"GET / HTTP/1.1\r\n", False),  # a request from the server
        (b"HTTP/1.1 600 Nope\r\n", False),
        (b"HTTP/1.1 20 OK\r\n", False),
        (b"HTTP/1.2 200 OK\r\n", False),
        (b"HTTP/1.1 200OK\r\n", False),
        (b"HTTPS/1.1 200 OK\r\n", False),
        (b"SSH-2.0-OpenSSH\r\n", True),
        (b"\x16\x03\x01\x00\x10", True),
        (b"GET /" + b"a" * 9000, True),  # no end of line within the bound
    ],
)
def test_near_misses(data, from_client):
    assert probe("http", data, from_client).status == NO


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.booleans())
def test_never_raises(data, from_client):
    assert probe("http", data, from_client).status in (MATCH, NO)
    assert probe("http", b"GET / HTTP/1.1\r\n" + data, True).status == MATCH
