"""An output file of whole records: a full disk never leaves half a line behind.

The jsonl and csv sinks (and the findings/servers tables) build each record as one string and
make one `write()` call with it. `RecordFile` buffers those records and writes them with
`os.write` a batch at a time; if a write fails (ENOSPC on a full disk or `/dev/full`, EFBIG, EIO),
it truncates the file back to the end of the last record the disk took whole, and raises
`OutputError` once. Every later write raises the same error without touching the file, so the
file always ends at a record boundary: a reader sees N complete records, never a torn one.

`append_whole` is the same idea for a file that stays open for weeks (the monitor's JSONL): one
record per call, cut back to the record boundary when the write fails, so it can be retried.
"""

from __future__ import annotations

import contextlib
import os
from bisect import bisect_right
from itertools import accumulate
from typing import BinaryIO, TextIO

from .safeopen import create_output

BATCH_BYTES = 1 << 16


class OutputError(OSError):
    """Writing the output failed; the file (if it could be truncated) ends after a whole record."""


class RecordFile:
    """A write-only text stream for `path` whose every `write()` is one whole record (UTF-8)."""

    def __init__(self, path: str, batch_bytes: int = BATCH_BYTES) -> None:
        self.name = path
        self.batch_bytes = batch_bytes
        self.fd: int | None = create_output(path)  # a symbolic link is refused, not followed
        self.committed = 0  # bytes on disk, every one part of a whole record
        self.records = 0  # whole records on disk
        self.failed: OutputError | None = None
        self._pending: list[bytes] = []
        # The pending pieces that hold more than one record (a run of the core's lines): piece
        # index -> records.
        self._runs: dict[int, int] = {}
        self._size = 0

    # -- the TextIO surface the sinks use ------------------------------------------------------
    def write(self, record: str) -> int:
        if self.failed is not None:
            raise self.failed
        data = record.encode("utf-8", errors="surrogateescape")
        self._pending.append(data)
        self._size += len(data)
        if self._size >= self.batch_bytes:
            self.flush()
        return len(record)

    def write_bytes(self, data: bytes, records: int = 1) -> int:
        """`write()` of a record already encoded (UTF-8): the jsonl and eve sinks' bytes; or of a
        run of `records` whole records (the core's lines), kept or cut back as one piece."""
        if self.failed is not None:
            raise self.failed
        if records != 1:
            self._runs[len(self._pending)] = records
        self._pending.append(data)
        self._size += len(data)
        if self._size >= self.batch_bytes:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.failed is not None:
            raise self.failed
        if not self._pending or self.fd is None:
            return
        pending, runs = self._pending, self._runs
        data = b"".join(pending)
        self._pending, self._runs, self._size = [], {}, 0
        view, written = memoryview(data), 0
        try:
            while written < len(data):
                written += os.write(self.fd, view[written:])
        except OSError as exc:
            # Where each record ends, worked out only now: a run writes ~a record per flow.
            ends = list(accumulate(len(r) for r in pending))
            whole = bisect_right(ends, written)  # pieces that reached the disk whole
            keep = ends[whole - 1] if whole else 0
            self._truncate(self.committed + keep)
            self.committed += keep
            self.records += whole + sum(n - 1 for i, n in runs.items() if i < whole)
            self.failed = OutputError(exc.errno, f"write error: {exc.strerror or exc}; output ends after "
                                      f"{self.records} complete record(s)", self.name)
            raise self.failed from None
        self.committed += len(data)
        self.records += len(pending) + sum(n - 1 for n in runs.values())

    def _truncate(self, size: int) -> None:
        with contextlib.suppress(OSError):  # /dev/full, a pipe: nothing to cut back
            os.ftruncate(self.fd, size)  # type: ignore[arg-type]

    def close(self) -> None:
        """Write what is buffered (OutputError if that fails) and close; closing again is a no-op."""
        if self.fd is None:
            return
        try:
            if self.failed is None:
                self.flush()
        finally:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> RecordFile:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:  # already failing: keep that error, do not raise a second one
            with contextlib.suppress(OSError):
                self.close()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        if self.fd is None:
            raise ValueError("closed file")
        return self.fd


class StdoutRecords:
    """Standard output (a pipe or a file, not a terminal) for whole records, as bytes: the jsonl and
    eve sinks hand it their encoded lines (`write_bytes`), not decoded to text and encoded back;
    text (csv, tables) is written as UTF-8, as `RecordFile` writes it. The stream's errors (a closed
    pipe) are the stream's, as for any write to stdout."""

    name = "<stdout>"

    def __init__(self, text: TextIO) -> None:
        text.flush()  # what was written as text comes first
        self._buffer: BinaryIO = text.buffer

    def write(self, record: str) -> int:
        self._buffer.write(record.encode("utf-8", errors="surrogateescape"))
        return len(record)

    def write_bytes(self, data: bytes, records: int = 1) -> int:
        self._buffer.write(data)
        return len(data)

    def flush(self) -> None:
        self._buffer.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False


def append_whole(fd: int, data: bytes) -> None:
    """Append `data` (one record) to the O_APPEND descriptor `fd`, whole or not at all.

    A short write followed by an error (ENOSPC, EFBIG, EIO) is cut back with ftruncate to where
    the record began, and the error is raised: the file still ends at a record boundary, and the
    caller may try the same record again later.
    """
    view, written = memoryview(data), 0
    try:
        while written < len(data):
            written += os.write(fd, view[written:])
    except OSError:
        if written:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, os.fstat(fd).st_size - written)
        raise
