"""TLS probe: record layer, ClientHello / ServerHello / Certificate, JA3, JA3S and JA4.

`probe(data, from_client)` looks at the first bytes of one direction of a TCP stream.

Client side, a ClientHello (possibly spread over several handshake records) gives
``tls_version`` (highest offered: supported_versions if present, else the hello's version),
``sni``, ``alpn`` (list), ``ja3``, ``ja3_string`` and ``ja4``. Server side, a ServerHello gives
``tls_version`` (negotiated), ``cipher`` ("0x1301"), ``cipher_name`` (when known), ``alpn``,
``ja3s``, ``ja3s_string``; a Certificate sent in clear (TLS <= 1.2) adds ``cert_subject`` and
``cert_issuer`` (the CN when there is one, else the RFC 4514 name). A stream that starts with an
alert, change_cipher_spec or application_data records (capture started mid-stream) matches with
``tls_midstream: True`` (and ``tls_alert`` for alerts). An SSLv2-compatible ClientHello matches
with ``tls_sslv2_hello: True``.

Version names used in ``tls_version``: "ssl2", "ssl3", "1.0", "1.1", "1.2", "1.3", "dtls1.0",
"dtls1.2", "dtls1.3", else "0x7f17" style hex.

The hello parsers (`parse_client_hello`, `client_hello_meta`, `ja3_of`, `ja4_of`) are shared with
the QUIC and DTLS probes.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from typing import Any

from portwatch.detect.probes import guarded
from portwatch.model import NEED_MORE, NO_MATCH, ProbeResult, ProbeStatus
from portwatch.sanitize import clean_text

MAX_INPUT = 65536  # bytes of input we ever look at
MAX_RECORD = 16384 + 2048  # TLSCiphertext upper bound (RFC 8446 §5.2)
MAX_LIST = 16  # ALPN values kept in meta
MAX_VALUES = 1024  # ciphers / extensions / groups kept per hello
TRUNCATED_MATCH_AT = 4096  # a hello cut by the detection depth still matches (partially)
JA3_TEXT_LIMIT = 4096

CT_CCS, CT_ALERT, CT_HANDSHAKE, CT_APPDATA = 20, 21, 22, 23
HS_CLIENT_HELLO, HS_SERVER_HELLO, HS_CERTIFICATE = 1, 2, 11

EXT_SNI = 0x0000
EXT_GROUPS = 0x000A
EXT_POINT_FORMATS = 0x000B
EXT_SIG_ALGS = 0x000D
EXT_ALPN = 0x0010
EXT_SUPPORTED_VERSIONS = 0x002B
_EXT_HEADER = struct.Struct("!HH")
_READ_EXTENSIONS = frozenset((EXT_SNI, EXT_GROUPS, EXT_POINT_FORMATS, EXT_SIG_ALGS, EXT_ALPN, EXT_SUPPORTED_VERSIONS))

VERSION_NAMES = {
    0x0002: "ssl2",
    0x0300: "ssl3",
    0x0301: "1.0",
    0x0302: "1.1",
    0x0303: "1.2",
    0x0304: "1.3",
    0xFEFF: "dtls1.0",
    0xFEFD: "dtls1.2",
    0xFEFC: "dtls1.3",
}
_JA4_VERSIONS = {
    0x0002: "s2",
    0x0300: "s3",
    0x0301: "10",
    0x0302: "11",
    0x0303: "12",
    0x0304: "13",
    0xFEFF: "d1",
    0xFEFD: "d2",
    0xFEFC: "d3",
}
# DTLS versions count down: a smaller number is a newer version.
_VERSION_RANK = {
    0x0002: 1,
    0x0300: 2,
    0x0301: 3,
    0x0302: 4,
    0x0303: 5,
    0x0304: 6,
    0xFEFF: 3,
    0xFEFD: 5,
    0xFEFC: 6,
}

CIPHER_NAMES = {
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    0x1304: "TLS_AES_128_CCM_SHA256",
    0x1305: "TLS_AES_128_CCM_8_SHA256",
    0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCA9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    0xC009: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    0xC00A: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    0xC023: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    0xC027: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    0xC024: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    0xC028: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    0x009C: "TLS_RSA_WITH_AES_128_GCM_SHA256",
    0x009D: "TLS_RSA_WITH_AES_256_GCM_SHA384",
    0x009E: "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    0x009F: "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    0x002F: "TLS_RSA_WITH_AES_128_CBC_SHA",
    0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA",
    0x003C: "TLS_RSA_WITH_AES_128_CBC_SHA256",
    0x003D: "TLS_RSA_WITH_AES_256_CBC_SHA256",
    0x000A: "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    0x0004: "TLS_RSA_WITH_RC4_128_MD5",
    0x0005: "TLS_RSA_WITH_RC4_128_SHA",
}


def is_grease(value: int) -> bool:
    """RFC 8701 GREASE code points: 0x0a0a, 0x1a1a, ..., 0xfafa."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


