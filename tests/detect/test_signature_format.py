"""The signature file format (parsed by the core): every kind of error names file, line and field; the README
example loads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from portwatch import _core
from portwatch.signatures import SignatureError, build_engine, check_files, load_signatures

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
    ('protocol = "x"\n[[match]]\nregex = "(?L)a"\n', 3, "match[0].regex", "not supported"),
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
def test_every_error_names_file_line_and_field(tmp_path: Path, text: str, line: int, field: str, words: str) -> None:
    f = tmp_path / "x.toml"
    f.write_text(text)
    (problem,) = check_files([str(f)])
    where = f"{f}:{line}: {field}: " if field else f"{f}:{line}: "
    assert problem.startswith(where) and words in problem[len(where):], problem
    with pytest.raises(SignatureError) as info:  # the same line, first problem, when loading
        build_engine([str(tmp_path)])
    assert str(info.value) == problem
    assert (info.value.path, info.value.line) == (str(f), line)


def test_nested_repeats_are_accepted(tmp_path: Path) -> None:
    # Python's `re` backtracked on them, so the loader refused them; the core's regex engine is
    # linear-time (tests/hostile/test_regex_safety.py).
    f = tmp_path / "x.toml"
    f.write_text('protocol = "x"\n[[match]]\nregex = "(a+)+b"\n')
    assert check_files([str(f)]) == []


def test_readme_example_is_a_valid_signature(tmp_path: Path) -> None:
    readme = (ROOT / "signatures" / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```toml\n(.*?)```", readme, re.DOTALL)
    assert example is not None
    f = tmp_path / "zabbix.toml"
    f.write_text(example.group(1))
    assert check_files([str(f)]) == []
    (sig,) = [s for s in load_signatures([str(tmp_path)]) if s.origin == "user"]
    assert sig.protocol and sig.matches


def test_shipped_set_loads_and_names_are_unique() -> None:
    sigs = load_signatures()
    names = [s.protocol for s in sigs]
    assert len(names) == len(set(names))
    files = sorted(Path(name).stem for name, _text in _core.builtin_signatures())
    assert files == sorted(names)  # one file per protocol, named after it
    assert files == sorted(p.stem for p in (ROOT / "signatures").glob("*.toml"))


def test_design_canonical_names_all_have_a_signature() -> None:
    design = (ROOT / ".." / "shared" / "DESIGN.md").resolve()
    canonical = CANONICAL
    if design.exists():  # the list in DESIGN.md itself, when the shared folder is there
        section = design.read_text(encoding="utf-8").split("## Canonical protocol names", 1)[1]
        names = section.split("Use these spellings")[0].split(":", 1)[1]
        names = names.split(", and the rest")[0]
        canonical = [n.strip() for n in names.split(",") if re.fullmatch(r"[a-z0-9][a-z0-9.-]*", n.strip())]
    have = {s.protocol for s in load_signatures()}
    assert set(canonical) <= have


def test_design_ftp_data_has_a_name_source() -> None:
    # named by the FTP control connection's announcements (core/src/flow/expect.rs), never by its bytes
    sigs = {s.protocol: s for s in load_signatures()}
    assert "ftp-data" in sigs and sigs["ftp-data"].matches == 0
    assert {p for p, s in sigs.items() if s.announces} == {"ftp", "sip", "rtsp", "dcerpc"}


def test_user_directory_overrides_a_builtin(tmp_path: Path) -> None:
    (tmp_path / "ssh.toml").write_text('protocol = "ssh"\n[[match]]\nprefix = "SSH-"\nconfidence = 0.5\n')
    sigs = {s.protocol: s for s in load_signatures([str(tmp_path)])}
    assert sigs["ssh"].origin == "user" and sigs["ssh"].matches == 1
    assert sigs["tls"].origin == "builtin"
    d = build_engine([str(tmp_path)]).classify("tcp", [b"SSH-2.0-x\r\n"], [], 22, final_=True)
    assert d["protocol"] == "ssh" and d["confidence"] == 0.5  # the user file's match, not the shipped one
