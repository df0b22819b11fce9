"""A read-only binary stream over ranged reads: what remote sources' ``open`` returns.

Each ``read`` becomes at most one ranged call of ``chunk_size`` bytes (so each one
carries its own deadline and retries), and the stream never asks for bytes at or past
``length``, the size fixed when the file was opened: a growing file's new bytes are
the next read's business, and hdfs-native panics when asked past its known length.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["RangeStream"]


class RangeStream(io.RawIOBase):
    """Bytes ``[offset, length)`` of one file, fetched by ``fetch(position, size) -> bytes``."""

    def __init__(
        self,
        fetch: Callable[[int, int], bytes],
        length: int,
        offset: int = 0,
        *,
        chunk_size: int = 4 << 20,
        name: str = "",
        on_close: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        if offset < 0:
            raise ValueError(f"negative offset {offset}")
        self._fetch = fetch
        self.length = length
        self.position = min(offset, length)
        self.chunk_size = chunk_size
        self.name = name
        self._on_close = on_close

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.length}[whence]
        target = base + offset
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        self.position = min(target, self.length)
        return self.position

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed stream")
        view = memoryview(buffer).cast("B")
        want = min(len(view), self.length - self.position, self.chunk_size)
        if want <= 0:
            return 0
        data = self._fetch(self.position, want)
        n = min(len(data), want)
        view[:n] = data[:n]
        self.position += n
        return n

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (at most ``chunk_size`` per call); everything left for -1."""
        if self.closed:
            raise ValueError("I/O operation on closed stream")
        if size is None or size < 0:
            return self.readall()
        buffer = bytearray(min(size, self.chunk_size, max(0, self.length - self.position)))
        n = self.readinto(buffer) if buffer else 0
        return bytes(buffer[:n])

    def readall(self) -> bytes:
        """The rest of the file, fetched ``chunk_size`` bytes at a time."""
        parts = []
        while chunk := self.read(self.chunk_size):
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        if not self.closed and self._on_close is not None:
            self._on_close()
        super().close()
