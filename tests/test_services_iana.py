"""`--services iana`: IANA's registry shipped beside /etc/services (issue 19, item 7).

The registry is portwatch/data/iana-services.gz (contrib/iana-services.py regenerates it); it goes
through the same parser as /etc/services, is parsed once per process, and findings name it ("IANA")
where they name /etc/services otherwise.
"""

from __future__ import annotations

import gzip
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest

import portwatch
from portwatch.model import FlowRecord
from portwatch.monitor.reload import check_files
from portwatch.pipeline import Config, Setup, analyze_path
from portwatch.services import (
    IANA,
    MAX_PER_PORT,
    fallback_path,
    iana_path,
    load_iana,
    load_services,
    parse_services,
)

REPO = Path(__file__).resolve().parent.parent
CAPTURES = REPO / "captures"
DEBIAN = str(fallback_path())  # portwatch's copy of Debian's netbase file: the host's may differ
PW = [sys.executable, "-m", "portwatch"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PW, *args], capture_output=True, text=True, timeout=120)


def _analyse(name: str, services: str) -> list[FlowRecord]:
    config = Config(services_path=services)
    records: list[FlowRecord] = []
    analyze_path(str(CAPTURES / name), Setup.load(config), config, records.append)
    assert records
    return records


def _findings(records: list[FlowRecord], kind: str) -> list[str]:
    return [f.message for r in records for f in r.findings if f.kind == kind]


def test_registry_loads_whole_and_says_where_it_came_from() -> None:
    db = load_services(IANA)
    assert db.registry == "IANA" and not db.errors
    assert len(db) > 10_000  # Debian's file: about 300 entries
    assert len(db) > 20 * len(load_services(DEBIAN))
    assert db.names(3389, "udp") == ["ms-wbt-server"] and db.names(1883, "tcp") == ["mqtt"]
    assert db.names(6001, "tcp") == ["x11"]  # a range (6000-6063) expanded
    assert max(len(db.by_port(e.port, e.transport)) for e in db.entries) < MAX_PER_PORT
    head = gzip.decompress(iana_path().read_bytes()).decode().splitlines()[:4]
    assert all(line.startswith("#") for line in head)
    text = "\n".join(head)
    assert "Service Name and Transport Protocol Port Number Registry" in text
    assert "service-names-port-numbers.csv" in text and "dated 20" in text
    assert "CC0" in text and "iana.org/help/licensing-terms" in text


def test_registry_is_parsed_once_per_process_and_quickly() -> None:
    assert load_services(IANA) is load_services(IANA) is load_iana()
    text = gzip.decompress(iana_path().read_bytes()).decode()
    start = time.monotonic()
    parse_services(text)
    # about 70 ms on the shared 2-core box; linear in the file (dictionary inserts), so a bound
    # many times that still catches a quadratic parser
    assert time.monotonic() - start < 3.0


def test_default_stays_etc_services() -> None:
    assert load_services().registry == "/etc/services"
    assert load_services(DEBIAN).registry == "/etc/services"  # portwatch's copy of it


def test_services_command_names_what_only_iana_assigns() -> None:
    run = _run("services", "3389", "--transport", "udp", "--services", IANA)
    assert run.returncode == 0, run.stderr
    assert "3389/udp\tms-wbt-server" in run.stdout and "iana" in run.stdout
    run = _run("services", "3389", "--transport", "udp", "--services", DEBIAN)
    assert run.returncode == 1 and "not in" in run.stdout
    run = _run("services", "1883", "--services", IANA)
    assert "1883/tcp\tmqtt -> mqtt" in run.stdout  # and what the name means to the signatures


@pytest.mark.parametrize("command", [
    ["services", "443"],
    ["analyze", str(CAPTURES / "ssh-22.pcap")],
    ["audit", "--root", str(REPO / "tests")],  # any directory: the services file fails first
    ["monitor", "-r", str(CAPTURES / "ssh-22.pcap")],
], ids=["services", "analyze", "audit", "monitor"])
def test_unknown_services_value_is_one_line_error(command: list[str], tmp_path: Path) -> None:
    for value in ("ianna", str(tmp_path)):  # neither 'iana' nor a readable file
        run = _run(*command, "--services", value)
        assert run.returncode == 2, (value, run)
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
        assert value in lines[0] and "'iana' or a readable services(5) file" in lines[0], lines


