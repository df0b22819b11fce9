"""The pre-rendered application list: the exact bytes of ``/api/v1/applications`` on disk.

A restart answers the unfiltered list from this one file at once, before the index
is loaded from the catalog. The file names the listing it renders by the catalog's
id and listing counter (:attr:`Catalog.catalog_id`, :attr:`Catalog.listing_counter`:
every change to the listing rows bumps the counter, a replaced catalog has a new id);
it is served only while both equal the catalog's, and only when its checksum holds.
A damaged or stale file is ignored (and logged), never served; the server writes a
new one once its index matches the catalog again.

Layout: ``MAGIC`` | header (body length, listing counter, xxh64) | catalog id (32
ASCII hex digits) | body. The xxh64 covers the counter, the id and the body. Written
atomically (temp file, fsync, rename, directory fsync), never on a request's path.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import xxhash

from sparkhist.files import write_file_atomically

if TYPE_CHECKING:
    from sparkhist.store.applications import AppEntry, ApplicationIndex
    from sparkhist.store.catalog import Catalog

log = logging.getLogger("sparkhist.store")

LIST_FILE = "application-list.bin"
TEMP_SUFFIX = ".tmp"
MAGIC = b"SHLIST1\n"
_HEADER = struct.Struct("<QQQ")  # body length, listing counter, xxh64
_ID_LEN = 32
_PREFIX = len(MAGIC) + _HEADER.size + _ID_LEN


class ListFileDamaged(ValueError):
    """The file is not a whole, intact list file."""


@dataclass(frozen=True, slots=True)
class StoredList:
    catalog_id: str
    counter: int
    body: bytes

    def matches(self, catalog: Catalog) -> bool:
        return self.catalog_id == catalog.catalog_id and self.counter == catalog.listing_counter


def path_in(store_dir: str) -> str:
    return os.path.join(store_dir, LIST_FILE)


def _digest(catalog_id: bytes, counter: int, body: bytes) -> int:
    h = xxhash.xxh64(struct.pack("<Q", counter))
    h.update(catalog_id)
    h.update(body)
    return h.intdigest()


def decode(blob: bytes) -> StoredList:
    """The list a file holds; :class:`ListFileDamaged` when anything does not check."""
    return _decode(blob[:_PREFIX], blob[_PREFIX:])


def _decode(prefix: bytes, body: bytes) -> StoredList:
    if len(prefix) < _PREFIX or not prefix.startswith(MAGIC):
        raise ListFileDamaged("bad header")
    length, counter, digest = _HEADER.unpack_from(prefix, len(MAGIC))
    catalog_id = prefix[len(MAGIC) + _HEADER.size:_PREFIX]
    if len(body) != length:
        raise ListFileDamaged(f"body of {len(body)} bytes, header says {length}")
    if _digest(catalog_id, counter, body) != digest:
        raise ListFileDamaged("checksum mismatch")
    try:
        text_id = catalog_id.decode("ascii")
    except UnicodeDecodeError as exc:  # pragma: no cover - the checksum caught it already
        raise ListFileDamaged("bad catalog id") from exc
    return StoredList(text_id, counter, body)


def read(store_dir: str) -> StoredList | None:
    """The stored list, or None when there is none or it is damaged (logged)."""
    path = path_in(store_dir)
    try:
        # The body read in one piece, straight into the bytes served (tens of MB: no copy).
        with open(path, "rb", buffering=0) as f:
            prefix = f.read(_PREFIX)
            length = _HEADER.unpack_from(prefix, len(MAGIC))[0] if len(prefix) == _PREFIX else 0
            size = os.fstat(f.fileno()).st_size - len(prefix)
            body = f.read(size) if length == size else b""
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("application list file %s unreadable (%s); ignored", path, exc)
        return None
    try:
        if length != size:
            raise ListFileDamaged(f"body of {size} bytes, header says {length}")
        return _decode(prefix, body)
    except ListFileDamaged as exc:
        log.warning("application list file %s is damaged (%s); ignored, written again once the index is loaded",
                    path, exc, extra={"event": "list_file_damaged"})
        return None


def write(store_dir: str, catalog_id: str, counter: int, body: bytes) -> None:
    """Replace the file atomically (raises ``OSError``, e.g. on a full disk, leaving the old one)."""
    ident = catalog_id.encode("ascii")
    if len(ident) != _ID_LEN:
        raise ValueError(f"catalog id of {len(ident)} characters")
    path = path_in(store_dir)
    temp = path + TEMP_SUFFIX
    header = MAGIC + _HEADER.pack(len(body), counter, _digest(ident, counter, body)) + ident
    write_file_atomically(path, [header, body], temp)


class ListPublisher:
    """Writes the list file when the listing changed, from the index, once it matches the catalog.

    The file must render exactly the catalog's listing rows at the counter it records:
    it is written only when every entry of the index is the catalog's row (same paths,
    same checksums), read under the catalog's lock together with its counter.
    """

    def __init__(self, store_dir: str, catalog: Catalog, index: ApplicationIndex,
                 render: Callable[[list[AppEntry]], bytes], written: StoredList | None = None) -> None:
        self.store_dir = store_dir
        self.catalog = catalog
        self.index = index
        self.render = render
        self.written = None if written is None else (written.catalog_id, written.counter)
        self.writes = 0
        self._lock = threading.Lock()  # the periodic write and the one at stop share the temp file

    def stale(self) -> bool:
        return self.written != (self.catalog.catalog_id, self.catalog.listing_counter)

    def publish(self) -> bool:
        """Write the file if it is stale and the index is the catalog's listing; True when written."""
        with self._lock:
            return self._publish()

    def _publish(self) -> bool:
        from sparkhist.store.catalog import _listing_checksum

        if self.catalog.read_only or not self.stale():
            return False
        catalog_id, counter, listed = self.catalog.listing_state()
        if catalog_id is None:
            return False
        entries, apps = self.index.snapshot()
        if len(entries) != len(listed):
            return False
        for path, entry in entries.items():
            if listed.get(path) != _listing_checksum(entry._head, entry.entry):
                return False
        body = self.render(apps)
        try:
            write(self.store_dir, catalog_id, counter, body)
        except OSError as exc:
            log.warning("could not write the application list file: %s", exc)
            return False
        self.written = (catalog_id, counter)
        self.writes += 1
        log.info("application list file written: %d applications, %d bytes, listing %d", len(apps), len(body),
                 counter)
        return True
