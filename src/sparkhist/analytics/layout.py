"""Where the analytics tables live in the store, and which of their files may be read.

Layout inside the store::

    analytics/pending/<key>.rows                       rows of one attempt, not yet compacted
    analytics/tables/<table>.<generation>.<xxh64>.parquet   one file per table, every attempt

``<key>`` is the attempt's snapshot name without ``.snap`` (the xxh64 of its log path). A
table file's checksum is in its name: a reader checks the bytes it is about to query and
leaves out a file that fails (:func:`current_tables`); the writer's repair rebuilds what it
held from the snapshots. Of two generations of a table (a crash between a rename and the
removal of the old file) the higher is current.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import xxhash

from sparkhist.files import unlink_quietly
from sparkhist.store.snapshots import snapshot_name

ANALYTICS_DIR = "analytics"
PENDING_DIR = "pending"
TABLES_DIR = "tables"
PARQUET = ".parquet"
TEMP_SUFFIX = ".tmp"

#: The hidden columns every table file starts with: the attempt's key, and (in ``applications``
#: only) the modification time of the snapshot its rows were made from, in ns.
KEY_COLUMN = "_key"
STAMP_COLUMN = "_snap"


def analytics_dir(store_dir: str) -> str:
    return os.path.join(store_dir, ANALYTICS_DIR)


def pending_dir(store_dir: str) -> str:
    return os.path.join(store_dir, ANALYTICS_DIR, PENDING_DIR)


def tables_dir(store_dir: str) -> str:
    return os.path.join(store_dir, ANALYTICS_DIR, TABLES_DIR)


def key_of(snapshot_file: str) -> str:
    return os.path.basename(snapshot_file).removesuffix(".snap")


def key_of_log(log_path: str) -> str:
    return key_of(snapshot_name(log_path))


@dataclass(frozen=True, slots=True)
class TableFile:
    table: str
    generation: int
    checksum: str
    path: str
    size: int
    mtime_ns: int


def table_file_name(table: str, generation: int, checksum: str) -> str:
    return f"{table}.{generation:012d}.{checksum}{PARQUET}"


def table_files(store_dir: str) -> list[TableFile]:
    """Every well-named table file, unchecked."""
    root = tables_dir(store_dir)
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    out: list[TableFile] = []
    for name in names:
        parts = name.split(".")
        if len(parts) != 4 or "." + parts[3] != PARQUET or not parts[1].isdigit():
            continue
        path = os.path.join(root, name)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            continue
        out.append(TableFile(parts[0], int(parts[1]), parts[2], path, st.st_size, st.st_mtime_ns))
    return out


class Checked:
    """Checksums already verified in this process, by (path, size, mtime): a file is read
    and hashed once, not per query."""

    def __init__(self) -> None:
        self._ok: set[tuple[str, int, int]] = set()
        self._lock = threading.Lock()

    def verify(self, file: TableFile) -> bool:
        stamp = (file.path, file.size, file.mtime_ns)
        with self._lock:
            if stamp in self._ok:
                return True
        try:
            with open(file.path, "rb") as f:
                good = xxhash.xxh64_hexdigest(f.read()) == file.checksum
        except OSError:
            return False
        if good:
            with self._lock:
                self._ok.add(stamp)
        return good


_checked = Checked()


def current_tables(store_dir: str, checked: Checked | None = None) -> tuple[dict[str, TableFile], list[TableFile]]:
    """(table name -> its current, verified file; the files that failed their checksum).

    A table whose newest file is damaged has no current file (its rows are not served from
    an older generation, which may lack attempts that the newer one had).
    """
    checker = checked if checked is not None else _checked
    newest: dict[str, TableFile] = {}
    for file in table_files(store_dir):
        held = newest.get(file.table)
        if held is None or file.generation > held.generation:
            newest[file.table] = file
    damaged = [f for f in newest.values() if not checker.verify(f)]
    bad = {f.table for f in damaged}
    return {t: f for t, f in newest.items() if t not in bad}, damaged


def remove_temporary(directory: str) -> None:
    """Delete the temporary files a crash left in ``directory`` (absent: nothing to do)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    for name in names:
        if name.endswith(TEMP_SUFFIX):
            unlink_quietly(os.path.join(directory, name))
