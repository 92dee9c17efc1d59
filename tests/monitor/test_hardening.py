"""A sensor that keeps up and cannot be turned against its host: safe outputs, a thorough privilege
drop, sinks that survive a full disk or a locked database, reloads that never kill.

Most tests need root (symlinks into root-owned files, tmpfs, network namespaces, setuid).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from portwatch.report.safeopen import OutputPathError, open_output

from .helpers import ROOT, portwatch_cmd, read_db, read_jsonl, wait_for

SSH_PCAP = Path(__file__).parent / "data" / "ssh-443.pcap"
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)


def monitor(*args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([*portwatch_cmd(), "monitor", "--no-view", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def syn_pcap(path: Path, flows: int) -> None:
    """`flows` TCP SYNs from distinct source ports (classic pcap, Ethernet, IPv4)."""
    out = [PCAP_HEADER]
    for i in range(flows):
        tcp = struct.pack("!HHIIBBHHH", 20000 + i % 40000, 8443, i, 0, 5 << 4, 0x02, 64240, 0, 0)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i & 0xFFFF, 0, 64, 6, 0,
                         bytes([10, 0, (i >> 16) & 0xFF, 2]), bytes([10, 0, 0, 1]))
        frame = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + tcp
        out.append(struct.pack("<IIII", 1_700_000_000 + i // 1000, i % 1000, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))


@pytest.fixture
def work() -> Iterator[Path]:
    """A directory only root can write to, readable by the account the monitor drops to."""
    d = Path(tempfile.mkdtemp(prefix="pw-hard-"))
    d.chmod(0o755)
    yield d
    subprocess.run(["rm", "-rf", str(d)], check=False)


# ---- 3. outputs that cannot be turned against the host ------------------------------------------

@root_only
@pytest.mark.parametrize("option", ["--jsonl", "--db", "--db-wal"])
def test_symlink_planted_at_an_output_is_refused(work: Path, option: str) -> None:
    victim = work / "victim"
    victim.write_text("root's file\n")
    victim.chmod(0o600)
    out = work / "out"
    link = Path(str(out) + "-wal") if option == "--db-wal" else out
    link.symlink_to(victim)
    r = monitor("-r", str(SSH_PCAP), option.removesuffix("-wal"), str(out), "--user", "nobody")
    assert r.returncode == 2, r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "symbolic link" in err[0] and str(link) in err[0], r.stderr
    assert victim.read_text() == "root's file\n"
    st = victim.stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o600)


def test_safe_open_refuses_links_and_shared_directories(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("x")
    (tmp_path / "link").symlink_to(target)
    with pytest.raises(OutputPathError, match="symbolic link"):
        open_output(str(tmp_path / "link"))
    os.link(target, tmp_path / "hard")
    with pytest.raises(OutputPathError, match="hard links"):
        open_output(str(tmp_path / "hard"))
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(OutputPathError, match="writable by others"):
        open_output(str(shared / "events.jsonl"))
    assert not (shared / "events.jsonl").exists()
    shared.chmod(0o1777)  # sticky and ours, like /tmp: fine
    opened = open_output(str(shared / "events.jsonl"))
    os.close(opened.fd)
    assert opened.created


@root_only
def test_only_created_outputs_are_handed_over_by_descriptor(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    existing = tmp_path / "existing.jsonl"
    existing.write_text("")
    new = open_output(str(tmp_path / "new.jsonl"), owner=(65534, 65534))
    old = open_output(str(existing), owner=(65534, 65534))
    for f in (new, old):
        os.close(f.fd)
    assert (tmp_path / "new.jsonl").stat().st_uid == 65534
    assert existing.stat().st_uid == 0, "a file portwatch did not create is not given away"


# ---- 4. the privilege drop ----------------------------------------------------------------------

def _status(pid: int) -> dict[str, str]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.strip()
    return out


def _check_dropped(pid: int) -> None:
    st = _status(pid)
    uid = st["Uid"].split()
    assert uid[0] != "0" and len(set(uid)) == 1, st["Uid"]
    import pwd
    assert pwd.getpwuid(int(uid[0])).pw_name in ("portwatch", "nobody")
    assert st["NoNewPrivs"] == "1"
    assert st["CapBnd"] == "0000000000000000"
    assert st["CapEff"] == st["CapPrm"] == "0000000000000000"
    assert st["Groups"] == ""


@root_only
def test_replay_as_root_drops_to_the_default_account(work: Path) -> None:
    log = work / "log"
    with open(log, "w") as err:
        proc = subprocess.Popen([*portwatch_cmd(), "monitor", "--no-view", "-r", "-", "--jsonl", str(work / "e.jsonl")],
                                stdin=subprocess.PIPE, stderr=err, stdout=subprocess.DEVNULL, cwd=ROOT)
    try:
        assert proc.stdin is not None
        proc.stdin.write(PCAP_HEADER)
        proc.stdin.flush()  # the monitor now waits for packets on the pipe, privileges dropped
        assert wait_for(lambda: "monitoring" in log.read_text(), 20), log.read_text()
        _check_dropped(proc.pid)
        proc.stdin.close()
        assert proc.wait(20) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (work / "e.jsonl").stat().st_uid != 0, "the file the monitor created is the account's"


def _in_netns(args: list[str]) -> list[str]:
    """A fresh network namespace with lo up: `-i lo` there sees only the test's own traffic."""
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', *portwatch_cmd(), "monitor",
            "--no-view", *args]


