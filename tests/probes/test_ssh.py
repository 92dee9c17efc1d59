"""SSH probe (through the core's engine): real OpenSSH banners + KEXINIT (recorded on loopback), the HASSH README
vector."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import pytest
from _engine import MATCH, NEUTRAL_PORT, NO, classify, probe
from hypothesis import given, settings
from hypothesis import strategies as st

DATA = Path(__file__).parent / "data"
SERVER = (DATA / "ssh_server_openssh92.bin").read_bytes()
CLIENT = (DATA / "ssh_client_openssh92.bin").read_bytes()


def kexinit(kex: str, enc: str, mac: str, comp: str, hostkey: str = "ssh-ed25519") -> bytes:
    lists = [kex, hostkey, enc, enc, mac, mac, comp, comp, "", ""]
    payload = bytes([20]) + bytes(16)
    payload += b"".join(struct.pack("!I", len(x)) + x.encode() for x in lists) + b"\x00" + bytes(4)
    padding = 8 - (len(payload) + 5) % 8 + 8
    return struct.pack("!IB", 1 + len(payload) + padding, padding) + payload + bytes(padding)


def test_real_openssh_server():
    r = probe("ssh", SERVER, False)
    assert r.status == MATCH
    assert r.meta["ssh_server"] == "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10"
    assert r.meta["ssh_protoversion_server"] == "2.0"
    algos = r.meta["hassh_server_algorithms"]
    assert algos.count(";") == 3 and "curve25519-sha256" in algos
    assert r.meta["hassh_server"] == hashlib.md5(algos.encode()).hexdigest()
    assert "hassh" not in r.meta and "ssh_client" not in r.meta


def test_real_openssh_client():
    r = probe("ssh", CLIENT, True)
    assert r.status == MATCH
    assert r.meta["ssh_client"] == "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10"
    assert "ext-info-c" in r.meta["hassh_algorithms"]  # client-only pseudo-algorithm
    assert r.meta["hassh"] == hashlib.md5(r.meta["hassh_algorithms"].encode()).hexdigest()


def test_banner_alone_matches_and_prefixes_are_not_confirmed():
    line_end = SERVER.index(b"\n") + 1
    assert probe("ssh", SERVER[:line_end], False).meta == {
        "ssh_server": "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10",
        "ssh_protoversion_server": "2.0",
    }
    for i in range(line_end):
        assert probe("ssh", SERVER[:i], False).status == NO, i
        assert probe("ssh", CLIENT[:i], True).status == NO, i
    # a KEXINIT cut short: still a match on the banner, no HASSH
    r = probe("ssh", SERVER[: line_end + 100], False)
    assert r.status == MATCH and "hassh_server" not in r.meta


def test_hassh_readme_vector():
    """salesforce/hassh README example 1: Cyberduck 6.7.1 -> 8a8ae540028bf433cd68356c1b9e8d5b."""
    kex = (
        "curve25519-sha256@libssh.org,diffie-hellman-group-exchange-sha256,ecdh-sha2-nistp521,"
        "ecdh-sha2-nistp384,ecdh-sha2-nistp256,diffie-hellman-group-exchange-sha1,"
        "diffie-hellman-group1-sha1,diffie-hellman-group14-sha1,diffie-hellman-group14-sha256,"
        "diffie-hellman-group15-sha512,diffie-hellman-group16-sha512,diffie-hellman-group17-sha512,"
        "diffie-hellman-group18-sha512,diffie-hellman-group14-sha256@ssh.com,"
        "diffie-hellman-group15-sha256,diffie-hellman-group15-sha256@ssh.com,"
        "diffie-hellman-group15-sha384@ssh.com,diffie-hellman-group16-sha256,"
        "diffie-hellman-group16-sha384@ssh.com,diffie-hellman-group16-sha512@ssh.com,"
        "diffie-hellman-group18-sha512@ssh.com"
    )
    enc = (
        "aes128-cbc,aes128-ctr,aes192-cbc,aes192-ctr,aes256-cbc,aes256-ctr,blowfish-cbc,blowfish-ctr,"
        "cast128-cbc,cast128-ctr,idea-cbc,idea-ctr,serpent128-cbc,serpent128-ctr,serpent192-cbc,"
        "serpent192-ctr,serpent256-cbc,serpent256-ctr,3des-cbc,3des-ctr,twofish128-cbc,"
        "twofish128-ctr,twofish192-cbc,twofish192-ctr,twofish256-cbc,twofish256-ctr,twofish-cbc,"
        "arcfour,arcfour128,arcfour256"
    )
    mac = "hmac-sha1,hmac-sha1-96,hmac-md5,hmac-md5-96,hmac-sha2-256,hmac-sha2-512"
    data = b"SSH-2.0-Cyberduck/6.7.1.28683 (Mac OS X/10.13.6) (x86_64)\r\n"
    data += kexinit(kex, enc, mac, "zlib@openssh.com,zlib,none")
    r = probe("ssh", data, True)
    assert r.meta["ssh_client"] == "SSH-2.0-Cyberduck/6.7.1.28683 (Mac OS X/10.13.6) (x86_64)"
    assert r.meta["hassh"] == "8a8ae540028bf433cd68356c1b9e8d5b"
    s = probe("ssh", b"SSH-2.0-X\n" + kexinit(kex, enc, mac, "zlib@openssh.com,zlib,none"), False)
    assert s.meta["hassh_server"] == "8a8ae540028bf433cd68356c1b9e8d5b"  # symmetric lists


def test_server_lines_before_banner(tmp_path):
    # The shipped signature runs the probe only on units opening with "SSH-"; a user signature
    # with the probe alone shows what the probe reads of lines before the banner (RFC 4253 4.2).
    (tmp_path / "ssh.toml").write_text('protocol = "ssh"\n[[match]]\nprobe = "ssh"\n')
    data = b"Welcome to the jump host\r\nauthorised use only\r\nSSH-2.0-dropbear_2022.83\r\n"

    def server_says(unit: bytes):
        return classify("tcp", [], [unit], NEUTRAL_PORT, dirs=[tmp_path])

    d = server_says(data)
    assert d.protocol == "ssh" and d.meta["ssh_server"] == "SSH-2.0-dropbear_2022.83"
    assert "server bytes confirmed by the ssh probe" in d.evidence
    assert server_says(data[:30]).protocol == "unknown"
    assert server_says(b"line\r\n" * 40 + b"SSH-2.0-x\r\n").protocol == "unknown"  # bounded
    assert probe("ssh", data, False).status == NO  # the shipped signature wants the banner first
    assert probe("ssh", data, True).status == NO  # a client must start with the banner


def test_banner_variants():
    assert probe("ssh", b"SSH-1.99-OpenSSH_3.9p1\n", False).meta["ssh_protoversion_server"] == "1.99"
    assert probe("ssh", b"SSH-2.0-PuTTY_Release_0.78\r\n", True).status == MATCH
    evil = probe("ssh", b"SSH-2.0-x \x1b]0;pwned\x07\r\n", True)
    assert evil.status == NO or "\x1b" not in evil.meta["ssh_client"]


@pytest.mark.parametrize(
    "data",
    [
        b"SSH-2.0\r\n",  # no software version
        b"SSH-two-OpenSSH\r\n",
        b"SSH-2.0- OpenSSH\r\n",
        b"SSH-2.0-" + b"A" * 300 + b"\r\n",  # longer than 255
        b"SSH-2.0-" + b"A" * 300,  # no end of line in sight
        b"GET / HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01",
        b"ssh-2.0-openssh\r\n",
    ],
)
def test_near_misses(data):
    assert probe("ssh", data, True).status == NO


def test_binary_before_banner_is_no():
    assert probe("ssh", b"\x00\x01\x02garbage\r\nSSH-2.0-x\r\n", False).status == NO


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.booleans())
def test_never_raises(data, from_client):
    assert probe("ssh", data, from_client).status in (MATCH, NO)
    assert probe("ssh", b"SSH-2.0-x\r\n" + data, from_client).status == MATCH
