"""Reading a file the user points portwatch at (a site policy, a baseline, a services database, a
signature file): at most a limit of bytes, so that a link to /dev/zero or a runaway file is an error
naming it, not all the memory there is. A file a directory scan finds must also be a regular file,
opened without blocking: a FIFO among a directory's signature files cannot stall the run (the core's
signature loader holds to the same rule). A FIFO named on purpose (`--policy <(...)`) is read as
any reader reads one."""

from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import SupportsRead

READ_CHUNK = 1 << 16


def read_capped(fh: SupportsRead[bytes], limit: int) -> bytes:
    """At most `limit` bytes of `fh`, a chunk at a time: `read(limit)` allocates its whole buffer
    up front, 16 MB for a 12 KB services file."""
    chunks: list[bytes] = []
    total = 0
    while total < limit and (chunk := fh.read(min(READ_CHUNK, limit - total))):
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def read_bounded(path: str | os.PathLike[str], limit: int, *, regular: bool = False,
                 follow: bool = True) -> bytes:
    """The bytes of `path`; OSError EFBIG past `limit` bytes, and with `regular`, EINVAL for
    anything but a regular file (checked on the file opened without blocking). Without `follow`,
    a symbolic link is refused (the audit's files, resolved inside their root first)."""
    name = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | (os.O_NONBLOCK if regular else 0)
    with open(os.open(name, flags | (0 if follow else os.O_NOFOLLOW)), "rb", closefd=True) as fh:
        st = os.fstat(fh.fileno())
        if regular and not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", name)
        if stat.S_ISREG(st.st_mode) and st.st_size > limit:  # refused unread
            raise OSError(errno.EFBIG, f"larger than {_size(limit)}", name)
        data = read_capped(fh, limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {_size(limit)}", name)
    return data


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 and n % (1 << 20) == 0 else f"{n} bytes"
