"""Small file-system steps the store's atomic writes share."""

from __future__ import annotations

import os

__all__ = ["fsync_dir", "unlink_quietly"]


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