@pytest.fixture
def live(work: Path) -> Iterator[list]:
    procs: list[subprocess.Popen] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def _start_live(live: list, work: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    log = work / f"log-{len(live)}"
    with open(log, "w") as err:
        proc = subprocess.Popen(_in_netns(["-i", "lo", *args]), stderr=err, stdout=subprocess.DEVNULL,
                                stdin=subprocess.DEVNULL, cwd=ROOT)
    live.append(proc)
    if not wait_for(lambda: "monitoring" in log.read_text() or proc.poll() is not None, 20) or proc.poll() is not None:
        raise AssertionError(f"monitor did not start:\n{log.read_text()}")
    return proc, log


@root_only
def test_live_as_root_drops_to_the_default_account(work: Path, live: list) -> None:
    proc, log = _start_live(live, work, "--jsonl", str(work / "e.jsonl"))
    _check_dropped(proc.pid)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0, log.read_text()


@root_only
def test_user_root_keeps_root_with_a_warning(work: Path) -> None:
    r = monitor("-r", str(SSH_PCAP), "--user", "root", "--jsonl", str(work / "e.jsonl"))
    assert r.returncode == 0 and "packet parsers run as root" in r.stderr


# ---- 5. sinks that survive ----------------------------------------------------------------------

@pytest.fixture
def small_fs(work: Path) -> Iterator[Path]:
    mnt = work / "full"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "pw-full", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@root_only
def test_jsonl_on_a_full_filesystem_loses_lines_not_the_database(work: Path, small_fs: Path) -> None:
    pcap, jsonl, db = work / "syn.pcap", small_fs / "e.jsonl", work / "e.db"
    syn_pcap(pcap, 3000)
    r = monitor("-r", str(pcap), "--jsonl", str(jsonl), "--db", str(db), "--user", "nobody")
    assert r.returncode == 2, r.stderr
    assert read_db(db, "SELECT count(*) FROM flows") == [(3000,)], "the database sink keeps every flow"
    data = jsonl.read_bytes()
    assert data and data.endswith(b"\n"), "the JSONL file ends at a line boundary"
    lines = [json.loads(line) for line in data.splitlines()]
    assert 0 < len(lines) < 6000
    assert "write failed (No space left on device)" in r.stderr
    assert "output lost (could not be written): jsonl lines" in r.stderr
    assert "Traceback" not in r.stderr


@root_only
def test_database_locked_for_12s_loses_no_flow(work: Path) -> None:
    pcap, jsonl, db = work / "syn.pcap", work / "e.jsonl", work / "e.db"
    syn_pcap(pcap, 500)
    from portwatch.report.sqlite import SqliteWriter

    SqliteWriter(db).close()  # the schema, as a previous run left it
    locker = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys, time\n"
         f"db = sqlite3.connect({str(db)!r}, isolation_level=None)\n"
         "db.execute('BEGIN EXCLUSIVE')\n"
         "print('locked', flush=True)\n"
         "time.sleep(12)\n"
         "db.execute('COMMIT')\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        locked_at = time.monotonic()
        r = monitor("-r", str(pcap), "--db", str(db), "--jsonl", str(jsonl), "--user", "nobody")
        assert time.monotonic() - locked_at >= 10, "the monitor waited for the lock"
    finally:
        locker.wait(30)
    assert r.returncode == 0, r.stderr
    assert "database is locked" in r.stderr and "writing again" in r.stderr
    assert read_db(db, "SELECT count(*) FROM flows") == [(500,)]
    assert len([e for e in read_jsonl(jsonl) if e["type"] == "flow"]) == 500


def test_sqlite_writer_queues_while_locked_and_gives_up_bounded(tmp_path: Path) -> None:
    from portwatch.model import FlowRecord
    from portwatch.report.sqlite import SqliteWriter

    path = tmp_path / "q.db"
    w = SqliteWriter(path, busy_timeout=0.01, patience=0.3)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    rec = FlowRecord(ts_start=1.0, ts_end=2.0, transport="tcp", src_ip="10.0.0.2", src_port=1, dst_ip="10.0.0.1",
                     dst_port=2, orientation="handshake")
    w.write_flow(rec, "a")
    assert w.commit() is False and "locked" in (w.failure or "") and w.pending == 1
    other.execute("COMMIT")
    assert w.commit(force=True) is True and w.failure is None and w.pending == 0
    other.execute("BEGIN EXCLUSIVE")
    w.write_flow(rec, "b")
    w.close()  # gives up after `patience`
    other.execute("COMMIT")
    assert w.lost_flows == 1
    assert [r[0] for r in other.execute("SELECT flow_id FROM flows")] == ["a"]


# ---- 6. reload never kills ----------------------------------------------------------------------

def _reloads(jsonl: Path) -> list[dict]:
    return [e for e in read_jsonl(jsonl) if e["type"] == "reload"]


@root_only
def test_sighup_with_broken_files_keeps_the_old_policy(work: Path, live: list) -> None:
    policy, jsonl = work / "policy.toml", work / "e.jsonl"
    policy.write_text('disabled = ["tunnel"]\n')
    policy.chmod(0o644)
    proc, log = _start_live(live, work, "--policy", str(policy), "--jsonl", str(jsonl), "--user", "nobody")
    broken = [
        ("x = " + "[" * 2000 + "]" * 2000 + "\n", "nested deeper than"),
        ("a = {" * 2000 + "}" * 2000 + "\n", "nested deeper than"),
        (None, "not a regular file"),  # a FIFO: reading it would block the monitor for ever
        ("disabled = [\n", "invalid TOML"),
    ]
    for n, (text, error) in enumerate(broken, 1):
        policy.unlink()
        if text is None:
            os.mkfifo(policy)
        else:
            policy.write_text(text)
        proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda n=n: len(_reloads(jsonl)) >= n, 10), log.read_text()
        last = _reloads(jsonl)[-1]
        assert last["ok"] is False and error in last["error"], last
        assert proc.poll() is None, log.read_text()
    errors = [line for line in log.read_text().splitlines() if "reload failed" in line]
    assert len(errors) == len(broken) and "Traceback" not in log.read_text()
    policy.unlink()
    policy.write_text('disabled = ["tunnel", "port-mismatch"]\n')
    proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: len(_reloads(jsonl)) > len(broken), 10), log.read_text()
    last = _reloads(jsonl)[-1]
    # The comparison is with the policy in force: the first one, kept through every broken reload.
    assert last["ok"] is True and last["changes"] == ["policy disabled: ['tunnel'] -> ['port-mismatch', 'tunnel']"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0, log.read_text()
