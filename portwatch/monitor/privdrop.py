"""Least privilege: give up root once the capture sockets and output files are open.

After the drop the process keeps its open file descriptors (packet sockets, JSONL file, SQLite
connection) but can open nothing root-only. That includes Python's own library directory when
the interpreter lives somewhere like /root/.pyenv: every module the analyzer may import lazily
(probes pull in `cryptography` on first use) is therefore imported *before* the drop.
"""

from __future__ import annotations

import ast
import contextlib
import grp
import importlib
import os
import pwd
import sys
from dataclasses import dataclass
from pathlib import Path

# Only used before the drop (the fallback BPF compiler), and slow to import.
SKIP = frozenset({"scapy", "pandas", "pyarrow"})


class PrivilegeError(Exception):
    pass


@dataclass(slots=True, frozen=True)
class Account:
    name: str
    uid: int
    gid: int


def lookup(name: str) -> Account:
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise PrivilegeError(f"--user {name}: no such user") from None
    return Account(pw.pw_name, pw.pw_uid, pw.pw_gid)


def give_files(account: Account, paths: list[str]) -> None:
    """Hand output files (and SQLite's -wal/-shm) to the account, so it can keep them going."""
    if os.geteuid() != 0:
        return
    for p in paths:
        for q in (p, p + "-wal", p + "-shm"):
            if os.path.exists(q):
                os.chown(q, account.uid, account.gid)


def drop(account: Account) -> None:
    """setgroups, setgid, setuid, in that order (a process without root cannot change groups)."""
    if os.geteuid() != 0:
        if os.geteuid() != account.uid:
            raise PrivilegeError(f"--user {account.name}: not running as root, cannot switch user")
        return
    if account.uid == 0:
        return
    try:
        os.setgroups([g.gr_gid for g in grp.getgrall() if account.name in g.gr_mem] + [account.gid])
        os.setgid(account.gid)
        os.setuid(account.uid)
    except OSError as exc:
        raise PrivilegeError(f"cannot drop privileges to {account.name}: {exc.strerror or exc}") from None
    # setuid() from root sets real, effective and saved ids; check that nothing can take them back.
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise PrivilegeError("privilege drop failed: root could be regained")


def preload_modules(package: str = "portwatch") -> list[str]:
    """Import everything the package's already-loaded modules import, including inside functions.

    Scanning the loaded modules (not the whole package) keeps heavy unrelated imports (pandas for
    the notebook API) out of the monitor's start-up.
    """
    names: set[str] = set()
    for mod_name, module in list(sys.modules.items()):
        if not (mod_name == package or mod_name.startswith(package + ".")):
            continue
        file = getattr(module, "__file__", None)
        if not file or not file.endswith(".py"):
            continue
        try:
            tree = ast.parse(Path(file).read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        parts = mod_name.split(".")
        pkg_parts = parts if file.endswith("__init__.py") else parts[:-1]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg_parts[: len(pkg_parts) - node.level + 1]
                    mod = ".".join([*base, node.module] if node.module else base)
                else:
                    mod = node.module or ""
                names.add(mod)
                # `from pkg import sub` may name a submodule, not an attribute
                names.update(f"{mod}.{a.name}" for a in node.names if a.name != "*")
    loaded = []
    for name in sorted(n for n in names if n):
        if name.endswith(("__main__", ".cli")) or name == "__future__" or name.split(".")[0] in SKIP:
            continue
        try:
            importlib.import_module(name)
        except Exception:
            continue
        loaded.append(name)
    # Encodings are looked up by name at run time (bytes.decode('idna'), ...).
    for enc in ("encodings.idna", "encodings.latin_1", "encodings.ascii", "encodings.utf_16", "encodings.cp437"):
        with contextlib.suppress(ImportError):
            importlib.import_module(enc)
    return loaded