def test_findings_name_the_registry() -> None:
    # http on 8443: IANA assigns the port to pcsync-https; Debian's file does not list it
    iana = _findings(_analyse("http-8443.pcap", IANA), "port-mismatch")
    assert iana and all("8443/tcp (IANA: pcsync-https)" in m for m in iana), iana
    debian = _findings(_analyse("http-8443.pcap", DEBIAN), "unassigned-port")
    assert debian and all("8443/tcp (unassigned in /etc/services)" in m for m in debian), debian


def test_unassigned_port_decision_follows_the_registry() -> None:
    # MQTT on 1883: assigned by IANA (mqtt), absent from Debian's /etc/services
    debian = _analyse("mqtt-1883.pcap", DEBIAN)
    notes = _findings(debian, "unassigned-port")
    assert notes and all("a port /etc/services does not list" in m for m in notes), notes
    iana = _analyse("mqtt-1883.pcap", IANA)
    assert all(r.assigned == ["mqtt"] for r in iana if r.dst_port == 1883)
    assert not _findings(iana, "unassigned-port")


def test_api_accepts_iana() -> None:
    a = portwatch.analyze(CAPTURES / "http-8443.pcap", services=IANA, progress=False)
    messages = list(a.findings["message"])
    assert any("(IANA: pcsync-https)" in m for m in messages), messages


def test_a_named_file_is_named_in_findings(tmp_path: Path) -> None:
    own = tmp_path / "site-services"
    own.write_text("sitehttp 8443/tcp\n")
    (rec, *_) = _analyse("http-8443.pcap", str(own))
    assert any(f"8443/tcp ({own}: sitehttp)" in f.message for f in rec.findings), rec.findings


def test_monitor_reload_accepts_iana() -> None:
    check_files(Config(services_path=IANA))  # not a file to stat: no OSError


def test_gzip_services_file_is_capped(tmp_path: Path) -> None:
    bomb = tmp_path / "services.gz"
    bomb.write_bytes(gzip.compress(b"\n" * ((16 << 20) + 2)))  # 16 KiB that inflate past the cap
    run = _run("services", "--services", str(bomb), "443")
    assert run.returncode == 2 and "larger than 16 MiB" in run.stderr and len(run.stderr.splitlines()) == 1
    good = gzip.compress(b"http 80/tcp\n" * 1000)
    corrupt = good[:20] + bytes(b ^ 0x55 for b in good[20:60]) + good[60:]
    for name, data in (("plain", b"not gzip at all"), ("cut", good[:30]), ("corrupt", corrupt)):
        broken = tmp_path / f"{name}.gz"
        broken.write_bytes(data)
        run = _run("services", "--services", str(broken), "443")
        assert run.returncode == 2 and "not a readable gzip file" in run.stderr, (name, run.stderr)
        assert len(run.stderr.splitlines()) == 1 and "Traceback" not in run.stderr


def _generator():  # contrib/iana-services.py, imported for its pure functions only
    spec = importlib.util.spec_from_file_location("iana_services", REPO / "contrib" / "iana-services.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_generator_expands_wireshark_and_iana_forms() -> None:
    gen = _generator()
    ws = "# comment\nx11\t\t6000-6001/tcp/udp\t# X Window System\nfoo\t7/tcp/sctp\n"
    assert list(gen.from_wireshark(ws)) == [(6000, "tcp", "x11"), (6000, "udp", "x11"), (6001, "tcp", "x11"),
                                             (6001, "udp", "x11"), (7, "tcp", "foo"), (7, "sctp", "foo")]
    csv = ("Service Name,Port Number,Transport Protocol,Description\n"
           "http,80,tcp,World Wide Web HTTP\n,81,tcp,Unassigned\nbar,,udp,no port\nx,1-5000,tcp,too wide\n")
    with pytest.raises(ValueError):
        list(gen.from_iana_csv(csv))
    assert list(gen.from_iana_csv(csv.rsplit("x,", 1)[0])) == [(80, "tcp", "http")]
    out = gen.render([(80, "udp", "http"), (80, "tcp", "http"), (80, "tcp", "http")], ["h"])
    assert out == b"# h\nhttp\t80/tcp\nhttp\t80/udp\n"
    assert parse_services(out.decode()).names(80, "udp") == ["http"]
