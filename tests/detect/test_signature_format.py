"""The signature file format: every kind of error names file, line and field; the README example loads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from portwatch.detect.signature import SignatureError, default_signature_dir, load_signatures, parse_signature

ROOT = Path(__file__).resolve().parents[2]
GOOD_MATCH = '[[match]]\nprefix = "HELLO"\n'
CANONICAL = [
    "ssh", "tls", "http", "http2", "smtp", "pop3", "imap", "ftp", "telnet", "dns", "ntp", "quic", "dtls", "rdp",
    "smb", "mysql", "postgresql", "redis", "mongodb", "mqtt", "sip", "bittorrent", "irc", "xmpp", "ldap",
    "kerberos", "socks", "rtsp", "vnc", "snmp", "syslog", "dhcp", "openvpn", "wireguard", "bgp", "nntp", "rsync",
    "ssdp", "mdns", "netbios", "stun", "rtp", "tftp", "finger", "whois", "ident",
]  # fmt: skip

# (file text, expected line, expected field, words the problem must contain)
ERRORS = [
    ('protocol = "x"\nbogus = 1\n' + GOOD_MATCH, 2, "bogus", "unknown field"),
    ('protocol = "x"\nports = "80"\n' + GOOD_MATCH, 2, "ports", "must be list"),
    ('protocol = "x"\nports = [70000]\n' + GOOD_MATCH, 2, "ports", "1-65535"),
    ('protocol = "x"\ntransports = ["sctp"]\n' + GOOD_MATCH, 2, "transports", "not one of"),
    ('protocol = "Bad Name"\n' + GOOD_MATCH, 1, "protocol", "lowercase"),
    ("description = 'no name'\n" + GOOD_MATCH, 1, "protocol", "missing"),
    ('protocol = "x"\n', 1, "match", "at least one"),
    ('protocol = "x"\n\n[[match]]\nprefix = "A"\nprefix_hex = "41"\n', 5, "match[0].prefix_hex", "not both"),
    ('protocol = "x"\n[[match]]\nprefix_hex = "zz"\n', 3, "match[0].prefix_hex", "not a hex"),
    ('protocol = "x"\n[[match]]\nregex = "(unclosed"\n', 3, "match[0].regex", "invalid pattern"),
    ('protocol = "x"\n[[match]]\nregex = "(a+)+b"\n', 3, "match[0].regex", "nested"),
    ('protocol = "x"\n[[match]]\ndirection = "up"\nprefix = "A"\n', 3, "match[0].direction", "one of"),
    ('protocol = "x"\n[[match]]\nprobe = "nope"\n', 3, "match[0].probe", "unknown probe"),
    ('protocol = "x"\n[[match]]\nprefix = "A"\nconfidence = 1.5\n', 4, "match[0].confidence", "(0, 1]"),
    ('protocol = "x"\n[[match]]\nprefix = "A"\ndepth = 0\n', 4, "match[0].depth", "1.."),
    ('protocol = "x"\n[[match]]\nprefix = "A"\nports = []\n', 4, "match[0].ports", "non-empty"),
    ('protocol = "x"\n[[match]]\nprefix = "A"\nports = [0]\n', 4, "match[0].ports", "1-65535"),
    ('protocol = "x"\n[[match]]\ndirection = "client"\n', 2, "match[0].match", "needs a prefix"),
    ('protocol = "x"\ntransports = ["udp"]\n[[match]]\nprefix = "A"\ntransports = ["tcp"]\n', 5,
     "match[0].transports", "subset"),
    ('protocol = "x"\nrequire_both_directions = true\n[[match]]\ndirection = "client"\nprefix = "A"\n', 2,
     "require_both_directions", "server-side"),
    ('protocol = "x"\nprelude = "yes"\n' + GOOD_MATCH, 2, "prelude", "must be bool"),
    ('protocol = "x"\n[[match]\nprefix = "A"\n', 2, "", "invalid TOML"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line", "field", "words"), ERRORS)
def test_every_error_names_file_line_and_field(text: str, line: int, field: str, words: str) -> None:
    with pytest.raises(SignatureError) as info:
        parse_signature(text, "user/x.toml", "user")
    err = info.value
    assert (err.path, err.line, err.field) == ("user/x.toml", line, field)
    assert words in err.problem
    assert str(err).startswith(f"user/x.toml:{line}: ")


def test_readme_example_is_a_valid_signature() -> None:
    readme = (Path(__file__).resolve().parents[2] / "signatures" / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```toml\n(.*?)```", readme, re.DOTALL)
    assert example is not None
    sig = parse_signature(example.group(1), "README.md")
    assert sig.protocol and sig.matches


def test_shipped_set_loads_and_names_are_unique() -> None:
    sigs = load_signatures()
    names = [s.protocol for s in sigs]
    assert len(names) == len(set(names))
    files = sorted(p.stem for p in default_signature_dir().glob("*.toml"))
    assert files == sorted(names)  # one file per protocol, named after it


def test_design_canonical_names_all_have_a_signature() -> None:
    design = (ROOT / ".." / "shared" / "DESIGN.md").resolve()
    canonical = CANONICAL
    if design.exists():  # the list in DESIGN.md itself, when the shared folder is there
        section = design.read_text(encoding="utf-8").split("## Canonical protocol names", 1)[1]
        names = section.split("Use these spellings")[0].split(":", 1)[1]
        canonical = re.findall(r"\b([a-z0-9]+)(?=[,.])", names)
    have = {s.protocol for s in load_signatures()}
    assert set(canonical) <= have


def test_user_directory_overrides_a_builtin(tmp_path: Path) -> None:
    (tmp_path / "ssh.toml").write_text('protocol = "ssh"\n[[match]]\nprefix = "SSH-"\nconfidence = 0.5\n')
    sigs = {s.protocol: s for s in load_signatures([str(tmp_path)])}
    assert sigs["ssh"].origin == "user" and sigs["ssh"].matches[0].confidence == 0.5
    assert sigs["tls"].origin == "builtin"
