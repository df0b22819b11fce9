"""The local file-system source."""

from __future__ import annotations

import builtins
import os
import shutil
from collections import Counter

from sparkhist.source.base import ByteStream, FileEntry, SourceHealth
from sparkhist.source.faults import os_error


class LocalSource:
    """Reads a log directory on local disk.

    ``opens``, ``lists`` and ``calls`` (per operation) count what the source was asked
    for, so tests (and metrics) can prove that unchanged logs are never opened again.
    """

    def __init__(self, root: str) -> None:
        self.root_path = os.path.abspath(root)
        self.root = "file:" + self.root_path
        self.opens = 0
        self.lists = 0
        self.calls: Counter[str] = Counter()  # list / stat / open

    def list(self, path: str) -> builtins.list[FileEntry]:
        self.lists += 1
        self.calls["list"] += 1
        try:
            with os.scandir(path) as it:
                entries = []
                for d in it:
                    try:
                        st = d.stat()
                    except FileNotFoundError:
                        continue  # removed between the listing and the stat
                    is_dir = d.is_dir()
                    entries.append(
                        FileEntry(
                            path=d.path,
                            name=d.name,
                            size=0 if is_dir else st.st_size,
                            mtime_ms=st.st_mtime_ns // 1_000_000,
                            is_dir=is_dir,
                        )
                    )
                return entries
        except OSError as exc:
            raise os_error(exc, "list", path) from exc

    def stat(self, path: str) -> FileEntry:
        self.calls["stat"] += 1
        try:
            st = os.stat(path)
        except OSError as exc:
            raise os_error(exc, "stat", path) from exc
        is_dir = os.path.isdir(path)
        return FileEntry(path, os.path.basename(path), 0 if is_dir else st.st_size, st.st_mtime_ns // 1_000_000, is_dir)

    def open(self, path: str, offset: int = 0) -> ByteStream:
        self.opens += 1
        self.calls["open"] += 1
        try:
            f = open(path, "rb")
        except OSError as exc:
            raise os_error(exc, "open", path) from exc
        if offset:
            f.seek(offset)
        return f

    def delete(self, path: str) -> None:
        try:
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise os_error(exc, "delete", path) from exc

    def join(self, parent: str, name: str) -> str:
        return os.path.join(parent, name)

    def health(self) -> SourceHealth:
        """Local disk has no endpoint state: always ``ok`` here (call outcomes tell the rest)."""
        return SourceHealth(source=self.root, state="ok", since=None, last_error=None, last_error_at=None, breaker=None)

    def close(self) -> None:
        """Nothing to release: each stream is closed by its reader."""
