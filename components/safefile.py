"""Read a small text file without trusting what the path names.

A stack file or an SSH key path can name `/dev/zero`, `/dev/urandom` or a FIFO: `read_text()` on those
reads for ever, or until MemoryError, and opening a FIFO blocks until a writer comes. So the file is opened
non-blocking, checked to be a regular file by `fstat` on the open descriptor (no race with a swap of the
path), and read up to a size limit.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class UnsafeFile(ValueError):
    """The path is not a regular file, or is larger than its kind of file can sensibly be."""


def read_small_text(path: Path, limit: int, what: str = "file") -> str:
    """The UTF-8 text of a regular file of at most `limit` bytes.

    Raises OSError (missing, unreadable), UnsafeFile (not a regular file, too large) or
    UnicodeDecodeError (not UTF-8).
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeFile(f"{what} {path} is not a regular file")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise UnsafeFile(f"{what} {path} is larger than {limit:,} bytes")
    return b"".join(chunks).decode("utf-8")
