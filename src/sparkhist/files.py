"""Small file-system steps every layer's atomic writes share (the store's snapshots, list file
and segments, a local store location, the analytics files)."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

__all__ = ["FileSystemUsage", "filesystem_usage", "fsync_dir", "unlink_quietly", "write_file_atomically"]


def fsync_dir(path: str) -> None:
    """Make a rename or unlink in directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unlink_quietly(path: str) -> None:
    """Remove ``path``; a file already gone is no error."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def write_file_atomically(path: str, data: bytes | list[bytes], temp: str) -> None:
    """``data`` (or its parts, one after the other) written to ``temp`` (beside ``path``, its
    directory existing), fsynced, renamed over ``path``, the directory fsynced: a reader sees the
    old file or the new one, never part of it. ``temp`` is removed when a step fails; the
    :class:`OSError` is raised."""
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for part in [data] if isinstance(data, bytes) else data:
                view = memoryview(part)
                while view:
                    view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
        fsync_dir(os.path.dirname(path) or ".")
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


@dataclass(frozen=True, slots=True)
class FileSystemUsage:
    total_bytes: int
    free_bytes: int  # available to this (unprivileged) process, as ``df`` shows it

    @property
    def ratio(self) -> float:
        """Used / (used + available): the ``Use%`` column of ``df``."""
        if self.total_bytes <= 0:
            return 0.0
        return min(1.0, max(0.0, 1.0 - self.free_bytes / self.total_bytes))


def filesystem_usage(path: str) -> FileSystemUsage:
    """Usage of the file system holding ``path`` (its nearest existing ancestor)."""
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    st = os.statvfs(path)
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    free = st.f_bavail * st.f_frsize
    return FileSystemUsage(total_bytes=used + free, free_bytes=free)
