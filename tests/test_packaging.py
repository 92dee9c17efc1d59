"""A non-editable install, run from another directory, finds the shipped signatures and data."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

REPO = __import__("pathlib").Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_ships_signatures_and_runs_elsewhere(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(wheels), str(REPO)], check=True, timeout=300)
    (wheel,) = wheels.glob("portwatch-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.startswith("portwatch/_core") for n in names)  # the compiled core, which carries the signatures
    assert "portwatch/data/services" in names
    assert "portwatch/data/iana-services.gz" in names  # --services iana
    assert "portwatch/data/default-policy.toml" in names
    assert {"portwatch/_core.pyi", "portwatch/py.typed"} <= set(names)  # the core's types (PEP 561)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = ("import portwatch, portwatch.signatures as s; "
            "print(portwatch.__file__); print(len(s.load_signatures()))")
    out = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True,
                         timeout=60, check=True)
    module, count = out.stdout.split()
    assert module.startswith(str(target))
    # no data folder beside the package: the shipped set is embedded in the core
    assert int(count) == len(list((REPO / "signatures").glob("*.toml")))
    run = subprocess.run([sys.executable, "-m", "portwatch", "analyze", "--format", "jsonl",
                          str(REPO / "captures" / "ssh-443.pcap")], cwd=elsewhere, env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 1, run.stderr  # the SSH-on-443 finding reaches --fail-on high
    assert '"protocol":"ssh"' in run.stdout
