"""Several log directories read as one source (``spark.history.fs.logDirectory`` as a list).

SHS 4.2+ (SPARK-55793) lists applications from every directory of a comma-separated
``spark.history.fs.logDirectory``. :class:`SourceSet` puts one source per directory
behind the :class:`~sparkhist.source.base.Source` protocol, so the scanner, the reader,
the cleaner and the indexing processes go on seeing one source:

- its :attr:`~SourceSet.root` is the directories' roots joined by commas (what the
  catalog records and what :func:`~sparkhist.source.factory.open_source` opens again
  in an indexing process); its :attr:`~SourceSet.root_path` names the set itself;
- listing :attr:`~SourceSet.root_path` lists every directory; a directory that cannot be
  listed is left out of the answer and named in its :attr:`PartialListing.unlisted`, so
  the scanner keeps what it knows of that directory (one directory down stops no
  other); when none can be listed the listing fails as one directory's would;
- every other call goes to the directory the path lies in (a log's path is its full
  path, the catalog key, unique across directories: the SHS's ``resolveLogPath``);
- each directory keeps its own guard and breaker (the sources are independent), its own
  skip registry and health; :func:`directories` gives them to whoever shows them apart.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Iterable, Mapping, Sequence

from sparkhist.errors import SourceError, SourceNotFound, SourceUnavailable
from sparkhist.source.base import ByteStream, FileEntry, Source, SourceHealth
from sparkhist.source.skipped import Skip, SkippedLogs

__all__ = ["PartialListing", "SourceSet", "directories", "owner_of"]

_STATES = ("ok", "degraded", "offline")


class PartialListing(builtins.list[FileEntry]):
    """The entries of the directories that could be listed; ``unlisted``: root -> why not, for the others."""

    def __init__(self, entries: Iterable[FileEntry], unlisted: Mapping[str, str]) -> None:
        super().__init__(entries)
        self.unlisted = dict(unlisted)


def owner_of(sources: Sequence[Source], path: str) -> Source | None:
    """The source whose directory holds ``path`` (the deepest one), None when none does."""
    best: Source | None = None
    best_len = -1
    for source in sources:
        root = source.root_path.rstrip("/")
        if (path == root or path.startswith(root + "/")) and len(root) > best_len:
            best, best_len = source, len(root)
    return best


def directories(source: Source) -> list[Source]:
    """The sources of each log directory behind ``source`` (itself when it reads one).

    Wrappers that keep the wrapped source as ``inner`` (``ObservedSource``) are looked through.
    """
    seen: Source | None = source
    while seen is not None:
        if isinstance(seen, SourceSet):
            return list(seen.sources)
        seen = getattr(seen, "inner", None)
    return [source]


class _RoutedSkips(SkippedLogs):
    """The skip registry of a set: each entry is its directory's (reports, clears and reads go
    there by path); reading the whole set reads them all."""

    def __init__(self, name: str, sources: Sequence[Source]) -> None:
        super().__init__(name)
        self._sources = sources

    def report(self, path: str, reason: str, detail: str = "") -> None:
        owner = owner_of(self._sources, path)
        if owner is None:
            super().report(path, reason, detail)
        else:
            owner.skipped.report(path, reason, detail)

    def clear(self, path: str, reasons: Collection[str] | None = None) -> None:
        owner = owner_of(self._sources, path)
        if owner is None:
            super().clear(path, reasons)
        else:
            owner.skipped.clear(path, reasons)

    def after_listing(self, directory: str, present: Iterable[str], reported: Collection[str] = ()) -> None:
        owner = owner_of(self._sources, directory)
        if owner is None:
            super().after_listing(directory, present, reported)
        else:
            owner.skipped.after_listing(directory, present, reported)

    def entries(self) -> list[Skip]:
        out = [e for s in self._sources for e in s.skipped.entries()] + super().entries()
        return sorted(out, key=lambda e: e.path)

    def counts(self) -> dict[str, int]:
        out = super().counts()
        for source in self._sources:
            for reason, n in source.skipped.counts().items():
                out[reason] = out.get(reason, 0) + n
        return out

    def __len__(self) -> int:
        return super().__len__() + sum(len(s.skipped) for s in self._sources)

    def get(self, path: str) -> Skip | None:
        owner = owner_of(self._sources, path)
        return super().get(path) if owner is None else owner.skipped.get(path)


class SourceSet:
    """Several log directories as one :class:`~sparkhist.source.base.Source` (see the module doc)."""

    def __init__(self, sources: Sequence[Source]) -> None:
        if len(sources) < 2:
            raise ValueError("a SourceSet reads two log directories or more")
        self.sources = tuple(sources)
        self.root = ",".join(s.root for s in self.sources)
        #: Not a path of any directory: listing it lists them all.
        self.root_path = self.root
        self.skipped: SkippedLogs = _RoutedSkips(self.root, self.sources)

    @property
    def calls(self) -> Mapping[str, int]:
        total: dict[str, int] = {}
        for source in self.sources:
            for op, n in source.calls.items():
                total[op] = total.get(op, 0) + n
        return total

    def _owner(self, path: str) -> Source:
        owner = owner_of(self.sources, path)
        if owner is None:
            raise SourceNotFound(f"{path} is in none of the log directories {self.root}")
        return owner

    def list(self, path: str) -> builtins.list[FileEntry]:
        if path != self.root_path:
            return self._owner(path).list(path)
        entries: builtins.list[FileEntry] = []
        unlisted: dict[str, str] = {}
        failure: SourceError | None = None
        for source in self.sources:
            try:
                entries.extend(source.list(source.root_path))
            except SourceError as exc:
                unlisted[source.root_path] = str(exc)
                failure = failure or exc
        if failure is not None and len(unlisted) == len(self.sources):
            kind = SourceUnavailable if failure.retryable else SourceError
            raise kind("no log directory could be listed: "
                              + "; ".join(f"{root}: {why}" for root, why in unlisted.items())) from failure
        return PartialListing(entries, unlisted)

    def stat(self, path: str) -> FileEntry:
        return self._owner(path).stat(path)

    def open(self, path: str, offset: int = 0) -> ByteStream:
        return self._owner(path).open(path, offset)

    def delete(self, path: str) -> None:
        self._owner(path).delete(path)

    def join(self, parent: str, name: str) -> str:
        return self._owner(parent).join(parent, name)

    def health(self) -> SourceHealth:
        """The worst directory's state (each directory's own is its source's ``health()``)."""
        reports = [s.health() for s in self.sources]
        worst = max(reports, key=lambda h: _STATES.index(h["state"]))
        return SourceHealth(source=self.root, state=worst["state"], since=worst["since"],
                            last_error=worst["last_error"], last_error_at=worst["last_error_at"], breaker=None)

    def close(self) -> None:
        for source in self.sources:
            source.close()
