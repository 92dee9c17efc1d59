"""QUIC probe: long-header packets, and the client Initial decrypted down to its ClientHello.

`probe(data, from_client)` takes one UDP datagram.

- A long header (RFC 8999 invariants, RFC 9000 §17.2) with a known version (v1, v2 per RFC 9369,
  drafts 23-34, Google Q0xx/T0xx, the reserved 0x?a?a?a?a versions), fixed bit set, connection
  IDs of at most 20 bytes and lengths consistent with the datagram matches. Version
  Negotiation (version 0) matches from the server only.
- For a client Initial of v1, v2 or a draft with a known salt, the Initial keys are derived from
  the Destination Connection ID (RFC 9001 §5.2, RFC 9369 §3.3.1), header protection is removed,
  the payload is decrypted, the CRYPTO frames of every Initial coalesced in the datagram are
  reassembled (bounded) and the ClientHello is handed to the TLS parser.

Meta: ``quic_version`` ("1", "2", "draft-29", "Q050", "0x1a2a3a4a", "negotiation"),
``quic_packet`` ("initial", "0rtt", "handshake", "retry", "version_negotiation"), and when
decrypted the TLS ClientHello keys (``sni``, ``alpn``, ``tls_version``, ``ja3``, ``ja3_string``,
``ja4`` with the "q" prefix; ``tls_truncated`` when the hello continues in a later datagram).
``quic_decrypted`` is False for a client Initial whose payload did not authenticate.

`probe_units(datagrams, from_client)` (marked ``units = True`` for the engine) does the same over
the first datagrams of a direction, so a ClientHello split across Initial datagrams is read whole.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import Any

from portwatch.detect.probes import tls
from portwatch.model import NO_MATCH, ProbeResult, ProbeStatus

MAX_INPUT = 65536
MAX_CID = 20
MAX_COALESCED = 4
MAX_CRYPTO = 16384  # reassembled CRYPTO stream bytes
MAX_FRAMES = 512
MAX_DATAGRAMS = 8  # datagrams `probe_units` reads

V1 = 0x00000001
V2 = 0x6B3343CF
_SALT_V1 = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
_SALT_V2 = bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9")
_SALT_D29 = bytes.fromhex("afbfec289993d24c9e9786f19c6111e04390a899")
_SALT_D23 = bytes.fromhex("c3eef712c72ebb5a11a7d2432bb46365bef9f502")


def initial_salt(version: int) -> bytes | None:
    """The Initial salt of a version, None when we do not know it."""
    if version == V1:
        return _SALT_V1
    if version == V2:
        return _SALT_V2
    if 0xFF000017 <= version <= 0xFF00001C:
        return _SALT_D23
    if 0xFF00001D <= version <= 0xFF000020:
        return _SALT_D29
    if version in (0xFF000021, 0xFF000022):
        return _SALT_V1
    return None


def version_name(version: int) -> str:
    if version == 0:
        return "negotiation"
    if version == V1:
        return "1"
    if version == V2:
        return "2"
    if 0xFF000000 < version <= 0xFF0000FF:
        return f"draft-{version & 0xFF}"
    raw = version.to_bytes(4, "big")
    if raw[:1] in (b"Q", b"T") and raw[1:].isdigit():
        return raw.decode("ascii")
    return f"0x{version:08x}"


def _known_version(version: int) -> bool:
    if initial_salt(version) is not None or 0xFF000001 <= version <= 0xFF0000FF:
        return True
    raw = version.to_bytes(4, "big")
    if raw[:1] in (b"Q", b"T") and raw[1:].isdigit():
        return True
    return (version & 0x0F0F0F0F) == 0x0A0A0A0A  # RFC 9000 §15 reserved (greasing) versions


def _varint(data: bytes, off: int) -> tuple[int, int] | None:
    if off >= len(data):
        return None
    first = data[off]
    size = 1 << (first >> 6)
    if off + size > len(data):
        return None
    value = first & 0x3F
    for b in data[off + 1 : off + size]:
        value = (value << 8) | b
    return value, off + size


def _packet_type(first: int, version: int) -> str:
    bits = (first >> 4) & 3
    if version == V2:
        return ("retry", "initial", "0rtt", "handshake")[bits]
    return ("initial", "0rtt", "handshake", "retry")[bits]


# --------------------------------------------------------------------------- keys and decryption


def _expand_label(secret: bytes, label: bytes, length: int) -> bytes:
    """HKDF-Expand-Label (RFC 8446 §7.1) with SHA-256 and an empty context."""
    full = b"tls13 " + label
    info = struct.pack("!HB", length, len(full)) + full + b"\x00"
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(secret, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def initial_keys(dcid: bytes, version: int, client: bool = True) -> tuple[bytes, bytes, bytes] | None:
    """(key, iv, hp) protecting the client's (or server's) Initial packets, None for unknown versions."""
    salt = initial_salt(version)
    if salt is None:
        return None
    initial_secret = hmac.new(salt, dcid, hashlib.sha256).digest()
    secret = _expand_label(initial_secret, b"client in" if client else b"server in", 32)
    prefix = b"quicv2 " if version == V2 else b"quic "
    return (
        _expand_label(secret, prefix + b"key", 16),
        _expand_label(secret, prefix + b"iv", 12),
        _expand_label(secret, prefix + b"hp", 16),
    )


def _decrypt(packet: bytes, pn_offset: int, keys: tuple[bytes, bytes, bytes]) -> bytes | None:
    """Remove header protection and decrypt one long-header packet (exactly its bytes)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key, iv, hp = keys
    if pn_offset + 4 + 16 > len(packet):
        return None
    sample = packet[pn_offset + 4 : pn_offset + 20]
    encryptor = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()
    mask = encryptor.update(sample) + encryptor.finalize()
    first = packet[0] ^ (mask[0] & 0x0F)
    pn_len = (first & 0x03) + 1
    pn_bytes = bytes(b ^ m for b, m in zip(packet[pn_offset : pn_offset + pn_len], mask[1:], strict=False))
    header = bytes([first]) + packet[1:pn_offset] + pn_bytes
    nonce = bytearray(iv)
    for i, b in enumerate(pn_bytes.rjust(12, b"\x00")):
        nonce[i] ^= b
    try:
        return AESGCM(key).decrypt(bytes(nonce), packet[pn_offset + pn_len :], header)
    except InvalidTag:
        return None


