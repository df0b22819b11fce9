"""What the catalog remembers about each event log."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from sparkhist.events.listing import AttemptListing
from sparkhist.reader.position import Position


@dataclass(slots=True)
class LogRecord:
    """One row of the catalog: a log, how far it was read, and its listing.

    ``size_of_last``/``last_index``/``in_progress`` are Spark's ``LogInfo`` change
    signals (size and completeness, never mtime); in an object store, ``etag_of_last``
    (the last file's ETag) also tells an object rewritten with the same size. ``position`` is where the next read
    resumes. ``listing`` is None until the log's ApplicationStart has been seen;
    ``error`` says why a log could not be indexed (it is retried when it changes).
    """

    path: str
    kind: str
    size_of_last: int
    last_index: int | None
    in_progress: bool
    mtime_ms: int
    position: Position = field(default_factory=Position)
    resume_file: str | None = None  # name of files[position.file_index] when read
    listing: AttemptListing = field(default_factory=AttemptListing)
    total_size: int = 0  # stored bytes of every file of the log
    snapshot_size: int = -1  # total_size the full-state snapshot reflects (-1: none yet)
    snapshot_in_progress: bool = False
    last_updated: int = -1
    last_processed: int = 0
    error: str | None = None
    etag_of_last: str | None = None  # object stores only

    @property
    def app_id(self) -> str | None:
        return self.listing.app_id

    @property
    def needs_full_index(self) -> bool:
        """Whether the snapshot lags the log (new, grown, or completed since)."""
        return self.snapshot_size != self.total_size or self.snapshot_in_progress != self.in_progress

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in _RECORD_FIELDS}
        data["position"] = list(self.position.as_tuple())
        data["listing"] = self.listing.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LogRecord:
        data = dict(data)
        data["position"] = Position.from_tuple(data["position"])
        data["listing"] = AttemptListing.from_dict(data["listing"])
        return cls(**data)


_RECORD_FIELDS = tuple(f.name for f in fields(LogRecord))
