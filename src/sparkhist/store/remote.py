"""A shared store location (``file://``, ``hdfs://``, ``s3a://``, ``gs://``, ``abfs://``) written
by ``sparkhist index-on-spark`` and read by replicas.

Its layout is a local store's, minus SQLite: ``snapshots/<name>.snap`` (the local store's
file names, :func:`~sparkhist.store.snapshots.snapshot_name`) and ``catalog/`` (immutable
segments and the manifests naming them: :mod:`sparkhist.store.segments`).

:class:`RemoteStore` is the few operations those need, over the source layer: its read
side (list, open, delete) and each source's ``put_atomic`` (local disk: a temporary name,
fsync, rename; HDFS: create a temporary name, write, rename over; object stores: one PUT,
atomic by nature). Every name is relative to the location's URL (``"catalog/MANIFEST-…"``).

Errors: an absent name is :class:`FileNotFoundError`; an unreachable store is the source's
:class:`~sparkhist.errors.SourceUnavailable` (retries and the circuit breaker are the
source's own); anything else a :class:`~sparkhist.errors.SourceError`.
"""

from __future__ import annotations

import posixpath
from typing import Protocol
from urllib.parse import urlparse

from sparkhist.errors import ConfigError, SourceError, SourceNotFound
from sparkhist.source.base import Source
from sparkhist.source.factory import SourceOptions, open_source

__all__ = ["RemoteStore", "is_store_url"]

#: URL schemes a store location may have (a plain path is a local store, not one of these).
SCHEMES = ("file", "hdfs", "s3a", "s3", "gs", "abfs", "abfss", "wasb", "wasbs")


def is_store_url(value: str) -> bool:
    """Whether ``--store`` names a store location by URL (``scheme://…``) rather than a directory."""
    parsed = urlparse(value)
    return parsed.scheme in SCHEMES and value.startswith(parsed.scheme + "://")


class _Writable(Source, Protocol):
    def put_atomic(self, path: str, data: bytes) -> None: ...


class RemoteStore:
    """A store location written by index-on-spark; thread-safe as its source is."""

    def __init__(self, url: str, source: _Writable) -> None:
        self.url = url
        self._source = source
        self._root = source.root_path

    @classmethod
    def open(cls, url: str, options: SourceOptions | None = None) -> RemoteStore:
        """The location at ``url``; ``options``: deadlines, retries, Hadoop configuration (default:
        the ``SPARKHIST_*`` environment). Nothing is asked of the store yet."""
        if not is_store_url(url):
            raise ConfigError(f"not a store URL: {url!r} (expected one of {', '.join(s + '://' for s in SCHEMES)})")
        url = url.rstrip("/")
        source = open_source(url if not url.startswith("file://") else urlparse(url).path or "/", options)
        if not hasattr(source, "put_atomic"):
            source.close()
            raise ConfigError(f"store URL {url!r}: this source cannot be written")
        return cls(url, source)  # type: ignore[arg-type]  # checked just above

    @property
    def source(self) -> Source:
        return self._source

    def _path(self, name: str) -> str:
        parts = name.strip("/").split("/")
        if not name or any(p in ("", ".", "..") for p in parts):
            raise SourceError(f"not a plain name in the store: {name!r}")
        path = self._root
        for part in parts:
            path = self._source.join(path, part)
        return path

    def put_atomic(self, name: str, data: bytes) -> None:
        """Write ``name`` whole or not at all (a reader never sees part of it)."""
        self._source.put_atomic(self._path(name), data)

    def get(self, name: str) -> bytes:
        """The whole of ``name``; :class:`FileNotFoundError` when it is absent."""
        try:
            with self._source.open(self._path(name)) as stream:
                return stream.read()
        except SourceNotFound as exc:
            raise FileNotFoundError(f"{self.url}/{name}: {exc}") from exc

    def list(self, prefix: str) -> list[str]:
        """The files directly under the directory ``prefix``, as names relative to the URL, sorted
        (temporary files, ``.``-named, left out); none when ``prefix`` does not exist."""
        try:
            entries = self._source.list(self._path(prefix))
        except SourceNotFound:
            return []
        base = prefix.strip("/")
        return sorted(posixpath.join(base, e.name) for e in entries if not e.is_dir and not e.name.startswith("."))

    def remove_temp_files(self, prefix: str) -> int:
        """Delete what writers killed mid-write left directly under ``prefix`` (HDFS's
        ``.<name>.<random>.tmp``; a local directory's ``.<name>.<pid>.tmp``); returns how many."""
        try:
            entries = self._source.list(self._path(prefix))
        except SourceNotFound:
            return 0
        temps = [e for e in entries if not e.is_dir and e.name.startswith(".") and e.name.endswith(".tmp")]
        for entry in temps:
            self._source.delete(entry.path)
        return len(temps)

    def delete(self, name: str) -> None:
        """Delete ``name``; one already absent is no error."""
        self._source.delete(self._path(name))

    def close(self) -> None:
        self._source.close()

    def __enter__(self) -> RemoteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
