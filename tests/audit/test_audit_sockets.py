"""/proc/net parsing (pure) and the live mapping of socket inodes to processes and users."""

from __future__ import annotations

import os
import pwd
import socket
from pathlib import Path

from portwatch.audit.host import read_listeners, socket_owners
from portwatch.audit.model import HostFacts
from portwatch.audit.sockets import decode_address, effective_uid, parse_proc_net, socket_inode

HEADER = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n")
TCP = HEADER + (
    "   0: 0100007F:01BB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0\n"
    "   1: 0100007F:01BB 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 4243 1 0 20 4 30 10\n"
    "   2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000   104        0 77 1 0 100 0 0 10 0\n"
    "   3: garbage\n"
)
TCP6 = HEADER + (
    "   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000    33        0 900 1 0 100 0 0 10 0\n"
    "   1: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000    33        0 901 1 0 100 0 0 10 0\n"
)
UDP = HEADER + (
    "  10: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 50 2 0 0\n"
    "  11: 0100007F:A1B2 0100007F:0035 01 00000000:00000000 00:00000000 00000000  1000        0 51 2 0 0\n"
    "  12: 00000000:0000 00000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 52 2 0 0\n"
)


def test_tcp_listeners_only_and_bad_lines_reported():
    listeners, problems = parse_proc_net(TCP, "tcp", "little")
    assert [(lst.address, lst.port, lst.uid, lst.inode, lst.family) for lst in listeners] == [
        ("127.0.0.1", 443, 0, 4242, 4), ("0.0.0.0", 22, 104, 77, 4)]
    assert [line for line, _ in problems] == [5]


def test_tcp6_addresses_and_v4_mapped():
    listeners, problems = parse_proc_net(TCP6, "tcp", "little")
    assert not problems
    assert [(lst.address, lst.port, lst.family) for lst in listeners] == [("::1", 80, 6), ("127.0.0.1", 8080, 6)]


def test_udp_bound_unconnected_sockets_only():
    listeners, _ = parse_proc_net(UDP, "udp", "little")
    assert [(lst.address, lst.port, lst.uid) for lst in listeners] == [("127.0.0.53", 53, 101)]


def test_big_endian_hosts_print_addresses_in_order():
    assert decode_address("7F000001", "big") == "127.0.0.1"
    assert decode_address("0100007F", "little") == "127.0.0.1"


def test_fd_link_and_status_parsers():
    assert socket_inode("socket:[12345]") == 12345
    assert socket_inode("pipe:[12345]") is None and socket_inode("/dev/null") is None
    assert effective_uid("Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n") == 0
    assert effective_uid("Name:\tx\n") is None


def test_live_listeners_are_mapped_to_this_process():
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    with tcp, udp:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        udp.bind(("::1", 0))
        facts = HostFacts()
        read_listeners(Path("/proc"), facts)
        mine = {lst.inode: lst for lst in facts.listeners}
        t = mine[os.fstat(tcp.fileno()).st_ino]
        u = mine[os.fstat(udp.fileno()).st_ino]
        tport, uport = tcp.getsockname()[1], udp.getsockname()[1]
    assert (t.transport, t.address, t.port) == ("tcp", "127.0.0.1", tport)
    assert (u.transport, u.address, u.port, u.family) == ("udp", "::1", uport, 6)
    for lst in (t, u):
        assert os.getpid() in lst.pids
        assert lst.proc_uid == os.geteuid()
        assert lst.user == pwd.getpwuid(os.geteuid()).pw_name
        assert lst.process  # comm of the lowest pid holding it: this test process (or its parent)
    assert "/proc/net/tcp" in facts.sources


def test_socket_owners_of_nothing_scans_nothing():
    assert socket_owners(Path("/proc"), set()) == {}
    assert socket_owners(Path("/nonexistent"), {1}) == {}


def test_missing_proc_is_reported_not_fatal(tmp_path):
    facts = HostFacts()
    read_listeners(tmp_path, facts)
    assert not facts.listeners and not facts.sockets_read
    assert [(e.line, e.message) for e in facts.errors] == [(0, "cannot read any socket table: listeners not audited")]
