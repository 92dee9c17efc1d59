"""xinetd.conf / xinetd.d parser and the reading of a mounted image's configuration."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from portwatch.audit.host import gather, in_root
from portwatch.audit.model import HostFacts
from portwatch.audit.xinetd import build_services, parse_xinetd

ROOT = Path(__file__).parent / "data" / "root"
XD = ROOT / "etc" / "xinetd.d"


def test_blocks_attributes_and_operators():
    f = parse_xinetd((XD / "rlogin").read_text(), "rlogin")
    assert not f.errors
    (block,) = f.blocks
    assert (block.kind, block.name, block.line) == ("service", "login", 3)
    assert block.attrs["log_on_success"] == ["USERID"]  # += onto nothing
    (svc,), disabled, errors = build_services([f])
    assert not disabled and not errors
    assert (svc.name, svc.transport, svc.user, svc.daemon, svc.wait) == ("login", "tcp", "root", "in.rlogind", False)


def test_plus_and_minus_equals():
    text = "service x\n{\n socket_type = stream\n wait = no\n user = nobody\n server = /bin/x\n" \
           " only_from = 10.0.0.1 10.0.0.2\n only_from -= 10.0.0.1\n only_from += 10.0.0.3\n" \
           " server_args = -o a=b\n}\n"
    f = parse_xinetd(text)
    assert not f.errors
    assert f.blocks[0].attrs["only_from"] == ["10.0.0.2", "10.0.0.3"]
    assert f.blocks[0].attrs["server_args"] == ["-o", "a=b"]
    (svc,), _, _ = build_services([f])
    assert svc.extra["only_from"] == "10.0.0.2 10.0.0.3"


def test_internal_disabled_and_unlisted():
    echo = parse_xinetd((XD / "echo").read_text(), "echo")
    chargen = parse_xinetd((XD / "chargen").read_text(), "chargen")
    backdoor = parse_xinetd((XD / "backdoor").read_text(), "backdoor")
    enabled, disabled, errors = build_services([echo, chargen, backdoor])
    assert not errors
    assert [(s.name, s.extra["id"]) for s in disabled] == [("echo", "echo-stream"), ("echo", "echo-dgram")]
    names = {s.name: s for s in enabled}
    assert names["chargen"].internal and names["chargen"].transport == "udp" and names["chargen"].wait
    bd = names["backdoor"]
    assert bd.unlisted and bd.port == 999 and bd.address == "127.0.0.1" and bd.user == "nobody"


def test_defaults_disabled_and_enabled_lists():
    conf = parse_xinetd("defaults\n{\n disabled = rsync\n}\n")
    rsync = parse_xinetd((XD / "rsync").read_text(), "rsync")
    enabled, disabled, _ = build_services([conf, rsync])
    assert not enabled and [s.name for s in disabled] == ["rsync"]
    only = parse_xinetd("defaults {\n enabled = login\n}\n")
    enabled, disabled, _ = build_services([only, rsync, parse_xinetd((XD / "rlogin").read_text())])
    assert [s.name for s in enabled] == ["login"] and [s.name for s in disabled] == ["rsync"]


def test_errors_by_file_and_line_and_the_rest_survives():
    f = parse_xinetd((XD / "broken").read_text(), "/img/etc/xinetd.d/broken")
    enabled, _, errors = build_services([f])
    lines = sorted((e.line, e.message) for e in f.errors + errors)
    assert [n for n, _ in lines] == [7, 8, 12, 19]
    msgs = dict(lines)
    assert msgs[7] == "unknown attribute 'colour'"
    assert "expected 'attribute = value'" in msgs[8]
    assert msgs[12] == "service 'nowait-missing': missing wait"
    assert "not closed" in msgs[19]
    assert str(f.errors[0]).startswith("/img/etc/xinetd.d/broken:7: ")
    # The daytime block with a bad line in it is still a service, as xinetd keeps it.
    assert [(s.name, s.internal) for s in enabled] == [("daytime", True)]


def test_header_problems():
    f = parse_xinetd("service a\nwait = no\n}\nfoo bar\nservice b\n{\n socket_type = stream\n}\n")
    msgs = {e.line: e.message for e in f.errors}
    assert "expected '{'" in msgs[1]
    assert "expected 'service NAME'" in msgs[2] or "expected 'service NAME'" in msgs[4]
    assert msgs[3] == "'}' without an open block"
    _, _, errors = build_services([f])
    assert [e.message for e in errors] == ["service 'b': missing wait"]


def test_image_includedir_skips_backup_names():
    facts = gather(ROOT, with_sockets=False)
    xfiles = sorted(os.path.basename(s) for s in facts.sources if "/xinetd.d/" in s)
    assert xfiles == ["backdoor", "broken", "chargen", "echo", "rlogin", "rsync", "tftp"]  # no telnet~, telnet.dpkg-old
    assert not any(s.name == "telnet" and s.origin == "xinetd" for s in facts.services)
    assert any(s.name == "rsync" for s in facts.disabled)  # disabled by xinetd.conf's defaults
    assert {e.file for e in facts.errors} == {str(ROOT / "etc/inetd.conf"), str(XD / "broken")}
    assert not facts.listeners  # an image has no /proc to read


def test_image_without_xinetd_conf_still_reads_xinetd_d(tmp_path):
    (tmp_path / "etc" / "xinetd.d").mkdir(parents=True)
    (tmp_path / "etc" / "xinetd.d" / "chargen").write_text((XD / "chargen").read_text())
    facts = gather(tmp_path, with_sockets=False)
    assert [s.name for s in facts.services] == ["chargen"]


def test_include_loop_and_missing_include(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "xinetd.conf").write_text("include /etc/xinetd.conf\ninclude /etc/nothere\n")
    facts = gather(tmp_path, with_sockets=False)
    assert len(facts.errors) == 1
    assert facts.errors[0].line == 2 and "nothere" in facts.errors[0].message


def test_symlink_out_of_the_image_is_refused(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "xinetd.conf").symlink_to("/etc/passwd")
    facts = gather(tmp_path, with_sockets=False)
    assert not facts.services and len(facts.errors) == 1
    assert "outside" in facts.errors[0].message
    assert in_root(Path("/"), "/etc/passwd") == Path("/etc/passwd")


def test_unreadable_inetd_conf_is_reported(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "inetd.conf").write_bytes(b"x" * (1 << 20 + 1) + b"\n")
    facts = HostFacts()
    from portwatch.audit.host import read_config

    read_config(tmp_path, facts)
    assert facts.errors and facts.errors[0].line == 0 and "larger than" in facts.errors[0].message


ATTR_TOKENS = ["service", "defaults", "{", "}", "=", "+=", "-=", "wait", "no", "socket_type", "stream", "user",
               "server", "/bin/x", "type", "INTERNAL", "UNLISTED", "port", "99999", "include", "#", "\n", " "]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(ATTR_TOKENS), max_size=80).map(" ".join))
def test_never_raises(text):
    f = parse_xinetd(text)
    _, _, errors = build_services([f])
    n = len(text.splitlines())
    assert all(1 <= e.line <= n for e in f.errors + errors)


def test_xinetd_tcpd_nameinargs():
    text = ("service telnet\n{\n flags = REUSE NAMEINARGS\n socket_type = stream\n wait = no\n user = root\n"
            " server = /usr/sbin/tcpd\n server_args = /usr/sbin/in.telnetd -h\n}\n")
    (svc,), _, _ = build_services([parse_xinetd(text)])
    assert svc.wrapped and svc.daemon == "in.telnetd" and svc.extra["flags"] == "REUSE NAMEINARGS"
