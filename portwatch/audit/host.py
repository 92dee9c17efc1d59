"""Read what a host offers: inetd and xinetd configuration under a root, listeners from /proc.

The only module here that touches files. `root` is "/" for the running host or the mount point
of an image; paths named inside the configuration (xinetd's include/includedir) are taken inside
that root, and a path whose symlinks lead out of it is refused rather than followed, so that
auditing an untrusted image never reads the auditing host's files in its place.

An image is hostile input too: a configuration file is read only if it is a regular file (opened
with O_NONBLOCK|O_NOFOLLOW on its resolved path, then fstat: a FIFO or a device is refused, never
waited on), at most MAX_CONFIG_BYTES of it; a symlink loop is a read error; xinetd includes nest
at most MAX_INCLUDE_DEPTH deep. Each refusal is a ParseError naming the file and the line that
led there, and the audit goes on with the rest.
"""

from __future__ import annotations

import errno
import os
import pwd
from pathlib import Path

from ..userfile import read_bounded
from .inetd import parse_inetd
from .model import HostFacts, Listener, ParseError
from .sockets import effective_uid, parse_proc_net, socket_inode
from .xinetd import XinetdFile, build_services, parse_xinetd

MAX_CONFIG_BYTES = 1 << 20  # a configuration file larger than this is not one a daemon reads
MAX_XINETD_FILES = 512
MAX_INCLUDE_DEPTH = 16  # xinetd.conf -> includedir -> file -> include ...: deeper is refused


class OutsideRoot(OSError):
    pass


def in_root(root: Path, path: str) -> Path:
    """`path` (absolute, as the image sees it) inside `root`; refuses symlinks that escape it."""
    candidate = root / path.lstrip("/")
    if root == Path("/"):
        return candidate
    real_root = _resolve(root)
    if not _resolve(candidate).is_relative_to(real_root):
        raise OutsideRoot(f"{path} leads outside {root} (symlink)")
    return candidate


def _resolve(path: Path) -> Path:
    try:
        return path.resolve()
    except RuntimeError:  # Python < 3.13 reports a symlink loop so
        raise OSError(errno.ELOOP, "symlink loop", str(path)) from None


def _read(path: Path) -> str:
    """A regular file's text, at most MAX_CONFIG_BYTES; OSError for anything else. Resolved inside
    the root first, so no symbolic link is left to follow: one still there is refused."""
    data = read_bounded(_resolve(path), MAX_CONFIG_BYTES, regular=True, follow=False)
    return data.decode("utf-8", errors="replace")


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def read_config(root: Path, facts: HostFacts) -> None:
    inetd_conf = root / "etc/inetd.conf"
    if os.path.lexists(inetd_conf):
        try:
            conf = parse_inetd(_read(in_root(root, "/etc/inetd.conf")), str(inetd_conf))
        except OSError as exc:
            facts.errors.append(ParseError(str(inetd_conf), 0, f"cannot read: {_reason(exc)}"))
        else:
            facts.sources.append(str(inetd_conf))
            facts.services += conf.services
            facts.disabled += conf.disabled
            facts.errors += conf.errors
    files = _read_xinetd(root, facts)
    enabled, disabled, errors = build_services(files)
    facts.services += enabled
    facts.disabled += disabled
    facts.errors += errors