GREASE = frozenset(v for v in range(0x0A0A, 0x10000, 0x1010) if is_grease(v))  # set look-ups, not calls


def version_name(version: int) -> str:
    return VERSION_NAMES.get(version, f"0x{version:04x}")


# --------------------------------------------------------------------------- ClientHello


@dataclass(slots=True)
class ClientHello:
    legacy_version: int
    ciphers: list[int] = field(default_factory=list)
    extensions: list[int] = field(default_factory=list)
    sni: bytes | None = None
    alpn: list[bytes] = field(default_factory=list)
    supported_versions: list[int] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    point_formats: list[int] = field(default_factory=list)
    sig_algs: list[int] = field(default_factory=list)
    complete: bool = False  # every field up to the end of the extensions was present

    @property
    def best_version(self) -> int:
        """Highest version offered: from supported_versions when present (GREASE ignored)."""
        best, best_rank, highest = -1, -1, -1  # the best-ranked known version; the highest unknown one
        for v in self.supported_versions:
            if v in GREASE:
                continue
            rank = _VERSION_RANK.get(v)
            if rank is None:
                if v > highest:
                    highest = v
            elif rank > best_rank:
                best, best_rank = v, rank
        if best_rank >= 0:
            return best
        return highest if highest >= 0 else self.legacy_version