def crypto_frames(payload: bytes) -> list[tuple[int, bytes]]:
    """(offset, data) of the CRYPTO frames of an Initial payload; stops at an unexpected frame."""
    out: list[tuple[int, bytes]] = []
    off = 0
    for _ in range(MAX_FRAMES):
        if off >= len(payload):
            break
        ftype = payload[off]
        off += 1
        if ftype in (0x00, 0x01):  # PADDING, PING
            continue
        if ftype in (0x02, 0x03):  # ACK: largest, delay, range count, first range, ranges, [ECN]
            fields = []
            for _ in range(4):
                v = _varint(payload, off)
                if v is None:
                    return out
                fields.append(v[0])
                off = v[1]
            extra = 2 * min(fields[2], 256) + (3 if ftype == 0x03 else 0)
            for _ in range(extra):
                v = _varint(payload, off)
                if v is None:
                    return out
                off = v[1]
            continue
        if ftype == 0x06:  # CRYPTO
            o = _varint(payload, off)
            if o is None:
                return out
            n = _varint(payload, o[1])
            if n is None or n[1] + n[0] > len(payload):
                return out
            out.append((o[0], payload[n[1] : n[1] + n[0]]))
            off = n[1] + n[0]
            continue
        return out  # CONNECTION_CLOSE or anything else ends what we read
    return out


def reassemble(chunks: list[tuple[int, bytes]]) -> bytes:
    """The contiguous CRYPTO stream from offset 0, bounded by MAX_CRYPTO."""
    stream = bytearray()
    for offset, chunk in sorted(chunks, key=lambda c: c[0]):
        if offset > len(stream) or offset >= MAX_CRYPTO:
            break
        end = min(offset + len(chunk), MAX_CRYPTO)
        if end > len(stream):
            stream += chunk[len(stream) - offset : end - offset]
    return bytes(stream)


# --------------------------------------------------------------------------- packets


def _parse_long(data: bytes, off: int) -> dict[str, Any] | None:
    """Header fields of the long-header packet at `off`, None when malformed."""
    if off + 7 > len(data):
        return None
    first = data[off]
    if not first & 0x80:
        return None
    version = struct.unpack_from("!I", data, off + 1)[0]
    pos = off + 5
    dcid_len = data[pos]
    if dcid_len > MAX_CID or pos + 1 + dcid_len >= len(data):
        return None
    dcid = data[pos + 1 : pos + 1 + dcid_len]
    pos += 1 + dcid_len
    scid_len = data[pos]
    if scid_len > MAX_CID or pos + 1 + scid_len > len(data):
        return None
    pos += 1 + scid_len
    pkt: dict[str, Any] = {"version": version, "dcid": dcid, "first": first, "start": off}
    if version == 0:
        rest = len(data) - pos
        if rest < 4 or rest % 4:
            return None
        pkt.update(type="version_negotiation", end=len(data))
        return pkt
    if not first & 0x40 or not _known_version(version):
        return None
    ptype = _packet_type(first, version)
    pkt["type"] = ptype
    if ptype == "retry":
        if len(data) - pos < 16:
            return None
        pkt["end"] = len(data)
        return pkt
    if ptype == "initial":
        tok = _varint(data, pos)
        if tok is None or tok[1] + tok[0] > len(data):
            return None
        pos = tok[1] + tok[0]
    length = _varint(data, pos)
    if length is None or length[0] < 20 or length[1] + length[0] > len(data):
        return None
    pkt["pn_offset"] = length[1]
    pkt["end"] = length[1] + length[0]
    return pkt


