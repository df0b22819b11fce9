"""One writer per store: an exclusive ``flock`` the kernel releases when the process dies."""

from __future__ import annotations

import fcntl
import os

LOCK_FILE = "writer.lock"


class WriterLock:
    def __init__(self, store_dir: str) -> None:
        os.makedirs(store_dir, exist_ok=True)
        self.path = os.path.join(store_dir, LOCK_FILE)
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock without waiting; True when this process is now the writer."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def holder_pid(self) -> int | None:
        try:
            with open(self.path) as f:
                return int(f.read().strip() or 0) or None
        except (OSError, ValueError):
            return None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
