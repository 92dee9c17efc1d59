"""`portwatch analyze` imports what it uses: not the monitor, the audit, the baseline, rich or pandas
when it writes records quietly, nor what only a capture filter (tcpdump's process and temporary
files) or a zipped package would need, and every lazily registered command still runs and is
listed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from portwatch.cli import main

CAPTURE = Path(__file__).resolve().parent.parent / "captures" / "ssh-443.pcap"
HEAVY = ("rich", "pandas", "portwatch.monitor", "portwatch.audit", "portwatch.baseline", "portwatch.report.sqlite",
         "portwatch.report.servers", "portwatch.report.console", "subprocess", "tempfile", "shutil",
         "importlib.resources", "zipfile", "gzip", "zlib", "traceback")


def _modules_after(args: list[str]) -> list[str]:
    code = ("import sys\nfrom portwatch.launch import main\nsys.argv = ['portwatch', *sys.argv[1:]]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print(' '.join(sorted(m for m in sys.modules if m.startswith({HEAVY!r}))))\n")
    run = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    return run.stdout.split()


def test_quiet_jsonl_analysis_imports_nothing_it_does_not_use(tmp_path: Path) -> None:
    assert _modules_after(["analyze", "-q", "--format", "jsonl", "-o", str(tmp_path / "o.jsonl"), str(CAPTURE)]) == []
    assert (tmp_path / "o.jsonl").read_text().count("\n") > 0


def test_a_capture_filter_still_loads_what_it_needs(tmp_path: Path) -> None:
    loaded = _modules_after(["analyze", "-q", "--format", "jsonl", "-f", "tcp", "-o", str(tmp_path / "o.jsonl"),
                             str(CAPTURE)])
    assert "tempfile" in loaded and "shutil" in loaded
    assert (tmp_path / "o.jsonl").read_text().count("\n") > 0


def test_the_console_report_still_loads_what_it_needs() -> None:
    loaded = _modules_after(["analyze", str(CAPTURE)])
    assert "rich" in loaded and "portwatch.report.console" in loaded


def test_lazy_commands_are_listed_and_run() -> None:
    runner = CliRunner()
    listing = runner.invoke(main, ["--help"])
    assert listing.exit_code == 0
    for name in ("analyze", "audit", "baseline", "monitor", "services", "signatures"):
        assert f"  {name}" in listing.output
    for args in (["audit"], ["baseline", "save"], ["monitor"]):  # --debug given to them when loaded
        res = runner.invoke(main, [*args, "--help"])
        assert res.exit_code == 0 and "--debug" in res.output, (args, res.output)
    assert runner.invoke(main, ["nope"]).exit_code == 2
