"""Make the tables match the snapshots, and keep them compacted: the writer's maintenance.

:func:`repair` (at start, then now and then) finds every attempt whose rows are missing
(lost with a crash before their batch was written), damaged or older than its snapshot
and writes its pending rows again from the snapshot;
an attempt whose snapshot is gone gets a tombstone; table files that fail their
checksum, have other columns than this version's (an upgrade) or miss while others are
there are dropped, and what they held is rebuilt. Then it compacts.

:class:`Maintenance` is the writer's thread: a repair, then a compaction whenever one is
:func:`~sparkhist.analytics.compaction.due`, and a repair every :data:`REPAIR_EVERY_S`.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

from sparkhist.analytics import batch, compaction, pending
from sparkhist.analytics.layout import (
    KEY_COLUMN,
    STAMP_COLUMN,
    current_tables,
    key_of,
    pending_dir,
    remove_temporary,
    table_files,
    tables_dir,
)
from sparkhist.analytics.tables import APPLICATIONS, TABLES
from sparkhist.errors import StoreError
from sparkhist.files import unlink_quietly
from sparkhist.store.snapshots import SnapshotStore

log = logging.getLogger("sparkhist.analytics")

REPAIR_EVERY_S = 600.0
CHECK_EVERY_S = 2.0


@dataclass(slots=True)
class Repaired:
    written: int = 0  # attempts whose rows were made again from their snapshot
    dropped: int = 0  # attempts whose snapshot is gone (tombstones)
    damaged: int = 0  # table or pending files that failed their checksum or schema
    failed: int = 0  # snapshots that could not be read


def _stamps_in_tables(store_dir: str, done: Repaired) -> dict[str, int]:
    """key -> snapshot stamp of the attempts the current tables hold; drops unusable table files."""
    import duckdb

    current, damaged = current_tables(store_dir)
    done.damaged += len(damaged)
    usable = not damaged
    files = list(current.values())
    if len(current) not in (0, len(TABLES)):
        usable = False  # a table is missing while others are there: its rows are gone
    stamps: dict[str, int] = {}
    if usable and files:
        with compaction.engine() as con:
            try:
                for file in files:
                    table = next(t for t in TABLES if t.name == file.table)
                    names = [row[0] for row in con.execute(
                        f"DESCRIBE SELECT * FROM read_parquet({compaction.quote(file.path)})").fetchall()]
                    if names != [name for name, _ in compaction.stored_columns(table)]:
                        log.warning("analytics table %s has other columns than this version's; rebuilt", file.path)
                        usable = False
                if usable:
                    app = current[APPLICATIONS.name]
                    for key, stamp in con.execute(f"SELECT {KEY_COLUMN}, {STAMP_COLUMN} FROM "
                                                  f"read_parquet({compaction.quote(app.path)})").fetchall():
                        stamps[key] = stamp
            except duckdb.Error as exc:  # an unreadable file
                log.warning("analytics tables unreadable (%s); rebuilt from the snapshots", exc)
                usable = False
    if not usable:
        for file in table_files(store_dir):
            unlink_quietly(file.path)
        return {}
    return stamps


def repair(store_dir: str, snapshots: SnapshotStore) -> Repaired:
    """Rows for every snapshot, none for attempts without one; then a compaction.

    An attempt is rewritten when neither a pending file nor the tables hold rows of its
    snapshot as it is now: rows lost with a crash before their batch was written, torn or
    damaged files, snapshots saved again since. This process's buffered rows are written first.
    """
    done = Repaired()
    batch.flush(store_dir)
    remove_temporary(pending_dir(store_dir))
    remove_temporary(tables_dir(store_dir))
    stamps = _stamps_in_tables(store_dir, done)
    scanned = pending.scan(store_dir)
    for path in scanned.damaged:
        done.damaged += 1
        unlink_quietly(path)
    for item in scanned.entries:  # pending rows are newer than the tables'
        if item.payload is None:
            stamps.pop(item.key, None)
        else:
            stamps[item.key] = item.stamp
    names = snapshots.file_names()
    keys = {key_of(n) for n in names}
    entries = [pending.tombstone(key) for key in sorted(set(stamps) - keys)]
    done.dropped = _write(store_dir, entries)
    entries = []
    for name in sorted(names):
        key = key_of(name)
        try:
            stamp = os.stat(os.path.join(snapshots.dir, name)).st_mtime_ns
        except FileNotFoundError:
            continue
        held = stamps.get(key)
        if held is not None and held >= stamp:
            continue
        try:
            entries.append(pending.entry_of(snapshots.read_file(name), stamp))
        except StoreError as exc:
            done.failed += 1
            log.warning("analytics rows of snapshot %s not rebuilt: %s", name, exc)
            continue
        if len(entries) >= batch.MAX_ATTEMPTS:
            done.written += _write(store_dir, entries)
            entries = []
    done.written += _write(store_dir, entries)
    if done.written or done.dropped or done.damaged:
        log.info("analytics tables repaired: %d attempts rewritten, %d dropped, %d damaged files",
                 done.written, done.dropped, done.damaged)
    compaction.compact(store_dir)
    return done


def _write(store_dir: str, entries: list[pending.Entry]) -> int:
    """``entries`` as one pending file; how many were written (0 when it failed)."""
    if not entries:
        return 0
    try:
        pending.write_batch(store_dir, entries)
    except StoreError as exc:
        log.warning("%s", exc)
        return 0
    return len(entries)


class Maintenance:
    """The writer's analytics thread: repair, then compact when due; stopped by :meth:`stop`."""

    def __init__(self, store_dir: str, snapshots: SnapshotStore) -> None:
        self.store_dir = store_dir
        self.snapshots = snapshots
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sparkhist-analytics", daemon=True)

    def start(self) -> Maintenance:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread; the rows this process has buffered are written (the writer's shutdown)."""
        self._stop.set()
        self._thread.join(timeout)
        batch.flush(self.store_dir)

    def _run(self) -> None:
        since_repair = REPAIR_EVERY_S  # repair first
        while not self._stop.is_set():
            try:
                if since_repair >= REPAIR_EVERY_S:
                    repair(self.store_dir, self.snapshots)
                    since_repair = 0.0
                elif compaction.due(self.store_dir):
                    compaction.compact(self.store_dir)
            except StoreError as exc:
                log.warning("%s; tried again later", exc)
            except Exception:  # never let the thread die: the tables would stop following
                log.exception("analytics maintenance failed; tried again later")
            self._stop.wait(CHECK_EVERY_S)
            since_repair += CHECK_EVERY_S
