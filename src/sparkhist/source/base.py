"""The Source protocol: list, stat, open a byte range. Nothing else.

Every method may raise :class:`~sparkhist.errors.SourceError` subclasses only; a
source translates its backend's exceptions itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Protocol


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One directory entry as a source reports it."""

    path: str  # full path (or URL) of the entry; the catalog key
    name: str  # last path component
    size: int  # bytes; 0 for directories
    mtime_ms: int  # modification time, ms since the epoch (only to order work)
    is_dir: bool


class Source(Protocol):
    """What the scanner and the reader need from a file system."""

    #: Display form of the log directory (e.g. ``file:/data/spark-events``).
    root: str
    #: The log directory as this source's own path, for ``list``.
    root_path: str

    def list(self, path: str) -> list[FileEntry]:
        """The entries directly under ``path`` (not recursive)."""
        ...

    def stat(self, path: str) -> FileEntry:
        """One entry."""
        ...

    def open(self, path: str, offset: int = 0) -> BinaryIO:
        """A binary stream of ``path`` from ``offset`` to its current end."""
        ...

    def delete(self, path: str) -> None:
        """Delete a file or a directory tree (the cleaner's only write)."""
        ...

    def join(self, parent: str, name: str) -> str:
        """The path of ``name`` inside ``parent``."""
        ...