def _read_xinetd(root: Path, facts: HostFacts) -> list[XinetdFile]:
    files: list[XinetdFile] = []
    seen: set[Path] = set()

    def too_deep(depth: int, path: str, where: ParseError | None) -> bool:
        if depth <= MAX_INCLUDE_DEPTH:
            return False
        file, line = (where.file, where.line) if where else (str(root / path.lstrip("/")), 0)
        facts.errors.append(ParseError(file, line, f"not following {path}: includes nested deeper than "
                                       f"{MAX_INCLUDE_DEPTH} levels"))
        return True

    def one(path: str, where: ParseError | None, depth: int = 0) -> None:
        if len(files) >= MAX_XINETD_FILES or too_deep(depth, path, where):
            return
        try:
            p = in_root(root, path)
            key = _resolve(p)
            if key in seen:
                return
            seen.add(key)
            text = _read(p)
        except OSError as exc:
            file, line = (where.file, where.line) if where else (str(root / path.lstrip("/")), 0)
            facts.errors.append(ParseError(file, line, f"cannot read {path}: {_reason(exc)}"))
            return
        parsed = parse_xinetd(text, str(p))
        facts.sources.append(str(p))
        files.append(parsed)
        facts.errors.extend(parsed.errors)
        for kind, target, line in parsed.includes:
            here = ParseError(str(p), line, "")
            if kind == "include":
                one(target, here, depth + 1)
            else:
                directory(target, here, depth + 1)

    def directory(path: str, where: ParseError | None, depth: int = 0) -> None:
        if too_deep(depth, path, where):
            return
        try:
            d = in_root(root, path)
            names = sorted(os.listdir(d))
        except OSError as exc:
            if where is not None:
                facts.errors.append(ParseError(where.file, where.line, f"cannot read {path}: {_reason(exc)}"))
            return
        for name in names:
            # xinetd skips names holding a dot or ending in '~' (package backups, editor copies).
            if "." in name or name.endswith("~"):
                continue
            full = f"{path.rstrip('/')}/{name}"
            try:
                if not in_root(root, full).is_file():
                    continue
            except OSError:
                pass
            one(full, where, depth)

    conf = "/etc/xinetd.conf"
    has_conf = os.path.lexists(root / conf.lstrip("/"))  # whatever it is, one() reads it or says why not
    if has_conf:
        one(conf, None)
    else:
        # No xinetd.conf: xinetd itself would read nothing, but files left in xinetd.d are still
        # what the admin means to run once it is installed, so the audit reads them.
        directory("/etc/xinetd.d", None)
    return files


def read_listeners(proc: Path, facts: HostFacts) -> None:
    listeners: list[Listener] = []
    for transport, table in (("tcp", "tcp"), ("tcp", "tcp6"), ("udp", "udp"), ("udp", "udp6")):
        path = proc / "net" / table
        try:
            text = path.read_text(encoding="ascii", errors="replace")
        except OSError:
            continue  # no IPv6 in this kernel or namespace
        found, problems = parse_proc_net(text, transport)
        listeners += found
        facts.sources.append(str(path))
        facts.errors += [ParseError(str(path), line, message) for line, message in problems]
    if not any(src.startswith(str(proc / "net")) for src in facts.sources):
        facts.errors.append(ParseError(str(proc / "net"), 0, "cannot read any socket table: listeners not audited"))
        return
    attach_owners(proc, listeners)
    facts.listeners += listeners
    facts.sockets_read = True


def socket_owners(proc: Path, inodes: set[int]) -> dict[int, list[int]]:
    """inode -> pids holding it open. Processes we may not inspect are skipped."""
    owners: dict[int, list[int]] = {}
    if not inodes:
        return owners
    try:
        pids = sorted(int(n) for n in os.listdir(proc) if n.isdigit())
    except OSError:
        return owners
    for pid in pids:
        fd_dir = proc / str(pid) / "fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                inode = socket_inode(os.readlink(fd_dir / fd))
            except OSError:
                continue
            if inode in inodes:
                pids_of = owners.setdefault(inode, [])
                if pid not in pids_of:
                    pids_of.append(pid)
    return owners


def attach_owners(proc: Path, listeners: list[Listener]) -> None:
    owners = socket_owners(proc, {lst.inode for lst in listeners if lst.inode})
    for lst in listeners:
        lst.pids = owners.get(lst.inode, [])
        if lst.pids:
            pid = lst.pids[0]  # the lowest: the parent of a pre-forked server
            try:
                lst.process = (proc / str(pid) / "comm").read_text(errors="replace").strip()
                lst.proc_uid = effective_uid((proc / str(pid) / "status").read_text(errors="replace"))
            except OSError:
                pass
        uid = lst.proc_uid if lst.proc_uid is not None else lst.uid
        try:
            lst.user = pwd.getpwuid(uid).pw_name
        except KeyError:
            lst.user = None


def gather(root: Path, with_sockets: bool, proc: Path = Path("/proc")) -> HostFacts:
    facts = HostFacts()
    read_config(root, facts)
    if with_sockets:
        read_listeners(proc, facts)
    return facts
