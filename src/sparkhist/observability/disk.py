"""How much disk the store uses, and how full its file system is.

Walking a store of many snapshots costs a directory read per directory and a stat
per file, so the total is cached for ``ttl`` seconds: a scrape every 15 s walks at
most once per ``ttl``. ``statvfs`` is one system call and is never cached.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from sparkhist.files import FileSystemUsage, filesystem_usage


def tree_bytes(path: str) -> int:
    """Allocated bytes (blocks, not apparent sizes) of every file under ``path``."""
    total = 0
    stack = [path]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        else:
                            total += entry.stat(follow_symlinks=False).st_blocks * 512
                    except FileNotFoundError:
                        continue  # removed while walking (a temp file renamed, a snapshot deleted)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
    return total


class DiskUsage:
    """The store directory's size, walked at most once per ``ttl`` seconds."""

    def __init__(self, path: str, *, ttl: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._value = 0
        self._at: float | None = None

    def bytes(self) -> int:
        with self._lock:
            now = self._clock()
            if self._at is None or now - self._at >= self.ttl:
                self._value = tree_bytes(self.path)
                self._at = now
            return self._value

    def filesystem(self) -> FileSystemUsage:
        return filesystem_usage(self.path)
