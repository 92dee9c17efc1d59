"""The services(5) parser and look-ups, and `portwatch services`."""

from __future__ import annotations

import subprocess
import sys

from portwatch.services import fallback_path, load_services, parse_services

SAMPLE = """\
# Network services, Internet style
ssh\t\t22/tcp\t\t\t\t# SSH Remote Login Protocol
http\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP

domain\t\t53/tcp
domain\t\t53/udp
broken-line-without-port
bad\t\tabc/tcp
far\t\t70000/tcp
odd\t\t99/xyz
http-alt\t8080/tcp\twebcache\t# WWW caching service
  # indented comment
"""


def test_parse_entries_aliases_and_comments():
    db = parse_services(SAMPLE, "sample")
    assert db.names(22, "tcp") == ["ssh"]
    assert db.names(80, "tcp") == ["http"]
    assert db.all_names(80, "tcp") == {"http", "www"}
    assert db.names(53, "udp") == ["domain"]
    assert db.names(53, "sctp") == []
    assert [e.port for e in db.by_name("webcache")] == [8080]
    assert {(e.port, e.transport) for e in db.by_name("DOMAIN")} == {(53, "tcp"), (53, "udp")}
    assert db.by_name("domain", "udp")[0].line == 6


def test_malformed_lines_are_reported_with_line_numbers():
    db = parse_services(SAMPLE, "sample")
    assert [line for line, _ in db.errors] == [7, 8, 9, 10]
    assert "abc/tcp" in db.errors[1][1]
    assert "out of range" in db.errors[2][1]
    assert len(db) == 5


def test_fallback_copy_ships_in_the_package():
    db = load_services(fallback_path())
    assert db.names(443, "tcp") == ["https"]
    assert len(db) > 300


def test_explicit_missing_file_is_an_error(tmp_path):
    import pytest

    with pytest.raises(OSError):
        load_services(tmp_path / "missing")


def test_cli_services_port_and_name(tmp_path):
    f = tmp_path / "services"
    f.write_text(SAMPLE)
    out = subprocess.run([sys.executable, "-m", "portwatch", "services", "--services", str(f), "80"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert "80/tcp\thttp (aliases: www) -> http" in out.stdout
    out = subprocess.run([sys.executable, "-m", "portwatch", "services", "443"], capture_output=True, text=True,
                         timeout=60)
    assert "443/tcp\thttps -> tls" in out.stdout
    out = subprocess.run([sys.executable, "-m", "portwatch", "services", "--services", str(f), "4444"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "not in" in out.stdout
