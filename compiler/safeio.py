"""Reading a path the user named: regular files only, never more than a limit.

`open()` on a FIFO waits for a writer forever, and a character device (/dev/zero) never ends;
opening without blocking and checking the opened file's type refuses both at once.
"""
from __future__ import annotations

import os
import stat


class NotRegularFile(OSError):
    pass


def read_regular(path: str, max_bytes: int, follow_links: bool = True) -> bytes:
    """Up to max_bytes + 1 bytes of a regular file (the caller tells "too large" by the length).
    Raises NotRegularFile for a FIFO, socket, device or folder, OSError when it cannot be read
    (also, with follow_links=False, when the path is a symbolic link)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | (0 if follow_links else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile(f"{path} is not a regular file")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(max_bytes + 1)
    finally:
        os.close(fd)
