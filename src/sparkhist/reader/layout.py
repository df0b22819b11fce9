"""Event-log layouts: single files and ``eventlog_v2_*`` rolling directories.

Rules (SHS_REFERENCE §2.4), mirrored from Spark's ``EventLogFileReaders``:

* a non-hidden file is a single-file log ``<name>[.<codec>][.inprogress]``;
* a directory named ``eventlog_v2_<name>`` is a rolling log holding
  ``events_<N>_<name>[.<codec>][.compact]`` files and one zero-byte
  ``appstatus_<name>[.inprogress]`` marker. Completion is decided by the marker only.
  Files are ordered by index (a ``.compact`` file sorts just after the normal file
  of the same index), everything before the last ``.compact`` file is dropped, and
  the remaining indices must be contiguous;
* dot-files (``.crc`` files of Hadoop's LocalFileSystem and the like) are ignored,
  and so is any other directory.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Literal

from sparkhist.errors import LayoutError
from sparkhist.source.base import FileEntry, Source

ROLLING_DIR_PREFIX = "eventlog_v2_"
EVENTS_PREFIX = "events_"
APPSTATUS_PREFIX = "appstatus_"
IN_PROGRESS = ".inprogress"
COMPACTED = ".compact"
KNOWN_CODECS = ("lz4", "lzf", "snappy", "zstd")

_EVENTS_NAME = re.compile(r"^events_(\d+)_(.+)$")


@dataclass(frozen=True, slots=True)
class EventLog:
    """One event log as found on the source: what the scanner compares and the reader reads."""

    path: str  # the file, or the rolling directory: the catalog key
    name: str  # last component of ``path``
    kind: Literal["single", "rolling"]
    codec: str | None  # lz4, lzf, snappy, zstd, or None for plain JSON lines
    in_progress: bool
    files: tuple[FileEntry, ...]  # event files in reading order (one for a single file)

    @property
    def last_index(self) -> int | None:
        """Index of the last ``events_N`` file (rolling logs only), as Spark's ``lastIndex``."""
        if self.kind != "rolling":
            return None
        return event_file_index(self.files[-1].name)

    @property
    def size_of_last(self) -> int:
        """Size of the last file: Spark's ``fileSizeForLastIndex``."""
        return self.files[-1].size

    @property
    def etag_of_last(self) -> str | None:
        """The object store's ETag of the last file (None on file systems)."""
        return self.files[-1].etag

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def mtime_ms(self) -> int:
        """Modification time of the last file (what the SHS reports as ``lastUpdated``)."""
        return self.files[-1].mtime_ms


def codec_of(file_name: str) -> str | None:
    """The codec short name encoded in a log file name (Spark's ``EventLogFileWriter.codecName``)."""
    name = file_name
    if name.endswith(COMPACTED):
        name = name[: -len(COMPACTED)]
    if name.endswith(IN_PROGRESS):
        name = name[: -len(IN_PROGRESS)]
    if "." not in name:
        return None
    codec = name.rsplit(".", 1)[1]
    if codec not in KNOWN_CODECS:
        raise LayoutError(f"unknown compression codec {codec!r} in file name {file_name!r}")
    return codec


def is_hidden(name: str) -> bool:
    return name.startswith(".")


def single_file_log(entry: FileEntry) -> EventLog:
    """A single-file log from its directory entry."""
    return EventLog(
        path=entry.path,
        name=entry.name,
        kind="single",
        codec=codec_of(entry.name),
        in_progress=entry.name.endswith(IN_PROGRESS),
        files=(entry,),
    )


def event_file_index(name: str) -> int:
    match = _EVENTS_NAME.match(name)
    if not match:
        raise LayoutError(f"not an events file name: {name!r}")
    return int(match.group(1))


def _sort_key(entry: FileEntry) -> float:
    index = event_file_index(entry.name)
    return index + 0.1 if entry.name.endswith(COMPACTED) else float(index)


def rolling_log(directory: FileEntry, children: list[FileEntry]) -> EventLog:
    """A rolling log from its directory entry and the entries inside it."""
    visible = log_files(children)
    events = sorted((c for c in visible if c.name.startswith(EVENTS_PREFIX)), key=_sort_key)
    statuses = [c for c in visible if c.name.startswith(APPSTATUS_PREFIX)]
    if not events:
        raise LayoutError(f"rolling log {directory.path} has no events_* file")
    if not statuses:
        raise LayoutError(f"rolling log {directory.path} has no appstatus_* file")
    compacted = [i for i, e in enumerate(events) if e.name.endswith(COMPACTED)]
    if compacted:
        events = events[compacted[-1] :]
    indices = [event_file_index(e.name) for e in events]
    expected = list(range(indices[0], indices[0] + len(indices)))
    if indices != expected:
        missing = sorted(set(expected) - set(indices))
        raise LayoutError(f"Found missing event log file, expected indices: {expected}, actual: {indices} "
                          f"(missing {missing}) in {directory.path}")
    in_progress = all(s.name.endswith(IN_PROGRESS) for s in statuses)
    return EventLog(
        path=directory.path,
        name=directory.name,
        kind="rolling",
        codec=codec_of(events[0].name),
        in_progress=in_progress,
        files=tuple(events),
    )


def log_files(children: list[FileEntry]) -> list[FileEntry]:
    """The files of a rolling log's directory listing that belong to it (no directory, no dot-file)."""
    return [c for c in children if not c.is_dir and not is_hidden(c.name)]


def is_rolling_dir(entry: FileEntry) -> bool:
    return entry.is_dir and entry.name.startswith(ROLLING_DIR_PREFIX)


def kind_of(path: str) -> Literal["single", "rolling"]:
    """A log's kind from its path alone (its name), for when the source is not asked."""
    return "rolling" if posixpath.basename(path).startswith(ROLLING_DIR_PREFIX) else "single"


def event_log_at(source: Source, entry: FileEntry) -> EventLog:
    """The log at a directory entry: a rolling directory (listed) or a single file.

    :class:`SourceError` when listing fails, :class:`LayoutError` when the files do not
    make a log.
    """
    return rolling_log(entry, source.list(entry.path)) if is_rolling_dir(entry) else single_file_log(entry)


def find_event_log(source: Source, path: str) -> EventLog:
    """The log at ``path``: stat it, then read it as a rolling directory or a single file.

    :class:`SourceNotFound` when nothing is there, :class:`SourceError` when the source
    fails, :class:`LayoutError` when the files do not make a log.
    """
    return event_log_at(source, source.stat(path))


def is_candidate(entry: FileEntry) -> bool:
    """Whether a root-directory entry may be an event log at all."""
    if is_hidden(entry.name):
        return False
    return is_rolling_dir(entry) or not entry.is_dir
