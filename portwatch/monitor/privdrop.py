"""Least privilege: give up root once the capture sockets and output files are open.

After the drop the process keeps its open file descriptors (packet sockets, JSONL file, SQLite
connection) but can open nothing root-only. That includes Python's own library directory when
the interpreter lives somewhere like /root/.pyenv: every module the analyzer may import lazily
(probes pull in `cryptography` on first use) is therefore imported *before* the drop.
"""

from __future__ import annotations

import codecs
import contextlib
import grp
import importlib
import os
import pwd
import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

# Imports inside functions (indented): top-level ones ran when the module was loaded. A regex
# rather than ast: parsing every module costs a second of start-up.
_LAZY_IMPORT = re.compile(
    r"^[ \t]+(?:from[ \t]+(?P<mod>\.*[\w.]*)[ \t]+import[ \t]+(?P<names>[\w., \t()]+)"
    r"|import[ \t]+(?P<plain>[\w., \t]+))",
    re.M,
)
_CODEC_NAME = re.compile(r"""\b(?:en|de)code\(\s*["']([\w-]+)["']""")
_COMMON_CODECS = frozenset({"ascii", "latin-1", "utf-8", "utf-16", "utf-32", "idna", "punycode", "unicode_escape",
                            "raw_unicode_escape", "cp437", "cp1252"})
# Only used before the drop (the fallback BPF compiler), and slow to import.
SKIP = frozenset({"scapy", "pandas", "pyarrow", "matplotlib"})


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
    """Hand output files (and SQLite's -wal/-shm) to the account, so it can keep them going.

    Only regular files that root owns (the ones just created): `--jsonl /dev/stdout` must not
    give the terminal away, and a file someone else owns stays theirs.
    """
    if os.geteuid() != 0:
        return
    for p in paths:
        for q in (p, p + "-wal", p + "-shm"):
            try:
                st = os.stat(q)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_uid == 0:
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
    the notebook API) out of the monitor's start-up. Call it once the Setup is loaded: the engine
    imports the probes it needs then.
    """
    names: set[str] = set()
    codecs_named: set[str] = set()
    for mod_name, module in list(sys.modules.items()):
        if not (mod_name == package or mod_name.startswith(package + ".")):
            continue
        file = getattr(module, "__file__", None)
        if not file or not file.endswith(".py"):
            continue
        try:
            text = Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        codecs_named.update(_CODEC_NAME.findall(text))
        parts = mod_name.split(".")
        pkg_parts = parts if file.endswith("__init__.py") else parts[:-1]
        for m in _LAZY_IMPORT.finditer(text):
            if m.group("plain"):
                names.update(n.strip().split(" ")[0] for n in m.group("plain").split(","))
                continue
            mod = m.group("mod")
            level = len(mod) - len(mod.lstrip("."))
            if level:
                base = pkg_parts[: len(pkg_parts) - level + 1]
                mod = ".".join([*base, mod[level:]] if mod[level:] else base)
            names.add(mod)
            # `from pkg import sub` may name a submodule, not an attribute
            for n in m.group("names").strip("() ").split(","):
                n = n.strip().split(" ")[0]
                if n and n != "*":
                    names.add(f"{mod}.{n}")
    loaded = []
    for name in sorted(n for n in names if n):
        if name == "__future__" or name.split(".")[0] in SKIP:
            continue
        # The packet path's own modules are loaded by now; an unloaded one is off that path (the
        # notebook API, the CLI) and would only slow the start.
        if (name == package or name.startswith(package + ".")) and name not in sys.modules:
            continue
        try:
            importlib.import_module(name)
        except Exception:
            continue
        loaded.append(name)
    # Codecs are imported by name on first use: str.encode("unicode_escape") after the drop fails
    # with "unknown encoding" when the encodings package is unreadable.
    for enc in sorted(codecs_named | _COMMON_CODECS):
        with contextlib.suppress(LookupError):
            codecs.lookup(enc)
    return loaded