def _u16_list(buf: bytes, start: int, end: int) -> list[int]:
    end = min(end, len(buf), start + 2 * MAX_VALUES)
    count = max(0, (end - start) // 2)
    return list(struct.unpack_from(f"!{count}H", buf, start)) if count else []


def _parse_extension(ch: ClientHello, etype: int, ext: bytes) -> None:
    """Fill `ch` from one extension body; a malformed body is ignored (the type still counts)."""
    n = len(ext)
    if etype == EXT_SNI and n >= 2:
        end = min(2 + struct.unpack_from("!H", ext, 0)[0], n)
        off = 2
        while off + 3 <= end:
            ntype, nlen = ext[off], struct.unpack_from("!H", ext, off + 1)[0]
            off += 3
            if ntype == 0 and ch.sni is None:
                ch.sni = ext[off : min(off + nlen, end)]
            off += nlen
    elif etype == EXT_ALPN and n >= 2:
        end = min(2 + struct.unpack_from("!H", ext, 0)[0], n)
        off = 2
        while off < end and len(ch.alpn) < MAX_VALUES:
            plen = ext[off]
            off += 1
            if off + plen > end:
                break
            ch.alpn.append(ext[off : off + plen])
            off += plen
    elif etype == EXT_SUPPORTED_VERSIONS and n >= 1:
        ch.supported_versions = _u16_list(ext, 1, 1 + ext[0])
    elif etype == EXT_GROUPS and n >= 2:
        ch.groups = _u16_list(ext, 2, 2 + struct.unpack_from("!H", ext, 0)[0])
    elif etype == EXT_POINT_FORMATS and n >= 1:
        ch.point_formats = list(ext[1 : 1 + min(ext[0], MAX_VALUES)])
    elif etype == EXT_SIG_ALGS and n >= 2:
        ch.sig_algs = _u16_list(ext, 2, 2 + struct.unpack_from("!H", ext, 0)[0])


def parse_client_hello(body: bytes, dtls: bool = False, total: int | None = None) -> ClientHello | None:
    """Parse a ClientHello handshake body (after the 4-byte, or DTLS 12-byte, message header).

    `total` is the body length the handshake header announced, when `body` may be a prefix of it.
    Returns None when the bytes present contradict the structure. A body cut short returns what
    could be read with ``complete=False`` (callers decide whether that is enough).
    """
    ch = _parse_client_hello(body, dtls)
    if ch is not None and total is not None and len(body) < total:
        ch.complete = False
    return ch


def _parse_client_hello(body: bytes, dtls: bool) -> ClientHello | None:
    n = len(body)
    if n < 2:
        return None
    version = struct.unpack_from("!H", body, 0)[0]
    if dtls:
        if version not in (0xFEFF, 0xFEFD, 0xFEFC, 0x0100):
            return None
    elif (version >> 8) != 3 or (version & 0xFF) > 4:
        return None
    ch = ClientHello(legacy_version=version)
    off = 2 + 32
    if n <= off:
        return ch
    sid_len = body[off]
    if sid_len > 32:
        return None
    off += 1 + sid_len
    if dtls:
        if n <= off:
            return ch
        cookie_len = body[off]
        off += 1 + cookie_len
    if n < off + 2:
        return ch
    cs_len = struct.unpack_from("!H", body, off)[0]
    if cs_len == 0 or cs_len % 2:
        return None
    off += 2
    ch.ciphers = _u16_list(body, off, off + cs_len)
    off += cs_len
    if n < off + 1:
        return ch
    comp_len = body[off]
    if comp_len == 0:
        return None
    off += 1 + comp_len
    if n < off:
        return ch
    if n == off:
        ch.complete = True  # no extensions at all (SSLv3 / old TLS)
        return ch
    if n < off + 2:
        return ch
    ext_total = struct.unpack_from("!H", body, off)[0]
    off += 2
    ext_end = off + ext_total
    # About 17 extensions per hello: the loop keeps to locals, and only the six read are sliced.
    stop = min(ext_end, n) - 4
    extensions = ch.extensions
    append = extensions.append
    type_and_length = _EXT_HEADER.unpack_from
    read = _READ_EXTENSIONS
    while off <= stop and len(extensions) < MAX_VALUES:
        etype, elen = type_and_length(body, off)
        off += 4
        end = off + elen
        if end > ext_end:
            return None  # an extension overruns the extensions block
        append(etype)
        if end > n:
            return ch  # truncated inside this extension
        if etype in read:
            _parse_extension(ch, etype, body[off:end])
        off = end
    ch.complete = off == ext_end and n >= ext_end
    return ch


def ja3_of(ch: ClientHello) -> tuple[str, str]:
    """(ja3 md5 hex, ja3 string) per salesforce/ja3: GREASE removed from every list."""
    fields = [
        str(ch.legacy_version),
        "-".join(str(c) for c in ch.ciphers if c not in GREASE),
        "-".join(str(e) for e in ch.extensions if e not in GREASE),
        "-".join(str(g) for g in ch.groups if g not in GREASE),
        "-".join(str(p) for p in ch.point_formats),
    ]
    text = ",".join(fields)
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest(), text


def _hash12(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _ja4_alpn(ch: ClientHello) -> str:
    if not ch.alpn or not ch.alpn[0]:
        return "00"
    first = ch.alpn[0]

    def alnum(b: int) -> bool:
        return 0x30 <= b <= 0x39 or 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A

    if alnum(first[0]) and alnum(first[-1]):
        return chr(first[0]) + chr(first[-1])
    hexed = first.hex()
    return hexed[0] + hexed[-1]


def ja4_parts(ch: ClientHello, kind: str = "t") -> tuple[str, str, str]:
    """(ja4_a, ja4_b raw list, ja4_c raw list) per FoxIO's JA4 definition (technical_details/JA4.md)."""
    ciphers = [c for c in ch.ciphers if c not in GREASE]
    exts = [e for e in ch.extensions if e not in GREASE]
    version = _JA4_VERSIONS.get(ch.best_version, "00")
    sni = "d" if EXT_SNI in exts else "i"
    a = f"{kind}{version}{sni}{min(len(ciphers), 99):02d}{min(len(exts), 99):02d}{_ja4_alpn(ch)}"
    b = ",".join(f"{c:04x}" for c in sorted(ciphers))
    c = ",".join(f"{e:04x}" for e in sorted(exts) if e not in (EXT_SNI, EXT_ALPN))
    sigs = [s for s in ch.sig_algs if s not in GREASE]
    if c and sigs:
        c += "_" + ",".join(f"{s:04x}" for s in sigs)
    return a, b, c


def ja4_of(ch: ClientHello, kind: str = "t") -> str:
    """JA4 fingerprint; kind is "t" (TLS over TCP), "q" (QUIC) or "d" (DTLS)."""
    a, b, c = ja4_parts(ch, kind)
    return f"{a}_{_hash12(b) if b else '000000000000'}_{_hash12(c) if c else '000000000000'}"


_FINGERPRINTS: dict[tuple, dict[str, str]] = {}
FINGERPRINT_CACHE = 4096  # distinct client stacks remembered; a flood of unique hellos only refills it


def _sans_grease(values: list[int]) -> tuple[int, ...]:
    return tuple(values) if GREASE.isdisjoint(values) else tuple([v for v in values if v not in GREASE])


def _fingerprints(ch: ClientHello, kind: str) -> dict[str, str]:
    """JA3 and JA4 of a complete hello. One client stack sends the same lists on every connection
    (only the random, session id, SNI and key shares change), so they are computed once per stack."""
    # GREASE values are drawn afresh per connection (RFC 8701) and ignored by both fingerprints.
    key = (kind, ch.legacy_version, _sans_grease(ch.ciphers), _sans_grease(ch.extensions), _sans_grease(ch.groups),
           _sans_grease(ch.sig_algs), _sans_grease(ch.supported_versions), tuple(ch.point_formats),
           ch.alpn[0] if ch.alpn else None)
    found = _FINGERPRINTS.get(key)
    if found is None:
        ja3, ja3_text = ja3_of(ch)
        found = {"ja3": ja3, "ja3_string": clean_text(ja3_text, JA3_TEXT_LIMIT), "ja4": ja4_of(ch, kind)}
        if len(_FINGERPRINTS) >= FINGERPRINT_CACHE:
            _FINGERPRINTS.clear()
        _FINGERPRINTS[key] = found
    return found


def client_hello_meta(ch: ClientHello, kind: str = "t") -> dict[str, Any]:
    """DESIGN.md meta keys for a ClientHello. Fingerprints only when the hello is complete."""
    meta: dict[str, Any] = {"tls_version": version_name(ch.best_version)}
    if ch.sni is not None:
        meta["sni"] = clean_text(ch.sni)
    if ch.alpn:
        meta["alpn"] = [clean_text(p, 64) for p in ch.alpn[:MAX_LIST]]
    if ch.complete:
        meta.update(_fingerprints(ch, kind))
    else:
        meta["tls_truncated"] = True
    return meta


# --------------------------------------------------------------------------- ServerHello


@dataclass(slots=True)
class ServerHello:
    legacy_version: int
    cipher: int
    extensions: list[int] = field(default_factory=list)
    selected_version: int | None = None
    alpn: bytes | None = None

    @property
    def version(self) -> int:
        return self.selected_version if self.selected_version is not None else self.legacy_version


def parse_server_hello(body: bytes, dtls: bool = False) -> ServerHello | None:
    """Parse a complete ServerHello body; None when malformed or too short for the cipher."""
    n = len(body)
    if n < 2 + 32 + 1:
        return None
    version = struct.unpack_from("!H", body, 0)[0]
    if dtls:
        if version not in (0xFEFF, 0xFEFD, 0xFEFC):
            return None
    elif (version >> 8) != 3 or (version & 0xFF) > 4:
        return None
    off = 34
    sid_len = body[off]
    if sid_len > 32:
        return None
    off += 1 + sid_len
    if n < off + 3:
        return None
    cipher = struct.unpack_from("!H", body, off)[0]
    sh = ServerHello(legacy_version=version, cipher=cipher)
    off += 3  # cipher + compression method
    if n < off + 2:
        return sh
    ext_end = min(off + 2 + struct.unpack_from("!H", body, off)[0], n)
    off += 2
    while off + 4 <= ext_end and len(sh.extensions) < MAX_VALUES:
        etype, elen = struct.unpack_from("!HH", body, off)
        off += 4
        ext = body[off : min(off + elen, ext_end)]
        sh.extensions.append(etype)
        if etype == EXT_SUPPORTED_VERSIONS and len(ext) >= 2:
            sh.selected_version = struct.unpack_from("!H", ext, 0)[0]
        elif etype == EXT_ALPN and len(ext) >= 3:
            sh.alpn = ext[3 : 3 + ext[2]]
        off += elen
    return sh


def server_hello_meta(sh: ServerHello) -> dict[str, Any]:
    ja3s_text = f"{sh.legacy_version},{sh.cipher}," + "-".join(str(e) for e in sh.extensions)
    meta: dict[str, Any] = {
        "tls_version": version_name(sh.version),
        "cipher": f"0x{sh.cipher:04x}",
        "ja3s": hashlib.md5(ja3s_text.encode(), usedforsecurity=False).hexdigest(),
        "ja3s_string": clean_text(ja3s_text, JA3_TEXT_LIMIT),
    }
    if sh.cipher in CIPHER_NAMES:
        meta["cipher_name"] = CIPHER_NAMES[sh.cipher]
    if sh.alpn:
        meta["alpn"] = [clean_text(sh.alpn, 64)]
    return meta


def certificate_meta(der: bytes) -> dict[str, Any]:
    """Subject and issuer of one DER certificate (CN when present); {} when it does not parse."""
    try:
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        cert = x509.load_der_x509_certificate(bytes(der))

        def name_text(name: x509.Name) -> str:
            cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
            value = cns[0].value if cns else name.rfc4514_string()
            return clean_text(value if isinstance(value, str) else bytes(value))

        return {"cert_subject": name_text(cert.subject), "cert_issuer": name_text(cert.issuer)}
    except Exception:  # malformed or unsupported certificate: no meta, never an error
        return {}


# --------------------------------------------------------------------------- record layer


def _valid_record_header(data: bytes, off: int) -> bool:
    """Validate as much of a record header as is present at `off`."""
    n = len(data) - off
    if n >= 1 and not CT_CCS <= data[off] <= CT_APPDATA:
        return False
    if n >= 2 and data[off + 1] != 3:
        return False
    if n >= 3 and data[off + 2] > 4:
        return False
    if n >= 5:
        length = struct.unpack_from("!H", data, off + 3)[0]
        if length > MAX_RECORD or (length == 0 and data[off] != CT_APPDATA):
            return False
    return True


def _sslv2_hello(data: bytes) -> ProbeResult | None:
    """SSLv2-compatible ClientHello (RFC 5246 Appendix E.2), or None if not one."""
    if len(data) < 2 or not data[0] & 0x80:
        return None
    length = ((data[0] & 0x7F) << 8) | data[1]
    if len(data) < 11:
        return NEED_MORE if len(data) < 3 or data[2] == 1 else None
    msg_type, version, cs_len, sid_len, chal_len = struct.unpack_from("!BHHHH", data, 2)
    if msg_type != 1 or version not in (0x0002, 0x0300, 0x0301, 0x0302, 0x0303):
        return None
    if cs_len == 0 or cs_len % 3 or sid_len not in (0, 16) or not 16 <= chal_len <= 32:
        return None
    if length != 9 + cs_len + sid_len + chal_len:
        return None
    meta: dict[str, Any] = {"tls_version": version_name(version), "tls_sslv2_hello": True}
    return ProbeResult(ProbeStatus.MATCH, meta)


def _walk_records(data: bytes) -> tuple[list[tuple[int, int]], bytes, bool, bool]:
    """Walk the records: ([(content type, length)], handshake bytes of the leading handshake
    records, truncated (the last record is cut by the end of data), valid (first header ok))."""
    records: list[tuple[int, int]] = []
    handshake = bytearray()
    collecting = True
    off = 0
    n = len(data)
    while off < n and len(records) < 256:
        if off + 5 > n:  # a header cut by the end of data: check what is there
            if not _valid_record_header(data, off):
                return records, bytes(handshake), False, bool(records)
            return records, bytes(handshake), True, True
        # _valid_record_header on a whole header, written out: two to four records per flow
        ctype = data[off]
        length = (data[off + 3] << 8) | data[off + 4]
        if (not CT_CCS <= ctype <= CT_APPDATA or data[off + 1] != 3 or data[off + 2] > 4 or length > MAX_RECORD
                or (length == 0 and ctype != CT_APPDATA)):
            return records, bytes(handshake), False, bool(records)
        records.append((ctype, length))
        if ctype == CT_HANDSHAKE and collecting:
            handshake += data[off + 5 : off + 5 + length]
        else:
            collecting = False
        off += 5 + length
        if off > n:
            return records, bytes(handshake), True, True
    return records, bytes(handshake), False, True


def _client_side(handshake: bytes, truncated: bool, size: int) -> ProbeResult:
    if len(handshake) < 4:
        return NEED_MORE if truncated else NO_MATCH
    if handshake[0] != HS_CLIENT_HELLO:
        return NO_MATCH
    length = int.from_bytes(handshake[1:4], "big")
    if length < 2 + 32 + 1 + 2 + 2 + 1:
        return NO_MATCH
    body = handshake[4 : 4 + length]
    if len(body) < 2:
        return NEED_MORE if truncated else NO_MATCH
    ch = parse_client_hello(body, total=length)
    if ch is None:
        return NO_MATCH
    if not ch.complete and len(body) >= length:
        return NO_MATCH  # all bytes present yet the structure does not close
    if not ch.complete and truncated and size < TRUNCATED_MATCH_AT:
        return NEED_MORE
    if not ch.ciphers and not ch.complete:
        return NEED_MORE if truncated else NO_MATCH
    # A whole ClientHello (complete implies every byte is present): its facts never change.
    return ProbeResult(ProbeStatus.MATCH, client_hello_meta(ch, "t"), done=ch.complete)


def _server_side(handshake: bytes, truncated: bool, size: int, cleartext_over: bool) -> ProbeResult:
    """`cleartext_over`: a record other than handshake followed, so no certificate can come later."""
    if len(handshake) < 4:
        return NEED_MORE if truncated else NO_MATCH
    if handshake[0] != HS_SERVER_HELLO:
        return NO_MATCH
    length = int.from_bytes(handshake[1:4], "big")
    if not 38 <= length <= 65535:
        return NO_MATCH
    if len(handshake) < 4 + length:
        return NEED_MORE if truncated and size < TRUNCATED_MATCH_AT else NO_MATCH
    sh = parse_server_hello(handshake[4 : 4 + length])
    if sh is None:
        return NO_MATCH
    meta = server_hello_meta(sh)
    if sh.version != 0x0304:
        off = 4 + length
        for _ in range(8):  # a few messages: ServerHello, Certificate, ...
            if off + 4 > len(handshake):
                break
            mtype = handshake[off]
            mlen = int.from_bytes(handshake[off + 1 : off + 4], "big")
            if mtype == HS_CERTIFICATE:
                body = handshake[off + 4 : off + 4 + mlen]
                if len(body) >= 6:
                    clen = int.from_bytes(body[3:6], "big")
                    if 6 + clen <= len(body):
                        meta.update(certificate_meta(body[6 : 6 + clen]))
                        cleartext_over = True
                break
            off += 4 + mlen
    # TLS 1.3 encrypts everything after the ServerHello: nothing more to read in clear.
    return ProbeResult(ProbeStatus.MATCH, meta, done=sh.version == 0x0304 or cleartext_over)


def _midstream(records: list[tuple[int, int]], data: bytes, truncated: bool) -> ProbeResult:
    complete = len(records) - (1 if truncated else 0)
    if complete == 0:
        return NEED_MORE if truncated else NO_MATCH
    first_type, first_len = records[0]
    meta: dict[str, Any] = {"tls_midstream": True}
    if first_type == CT_ALERT:
        if first_len != 2 or data[5] not in (1, 2):
            return NO_MATCH
        meta["tls_alert"] = data[6]
    elif first_type == CT_CCS and (first_len != 1 or data[5] != 1):
        return NO_MATCH
    if first_type == CT_APPDATA and complete < 2 and (truncated or 5 + first_len != len(data)):
        return NEED_MORE if truncated else NO_MATCH
    return ProbeResult(ProbeStatus.MATCH, meta)


def _probe(data: bytes, from_client: bool) -> ProbeResult:
    if not data:
        return NEED_MORE
    if from_client and data[0] & 0x80:
        v2 = _sslv2_hello(data)
        if v2 is not None:
            return v2
    records, handshake, truncated, valid = _walk_records(data)
    if not valid:
        return NO_MATCH
    if not records:
        return NEED_MORE  # a valid header prefix (< 5 bytes)
    if records[0][0] != CT_HANDSHAKE:
        return _midstream(records, data, truncated)
    if from_client:
        return _client_side(handshake, truncated, len(data))
    cleartext_over = any(ctype != CT_HANDSHAKE for ctype, _ in records)
    return _server_side(handshake, truncated, len(data), cleartext_over)


probe = guarded(_probe, MAX_INPUT)  # Classify the first bytes of one TLS-over-TCP direction (see the module docstring).
