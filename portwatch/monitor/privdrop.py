"""Least privilege: give up root once the capture sockets and output files are open.

`drop()` empties the capability bounding set (PR_CAPBSET_DROP for every capability up to
/proc/sys/kernel/cap_last_cap, while still root), clears the supplementary groups
(`setgroups([])`), sets the group and user ids, and sets PR_SET_NO_NEW_PRIVS, then checks that
none of it can be undone. Run as root without `--user`, the monitor drops to DEFAULT_USERS' first
existing account (`portwatch`, else `nobody`), as `tcpdump -Z` does.

After the drop the process keeps its open file descriptors (packet sockets, JSONL file, SQLite
connection) but can open nothing root-only. That includes Python's own library directory when
the interpreter lives somewhere like /root/.pyenv: every module the analyzer may import lazily
(probes pull in `cryptography` on first use) is therefore imported *before* the drop.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import errno
import importlib
import os
import pwd
import re
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
# Root without --user: the first of these that exists (create `portwatch` with useradd --system).
DEFAULT_USERS = ("portwatch", "nobody")

PR_CAPBSET_READ, PR_CAPBSET_DROP = 23, 24
PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS = 38, 39


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


def default_account() -> Account:
    """The account root drops to without --user: `portwatch` if it exists, else `nobody`."""
    for name in DEFAULT_USERS:
        with contextlib.suppress(PrivilegeError):
            return lookup(name)
    raise PrivilegeError(f"none of the accounts {', '.join(DEFAULT_USERS)} exists: give --user NAME")


_libc = ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, arg: int = 0) -> int:
    res = _libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0),
                      ctypes.c_ulong(0))
    if res < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(res)


def cap_last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        last = 0
        while last < 63:  # PR_CAPBSET_READ says EINVAL past the last capability
            try:
                _prctl(PR_CAPBSET_READ, last + 1)
            except OSError:
                break
            last += 1
        return last


def bounding_set() -> list[int]:
    """The capabilities still in the bounding set (empty after `drop`)."""
    return [c for c in range(cap_last_cap() + 1) if _prctl(PR_CAPBSET_READ, c) == 1]


def drop(account: Account) -> None:
    """Bounding set (needs root's CAP_SETPCAP), setgroups([]), setgid, setuid, no_new_privs."""
    if os.geteuid() != 0:
        if os.geteuid() != account.uid:
            raise PrivilegeError(f"--user {account.name}: not running as root, cannot switch user")
        return
    if account.uid == 0:
        return
    try:
        for cap in range(cap_last_cap() + 1):
            try:
                _prctl(PR_CAPBSET_DROP, cap)
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # EINVAL: a capability this kernel does not have
                    raise
        os.setgroups([])
        os.setgid(account.gid)
        os.setuid(account.uid)
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
    except OSError as exc:
        raise PrivilegeError(f"cannot drop privileges to {account.name}: {exc.strerror or exc}") from None
    # setuid() from root sets real, effective and saved ids; check that nothing can take them back.
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:
        raise PrivilegeError("privilege drop failed: root could be regained")
    if os.getgroups() or _prctl(PR_GET_NO_NEW_PRIVS) != 1 or bounding_set():
        raise PrivilegeError("privilege drop failed: supplementary groups, no_new_privs or bounding set remain")


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
