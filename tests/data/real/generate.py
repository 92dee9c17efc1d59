"""Regenerate the real-client byte samples in this folder (run as root: some ports are < 1024).

Each sample is what a real client program sent first on loopback to a listener that only records:
the client libraries and tools below build the bytes, nothing here is typed by hand. Files are named
`<protocol>-<what>.bin`. Needs: curl, dig, git, openssl (Debian) and ldap3, kafka-python, pymongo,
impacket (PyPI). Usage: python3 tests/data/real/generate.py [name ...]
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"


def record(port: int, udp: bool, client: Callable[[], None], wait: float = 4.0, reply: bytes = b"") -> bytes:
    """Listen on HOST:port, run `client` in a thread, return the first bytes it sent."""
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    srv = socket.socket(socket.AF_INET, kind)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((HOST, port))
    srv.settimeout(wait)
    worker = threading.Thread(target=_quietly, args=(client,), daemon=True)
    data = b""
    try:
        if not udp:
            srv.listen(1)
        worker.start()
        if udp:
            try:
                data, _ = srv.recvfrom(65535)
            except TimeoutError:
                return b""
        else:
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                return b""
            conn.settimeout(0.7)
            with conn:
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline and len(data) < 4096:
                    try:
                        chunk = conn.recv(4096)
                    except TimeoutError:
                        if data:
                            break
                        continue
                    if not chunk:
                        break
                    data += chunk
                    if reply:
                        conn.sendall(reply)
                        reply = b""
    finally:
        srv.close()
        worker.join(timeout=wait)
    return data


def _quietly(fn: Callable[[], None]) -> None:
    with contextlib.suppress(Exception):
        fn()


def run(*cmd: str) -> Callable[[], None]:
    return lambda: subprocess.run(cmd, capture_output=True, timeout=5, check=False)


def ldap_bind() -> None:
    import ldap3

    server = ldap3.Server(HOST, port=3389, connect_timeout=2)
    ldap3.Connection(server, user="cn=admin,dc=example,dc=test", password="not-a-secret", auto_bind=True)


def kafka_client() -> None:
    from kafka import KafkaProducer

    KafkaProducer(bootstrap_servers=f"{HOST}:9092", api_version_auto_timeout_ms=1500, request_timeout_ms=1500)


def mongo_ping() -> None:
    import pymongo

    pymongo.MongoClient(HOST, 27017, serverSelectionTimeoutMS=1500, connectTimeoutMS=1500).admin.command("ping")


def smb_negotiate() -> None:
    from impacket.smbconnection import SMBConnection

    SMBConnection("*SMBSERVER", HOST, sess_port=445, timeout=2)


def mssql_prelogin() -> None:
    from impacket import tds

    conn = tds.MSSQL(HOST, 1433)
    conn.connect()
    conn.preLogin()


def kerberos_asreq() -> None:
    from impacket.krb5.kerberosv5 import getKerberosTGT
    from impacket.krb5.types import Principal

    user = Principal("alice", type=1)
    getKerberosTGT(user, "not-a-secret", "EXAMPLE.TEST", b"", b"", kdcHost=HOST)


def netbios_query() -> None:
    from impacket.nmb import NetBIOS

    NetBIOS().gethostbyname("WORKSTATION", nameserver=HOST, timeout=2)


SAMPLES: dict[str, tuple[int, bool, Callable[[], None], bytes]] = {
    "ldap-bind": (3389, False, ldap_bind, b""),
    "kafka-apiversions": (9092, False, kafka_client, b""),
    "mongodb-hello": (27017, False, mongo_ping, b""),
    "smb-negotiate": (445, False, smb_negotiate, b""),
    "mssql-prelogin": (1433, False, mssql_prelogin, b""),
    "kerberos-asreq-tcp": (88, False, kerberos_asreq, b""),
    "netbios-ns-query": (137, True, netbios_query, b""),
    "socks5-connect": (
        1080,
        False,
        run("curl", "-s", "-m", "2", "--socks5-hostname", f"{HOST}:1080", "http://www.example.test/"),
        b"\x05\x00",
    ),
    "socks4-connect": (1081, False, run("curl", "-s", "-m", "2", "--socks4", f"{HOST}:1081", "http://10.9.8.7/"), b""),
    "mdns-query": (
        5353,
        True,
        run("dig", "+tries=1", "+time=1", "-p", "5353", f"@{HOST}", "_ipp._tcp.local", "PTR"),
        b"",
    ),
    "llmnr-query": (5355, True, run("dig", "+tries=1", "+time=1", "-p", "5355", f"@{HOST}", "printer", "A"), b""),
    "git-upload-pack": (9418, False, run("git", "ls-remote", f"git://{HOST}:9418/project.git"), b""),
    "http2-prior-knowledge": (
        8080,
        False,
        run("curl", "-s", "-m", "2", "--http2-prior-knowledge", f"http://{HOST}:8080/"),
        b"",
    ),
    "http-h2c-upgrade": (8081, False, run("curl", "-s", "-m", "2", "--http2", f"http://{HOST}:8081/"), b""),
    "http-connect": (
        3128,
        False,
        run("curl", "-s", "-m", "2", "-p", "-x", f"http://{HOST}:3128", "http://ssh.example.test:22/"),
        b"",
    ),
    "http-websocket": (
        8082,
        False,
        run(
            "curl",
            "-s",
            "-m",
            "2",
            "--http1.1",
            "-H",
            "Connection: Upgrade",
            "-H",
            "Upgrade: websocket",
            "-H",
            "Sec-WebSocket-Version: 13",
            "-H",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            f"http://{HOST}:8082/chat",
        ),
        b"",
    ),
    "dtls-clienthello": (4433, True, run("openssl", "s_client", "-dtls1_2", "-connect", f"{HOST}:4433"), b""),
}


def main(names: list[str]) -> int:
    for name, (port, udp, client, reply) in SAMPLES.items():
        if names and name not in names:
            continue
        data = record(port, udp, client, reply=reply)
        if not data:
            print(f"{name}: nothing received", file=sys.stderr)
            continue
        (HERE / f"{name}.bin").write_bytes(data)
        print(f"{name}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