def _initial_chunks(
    data: bytes, pkt: dict[str, Any] | None, version: int, keys: tuple[bytes, bytes, bytes]
) -> tuple[list[tuple[int, bytes]], bool]:
    """CRYPTO chunks of the Initial packets coalesced in one datagram, and whether any decrypted."""
    chunks: list[tuple[int, bytes]] = []
    decrypted = False
    for _ in range(MAX_COALESCED):
        if pkt is None or pkt["type"] != "initial" or pkt["version"] != version:
            break
        plain = _decrypt(data[pkt["start"] : pkt["end"]], pkt["pn_offset"] - pkt["start"], keys)
        if plain is not None:
            decrypted = True
            chunks.extend(crypto_frames(plain))
        pkt = _parse_long(data, pkt["end"]) if pkt["end"] < len(data) else None
    return chunks, decrypted


def _probe_units(units: list[bytes], from_client: bool) -> ProbeResult:
    data = units[0]
    first_pkt = _parse_long(data, 0)
    if first_pkt is None:
        return NO_MATCH
    version = first_pkt["version"]
    meta: dict[str, Any] = {"quic_version": version_name(version), "quic_packet": first_pkt["type"]}
    if first_pkt["type"] == "version_negotiation":
        return ProbeResult(ProbeStatus.MATCH, meta) if not from_client else NO_MATCH
    if first_pkt["type"] == "retry" and from_client:
        return NO_MATCH
    if not from_client or first_pkt["type"] != "initial":
        return ProbeResult(ProbeStatus.MATCH, meta)
    keys = initial_keys(first_pkt["dcid"], version)
    if keys is None:
        return ProbeResult(ProbeStatus.MATCH, meta)
    # Every client Initial is protected with keys from the first Initial's DCID (RFC 9001 §5.2),
    # so later datagrams add the rest of a ClientHello that did not fit in the first one.
    chunks, decrypted = _initial_chunks(data, first_pkt, version, keys)
    if decrypted:
        for later in units[1:MAX_DATAGRAMS]:
            more, _ = _initial_chunks(later, _parse_long(later, 0), version, keys)
            chunks.extend(more)
    meta["quic_decrypted"] = decrypted
    stream = reassemble(chunks)
    if len(stream) >= 4 + 2 and stream[0] == tls.HS_CLIENT_HELLO:
        length = int.from_bytes(stream[1:4], "big")
        ch = tls.parse_client_hello(stream[4 : 4 + length], total=length)
        if ch is not None:
            meta.update(tls.client_hello_meta(ch, "q"))
    return ProbeResult(ProbeStatus.MATCH, meta)


def probe(data: bytes, from_client: bool) -> ProbeResult:
    """Classify one QUIC datagram (see the module docstring)."""
    try:
        return _probe_units([bytes(data[:MAX_INPUT])], from_client)
    except Exception:  # a parser bug (or a missing crypto backend) must never take the pipeline down
        return NO_MATCH


def probe_units(units: list[bytes], from_client: bool) -> ProbeResult:
    """Like `probe` on the first datagram, with the CRYPTO data of the client Initials in the
    following datagrams (up to MAX_DATAGRAMS) added: a ClientHello too big for one datagram
    (post-quantum key shares) is read whole. The verdict is decided by the first datagram."""
    try:
        if not units:
            return NO_MATCH
        return _probe_units([bytes(u[:MAX_INPUT]) for u in units[:MAX_DATAGRAMS]], from_client)
    except Exception:  # a parser bug (or a missing crypto backend) must never take the pipeline down
        return NO_MATCH


probe_units.units = True  # type: ignore[attr-defined]  # the engine passes every datagram of a direction

# The first datagram must open with a long header (RFC 9000 17.2: the top bit set); the engine skips
# the probes for flows whose datagrams all start otherwise (engine._Gate).
probe.first_bytes = frozenset(range(0x80, 0x100))  # type: ignore[attr-defined]
probe_units.first_bytes = probe.first_bytes  # type: ignore[attr-defined]
