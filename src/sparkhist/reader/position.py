"""Where a read of an event log stopped, so the next read resumes there."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Position:
    """A resume point inside an event log.

    ``offset`` is a byte offset in the *stored* (possibly compressed) file
    ``EventLog.files[file_index]`` at which decoding can restart (a block or frame
    boundary); ``skip`` is how many decompressed bytes to drop after restarting
    there to land just after the last complete line; ``line`` counts the lines
    read so far, for messages only: a read that skipped part of the log (the listing
    pass's head and tail, :mod:`sparkhist.reader.tail`) counts only the lines it read,
    so after such a read it is no line number. Nothing may rely on it being exact.
    """

    file_index: int = 0
    offset: int = 0
    skip: int = 0
    line: int = 0

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.file_index, self.offset, self.skip, self.line)

    @classmethod
    def from_tuple(cls, values: tuple[int, int, int, int] | list[int]) -> Position:
        return cls(*values)


START = Position()
