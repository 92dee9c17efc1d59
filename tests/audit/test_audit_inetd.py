"""inetd.conf parser: the classic layout, commented-out services, tcpd wrappers, errors by line."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from portwatch.audit.inetd import parse_inetd

CLASSIC = Path(__file__).parent / "data" / "root" / "etc" / "inetd.conf"


def _by_name(services):
    return {(s.name, s.protocol): s for s in services}


def test_classic_layout_enabled_services():
    conf = parse_inetd(CLASSIC.read_text(), "inetd.conf")
    got = _by_name(conf.services)
    assert sorted(got) == sorted([
        ("echo", "tcp"), ("echo", "udp"), ("daytime", "tcp"), ("chargen", "udp"), ("telnet", "tcp"),
        ("talk", "udp"), ("tftp", "udp"), ("finger", "tcp"), ("auth", "tcp"), ("mydaemon", "tcp"), ("pop3", "tcp"),
    ])
    echo_tcp, echo_udp = got["echo", "tcp"], got["echo", "udp"]
    assert echo_tcp.internal and echo_tcp.daemon == "internal" and not echo_tcp.wait
    assert echo_udp.internal and echo_udp.wait and echo_udp.socket_type == "dgram" and echo_udp.transport == "udp"
    assert echo_tcp.line == 13 and echo_udp.line == 14


def test_tcpd_wrapper_names_the_real_daemon():
    got = _by_name(parse_inetd(CLASSIC.read_text()).services)
    telnet = got["telnet", "tcp"]
    assert telnet.server == "/usr/sbin/tcpd" and telnet.wrapped
    assert telnet.daemon == "in.telnetd" and telnet.args == ("in.telnetd",)
    tftp = got["tftp", "udp"]
    assert not tftp.wrapped and tftp.daemon == "in.tftpd" and tftp.args == ("in.tftpd", "-s", "/srv/tftp")


def test_user_group_wait_limits_address_and_continuation():
    got = _by_name(parse_inetd(CLASSIC.read_text()).services)
    talk = got["talk", "udp"]
    assert (talk.user, talk.group) == ("nobody", "tty")
    auth = got["auth", "tcp"]
    assert (auth.user, auth.group) == ("identd", "identd")  # user:group spelling
    assert auth.address == "127.0.0.1"
    assert auth.daemon == "in.identd" and auth.args == ("/usr/sbin/in.identd", "-t", "30")  # continued line
    pop3 = got["pop3", "tcp"]
    assert not pop3.wait  # nowait.60 is nowait with a rate limit
    assert got["finger", "tcp"].user == "root" and got["finger", "tcp"].group is None


def test_commented_out_entries_are_disabled_not_errors():
    conf = parse_inetd(CLASSIC.read_text())
    disabled = {(s.name, s.protocol) for s in conf.disabled}
    assert {("discard", "tcp"), ("discard", "udp"), ("time", "tcp"), ("ftp", "tcp"), ("shell", "tcp"),
            ("login", "tcp"), ("exec", "tcp"), ("netstat", "tcp")} <= disabled
    assert all(not s.enabled for s in conf.disabled)
    netstat = next(s for s in conf.disabled if s.name == "netstat")  # update-inetd's "#<off>#" form
    assert netstat.user == "guest" and netstat.wrapped
    # The prose comments ("# <service_name> <sock_type> ...") are neither services nor errors.
    assert all(e.line >= 57 for e in conf.errors)


def test_errors_name_file_and_line_and_parsing_goes_on():
    conf = parse_inetd(CLASSIC.read_text(), "/img/etc/inetd.conf")
    errors = {e.line: str(e) for e in conf.errors}
    assert sorted(errors) == [58, 59, 60, 61]
    assert errors[58].startswith("/img/etc/inetd.conf:58: expected 'service socket-type")
    assert "unknown socket type 'sequential'" in errors[59]
    assert "no internal service 'bogus'" in errors[60]
    assert "expected wait or nowait" in errors[61]
    # Entries before and after a bad line are kept.
    assert ("pop3", "tcp") in _by_name(conf.services)


def test_address_line_applies_to_following_entries():
    text = "127.0.0.1:\necho stream tcp nowait root internal\n*:\ndaytime stream tcp nowait root internal\n"
    conf = parse_inetd(text)
    assert [(s.name, s.address) for s in conf.services] == [("echo", "127.0.0.1"), ("daytime", None)]


def test_protocol_and_socket_type_must_agree():
    conf = parse_inetd("echo dgram tcp wait root internal\nftp stream tcp nowait root in.ftpd\n", "x")
    assert [e.line for e in conf.errors] == [1, 2]
    assert "does not go with" in conf.errors[0].message
    assert "absolute path" in conf.errors[1].message


def test_rpc_and_ipv6_entries():
    conf = parse_inetd("rstatd/1-3 dgram rpc/udp wait nobody /usr/sbin/rpc.rstatd rpc.rstatd\n"
                       "telnet stream tcp6 nowait root /usr/sbin/tcpd in.telnetd\n")
    rstat, telnet = conf.services
    assert rstat.rpc and rstat.transport == "udp" and rstat.name == "rstatd/1-3"
    assert telnet.protocol == "tcp6" and telnet.transport == "tcp"


def test_hostile_text_is_quoted_clean_in_errors():
    conf = parse_inetd("echo \x1b[31mstream tcp nowait root internal\n")
    assert "\x1b" not in conf.errors[0].message and "\\x1b" in conf.errors[0].message


TOKENS = ["stream", "dgram", "tcp", "udp6", "rpc/tcp", "nowait", "wait.5", "root", "nobody.tty", "internal",
          "/usr/sbin/tcpd", "echo", "127.0.0.1:", "#", "#<off>#", " ", "\t", "\n", ":", "."]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=60).map(" ".join))
def test_never_raises(text):
    conf = parse_inetd(text)
    lines = text.splitlines()
    for e in conf.errors:
        assert 1 <= e.line <= len(lines)
