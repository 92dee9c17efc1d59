"""A protocol's idle timeout is data in its signature file (`idle_udp`, `idle_tcp`), not a setting
of the analyzer: dns.toml ends a DNS exchange after 10 s of silence (Zeek's dns_session_timeout),
other UDP flows after the analyzer's 60 s, and a user's signature file can change either."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from pcapkit import analyze_path, ether, udp_exchange, write_pcap

from portwatch.cli import main
from portwatch.signatures import load_signatures

SHIPPED = Path(__file__).resolve().parents[2] / "signatures"
QUERY = bytes.fromhex("123401000001000000000000") + b"\x07example\x03com\x00\x00\x01\x00\x01"
ANSWER = (bytes.fromhex("123481800001000100000000") + b"\x07example\x03com\x00\x00\x01\x00\x01"
          + bytes.fromhex("c00c00010001000e100004") + bytes([93, 184, 216, 34]))
T0 = 1_700_000_000.0


def exchanges(tmp_path: Path, gap: float, dport: int = 53, payloads: tuple[bytes, bytes] = (QUERY, ANSWER)) -> Path:
    """Two query/answer exchanges from one client socket, `gap` seconds apart."""
    one = [ether(p) for p in udp_exchange([(True, payloads[0]), (False, payloads[1])], dport=dport)]
    frames = [(T0, one[0]), (T0 + 0.01, one[1]), (T0 + gap, one[0]), (T0 + gap + 0.01, one[1])]
    return write_pcap(tmp_path / f"gap{gap}-{dport}.pcap", frames)


def dns_dir(tmp_path: Path, line: str) -> Path:
    """A signature directory whose dns.toml is the shipped one with its `idle_udp` line replaced."""
    text = (SHIPPED / "dns.toml").read_text(encoding="utf-8")
    assert "\nidle_udp = 10\n" in text
    d = tmp_path / "sigs"
    d.mkdir(exist_ok=True)
    (d / "dns.toml").write_text(text.replace("\nidle_udp = 10\n", f"\n{line}\n"), encoding="utf-8")
    return d


def flows(path: Path, **config: object) -> list[tuple[str, int, int]]:
    records, _ = analyze_path(path, **config)
    return [(r.protocol, r.packets_c2s, r.packets_s2c) for r in records]


def test_the_shipped_dns_signature_gives_dns_its_ten_seconds() -> None:
    dns = next(s for s in load_signatures() if s.protocol == "dns")
    assert (dns.idle_udp, dns.idle_tcp) == (10.0, None)


def test_dns_silent_longer_than_its_timeout_is_two_flows_and_other_udp_one(tmp_path: Path) -> None:
    assert flows(exchanges(tmp_path, gap=15)) == [("dns", 1, 1), ("dns", 1, 1)]
    assert flows(exchanges(tmp_path, gap=5)) == [("dns", 2, 2)]
    # The same gap on a datagram flow no signature names: the analyzer's idle_udp (60 s) holds.
    other = exchanges(tmp_path, gap=15, dport=9999, payloads=(b"\x8f\x01\x02\x03", b"\x8f\x04"))
    assert [n for _, *n in flows(other)] == [[2, 2]]


def test_a_users_signature_file_changes_the_timeout(tmp_path: Path) -> None:
    longer = dns_dir(tmp_path, "idle_udp = 30")
    assert flows(exchanges(tmp_path, gap=15), signature_dirs=(str(longer),)) == [("dns", 2, 2)]
    shorter = dns_dir(tmp_path, "idle_udp = 2.5")
    assert flows(exchanges(tmp_path, gap=5), signature_dirs=(str(shorter),)) == [("dns", 1, 1), ("dns", 1, 1)]
    # Without the line, DNS keeps the analyzer's UDP timeout.
    none = dns_dir(tmp_path, "")
    assert flows(exchanges(tmp_path, gap=15), signature_dirs=(str(none),)) == [("dns", 2, 2)]


@pytest.mark.parametrize(("line", "problem"), [
    ("idle_udp = 0", "idle_udp: must be a number of seconds in (0, 86400]"),
    ("idle_udp = 1e9", "idle_udp: must be a number of seconds in (0, 86400]"),
    ('idle_udp = "10"', "idle_udp: must be float, not str"),
])
def test_signatures_check_names_a_bad_timeout_with_its_line(tmp_path: Path, line: str, problem: str) -> None:
    f = dns_dir(tmp_path, line) / "dns.toml"
    lineno = f.read_text(encoding="utf-8").splitlines().index(line) + 1
    result = CliRunner().invoke(main, ["signatures", "check", str(f)])
    assert result.exit_code == 2
    assert f"{f}:{lineno}: {problem}" in result.output
