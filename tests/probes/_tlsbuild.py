"""Builders for synthetic TLS hellos and real ones made by Python's ssl module (in memory, no sockets)."""

from __future__ import annotations

import contextlib
import datetime
import ssl
import struct
import tempfile
from pathlib import Path


def ext(etype: int, body: bytes = b"") -> bytes:
    return struct.pack("!HH", etype, len(body)) + body


def sni_ext(name: str) -> bytes:
    raw = name.encode()
    entry = b"\x00" + struct.pack("!H", len(raw)) + raw
    return ext(0x0000, struct.pack("!H", len(entry)) + entry)


def alpn_ext(*protos: bytes) -> bytes:
    body = b"".join(bytes([len(p)]) + p for p in protos)
    return ext(0x0010, struct.pack("!H", len(body)) + body)


def u16_list_ext(etype: int, values: list[int], width: int = 2) -> bytes:
    body = b"".join(struct.pack("!H", v) for v in values)
    prefix = struct.pack("!H", len(body)) if width == 2 else bytes([len(body)])
    return ext(etype, prefix + body)


def point_formats_ext(formats: list[int]) -> bytes:
    return ext(0x000B, bytes([len(formats)]) + bytes(formats))


def client_hello_body(
    ciphers: list[int], extensions: list[bytes] | None, version: int = 0x0303, session_id: bytes = b""
) -> bytes:
    body = struct.pack("!H", version) + bytes(range(32)) + bytes([len(session_id)]) + session_id
    body += struct.pack("!H", 2 * len(ciphers)) + b"".join(struct.pack("!H", c) for c in ciphers)
    body += b"\x01\x00"
    if extensions is not None:
        exts = b"".join(extensions)
        body += struct.pack("!H", len(exts)) + exts
    return body


def handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


def record(content_type: int, payload: bytes, version: int = 0x0301) -> bytes:
    return struct.pack("!BHH", content_type, version, len(payload)) + payload


def client_hello_record(ciphers: list[int], extensions: list[bytes] | None, version: int = 0x0303) -> bytes:
    return record(22, handshake(1, client_hello_body(ciphers, extensions, version)))


def ja4_spec_extensions(order: list[int], sigalgs: list[int], alpn: bytes = b"h2") -> list[bytes]:
    """Extensions in the given order with real bodies where JA4 looks inside them."""
    out = []
    for e in order:
        if e == 0x0000:
            out.append(sni_ext("example.com"))
        elif e == 0x0010:
            out.append(alpn_ext(alpn, b"http/1.1"))
        elif e == 0x000D:
            out.append(u16_list_ext(0x000D, sigalgs))
        elif e == 0x002B:
            out.append(u16_list_ext(0x002B, [0x0304, 0x0303], width=1))
        else:
            out.append(ext(e, b"\x00"))
    return out


# ---------------------------------------------------------------- real handshakes, in memory


def self_signed_cert(directory: Path, cn: str = "probe.test") -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    issuer = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Portwatch Test"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Portwatch Test CA"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def real_handshake(
    server_name: str | None = "example.com",
    alpn: list[str] | None = None,
    max_version: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3,
    cn: str = "probe.test",
) -> tuple[bytes, bytes]:
    """(client's first flight, server's first flight) of a real OpenSSL handshake over memory BIOs."""
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    client_ctx.maximum_version = max_version
    if alpn:
        client_ctx.set_alpn_protocols(alpn)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.maximum_version = max_version
    if alpn:
        server_ctx.set_alpn_protocols(alpn)
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = self_signed_cert(Path(tmp), cn)
        server_ctx.load_cert_chain(cert, key)
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=server_name)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    with contextlib.suppress(ssl.SSLWantReadError):
        client.do_handshake()
    hello = c_out.read()
    s_in.write(hello)
    with contextlib.suppress(ssl.SSLWantReadError):
        server.do_handshake()
    return hello, s_out.read()
