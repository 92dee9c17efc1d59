"""Open an output file as root without letting anyone who can write near it redirect the write.

The monitor creates its outputs as root before it drops privileges, in directories such as
/var/lib/portwatch or /tmp. A symbolic link planted at `--jsonl` or `--db` (or a hard link to
/etc/shadow) would make root append to, chown or corrupt whatever it points at. So an output:

- is opened relative to its parent directory, and that directory must not be writable by anyone
  but root and us (owner, group or others), unless it is sticky (/tmp) and owned by root or us;
- is created with O_CREAT|O_EXCL|O_NOFOLLOW, or, when it exists, opened with O_NOFOLLOW: a
  symbolic link as the last component is refused (OutputPathError), never followed;
- when it existed: must be a regular file with one link (a character device such as /dev/null
  too, when `regular_only` is False), checked with fstat on the open descriptor;
- is handed to `owner` (fchown on the descriptor, never chown by name) only when we created it.

`OutputPathError` carries one line: the path and why it was refused.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from dataclasses import dataclass

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class OutputPathError(OSError):
    """The output path is unsafe or cannot be opened; `str()` is one line naming the path."""

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


@dataclass(slots=True)
class OpenedFile:
    path: str
    fd: int
    created: bool
    dev: int
    ino: int


def _trusted() -> tuple[set[int], set[int]]:
    return {0, os.geteuid()}, {0, os.getegid()}


def check_directory(st: os.stat_result, path: str) -> None:
    """OutputPathError unless only root and we can add or replace names in the directory `st`."""
    uids, gids = _trusted()
    mode = st.st_mode
    writable_by_others = (
        bool(mode & stat.S_IWOTH)
        or (bool(mode & stat.S_IWGRP) and st.st_gid not in gids)
        or st.st_uid not in uids
    )
    sticky_ok = bool(mode & stat.S_ISVTX) and st.st_uid in uids
    if writable_by_others and not sticky_ok:
        who = f"owned by uid {st.st_uid}" if st.st_uid not in uids else f"mode {stat.S_IMODE(mode):04o}"
        raise OutputPathError(errno.EPERM, f"directory {path} is writable by others ({who}); refusing to write "
                              "in it (use a directory only root can write to, or a sticky one owned by root)", path)


def open_output(path: str, *, read: bool = False, append: bool = True, regular_only: bool = True,
                mode: int = 0o644, owner: tuple[int, int] | None = None, check_parent: bool = True) -> OpenedFile:
    """Open (creating it if missing) `path` for writing, as the module docstring says. Without
    `check_parent` the directory may be anyone's (`create_output`)."""
    path = os.fspath(path)
    parent, name = os.path.split(os.path.abspath(path))
    if not name:
        raise OutputPathError(errno.EISDIR, "is a directory", path)
    try:
        dfd = os.open(parent or "/", os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
    except OSError as exc:
        raise OutputPathError(exc.errno, exc.strerror or str(exc), path) from None
    try:
        if check_parent:
            check_directory(os.fstat(dfd), parent)
        flags = (os.O_RDWR if read else os.O_WRONLY) | (os.O_APPEND if append else 0)
        flags |= _NOFOLLOW | _CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
        fd, created = _open_at(dfd, name, flags, mode, path)
    finally:
        os.close(dfd)
    try:
        st = os.fstat(fd)
        if not created:
            if stat.S_ISREG(st.st_mode):
                if st.st_nlink != 1:
                    raise OutputPathError(errno.EPERM, f"has {st.st_nlink} hard links; refusing to write to it", path)
            elif regular_only or not stat.S_ISCHR(st.st_mode):
                raise OutputPathError(errno.EPERM, "not a regular file; refusing to write to it", path)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        if created and owner is not None and os.geteuid() == 0 and owner[0] != 0:
            os.fchown(fd, owner[0], owner[1])
    except OSError as exc:
        os.close(fd)
        if isinstance(exc, OutputPathError):
            raise
        raise OutputPathError(exc.errno, exc.strerror or str(exc), path) from None
    return OpenedFile(path, fd, created, st.st_dev, st.st_ino)


def create_output(path: str) -> int:
    """A descriptor to write `path` from its start, for a file a command writes once (`analyze -o`,
    `audit -o`, a baseline, Parquet): created if missing, else emptied. A symbolic link as the last
    component is refused, never followed, and so is anything but a regular file with one link or a
    character device such as /dev/null (`open_output`'s checks). The directory is not checked: the
    user names it, and whoever else can write in it can plant nothing there that this follows."""
    opened = open_output(path, append=False, regular_only=False, check_parent=False)
    try:
        if not opened.created and stat.S_ISREG(os.fstat(opened.fd).st_mode):
            os.ftruncate(opened.fd, 0)
    except OSError as exc:
        os.close(opened.fd)
        raise OutputPathError(exc.errno, exc.strerror or str(exc), path) from None
    return opened.fd


def _open_at(dfd: int, name: str, flags: int, mode: int, path: str) -> tuple[int, bool]:
    for _ in range(8):  # created and removed under us in between: try again, a few times
        try:
            return os.open(name, flags | os.O_CREAT | os.O_EXCL, mode, dir_fd=dfd), True
        except FileExistsError:
            pass
        except OSError as exc:
            raise OutputPathError(exc.errno, exc.strerror or str(exc), path) from None
        try:
            return os.open(name, flags, dir_fd=dfd), False
        except FileNotFoundError:
            continue
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise OutputPathError(exc.errno, "is a symbolic link; refusing to follow it", path) from None
            if exc.errno == errno.ENXIO:
                raise OutputPathError(exc.errno, "a FIFO nobody reads; refusing to write to it", path) from None
            raise OutputPathError(exc.errno, exc.strerror or str(exc), path) from None
    raise OutputPathError(errno.EAGAIN, "keeps appearing and disappearing; refusing it", path)
