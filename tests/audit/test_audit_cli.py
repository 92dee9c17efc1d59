"""`portwatch audit` end to end on a mounted image (no /proc, no network)."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from portwatch.cli import main
from portwatch.services import fallback_path

ROOT = Path(__file__).parent / "data" / "root"


def run(*args: str):
    return CliRunner().invoke(main, ["audit", *args], catch_exceptions=False)


def test_jsonl_records_findings_and_errors_on_stderr():
    result = run("--root", str(ROOT), "--services", str(fallback_path()), "--format", "jsonl")
    assert result.exit_code == 1  # high findings (telnet, rlogin, UDP chargen/echo)
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 17
    assert all(r["orientation"] == "audit" and r["meta"]["audit"] in ("inetd", "xinetd") for r in records)
    telnet = next(r for r in records if r["meta"].get("service") == "telnet")
    assert telnet["dst_port"] == 23 and telnet["assigned"] == ["telnet"]
    assert [f["kind"] for f in telnet["findings"]] == ["insecure-protocol"]
    kinds = {f["kind"] for r in records for f in r["findings"]}
    assert kinds == {"insecure-protocol", "root-service", "unwrapped-service", "unknown-service", "unassigned-port"}
    err = result.stderr.splitlines()
    assert f"portwatch: warning: {ROOT}/etc/inetd.conf:58: expected 'service socket-type" in err[0]
    assert len(err) == 8
    assert any(f"{ROOT}/etc/xinetd.d/broken:7: unknown attribute 'colour'" in line for line in err)


def test_csv_and_console(tmp_path):
    out = tmp_path / "audit.csv"
    result = run("--root", str(ROOT), "--services", str(fallback_path()), "--format", "csv", "-o", str(out))
    assert result.exit_code == 1
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 17 and rows[0]["orientation"] == "audit"
    result = run("--root", str(ROOT), "--services", str(fallback_path()))
    text = result.stdout
    assert "Findings (19)" in text and "Services and listeners" in text
    assert "8 configuration line(s) could not be used" in text


def test_fail_on_and_image_services(tmp_path):
    image = tmp_path / "img"
    (image / "etc").mkdir(parents=True)
    (image / "etc" / "inetd.conf").write_text("gizmo stream tcp nowait nobody /usr/sbin/tcpd in.gizmod\n")
    result = run("--root", str(image), "--format", "jsonl")
    (rec,) = [json.loads(line) for line in result.stdout.splitlines()]
    # Without an image services file the host's is used; it knows no gizmo.
    assert [f["kind"] for f in rec["findings"]] == ["unknown-service"]
    assert result.exit_code == 0
    assert run("--root", str(image), "--fail-on", "low", "--format", "jsonl").exit_code == 1
    # The image's own /etc/services is the one that counts for the image.
    shutil.copy(fallback_path(), image / "etc" / "services")
    with (image / "etc" / "services").open("a") as fh:
        fh.write("gizmo\t4444/tcp\n")
    (rec,) = [json.loads(line) for line in run("--root", str(image), "--format", "jsonl").stdout.splitlines()]
    assert rec["dst_port"] == 4444 and rec["findings"] == []


def test_bad_usage_exits_2(tmp_path):
    result = run("--root", str(tmp_path / "missing"))
    assert result.exit_code == 2 and "not a directory" in result.stderr
    result = run("--root", str(ROOT), "--probe")
    assert result.exit_code == 2 and "--probe" in result.stderr


def test_empty_image_has_no_findings(tmp_path):
    result = run("--root", str(tmp_path))
    assert result.exit_code == 0 and "No findings." in result.stdout
