"""Rebuild catalog records from the snapshots when the catalog (or some rows) is lost or damaged.

Each snapshot names its log, the position it reflects and the application state,
which is all a listing needs. Sizes are left unknown, so the next scan re-checks
every log and continues each from its snapshot's position (reading only what is new).
"""

from __future__ import annotations

import logging

from sparkhist.errors import StoreError
from sparkhist.events.listing import AttemptListing
from sparkhist.reader.layout import kind_of
from sparkhist.state.app_state import AppState
from sparkhist.store.records import LogRecord
from sparkhist.store.snapshots import SnapshotStore

log = logging.getLogger("sparkhist.store")


def records_from_snapshots(snapshots: SnapshotStore, known: set[str] | None = None) -> dict[str, LogRecord]:
    """Records for the snapshot files not in ``known`` (file names of the records already loaded)."""
    records: dict[str, LogRecord] = {}
    for name in snapshots.file_names():
        if known is not None and name in known:
            continue
        try:
            snapshot = snapshots.read_file(name)
        except StoreError as exc:
            log.warning("snapshot %s unusable while rebuilding the catalog: %s", name, exc)
            continue
        state = snapshot.state
        if not isinstance(state, AppState) or state.app_id is None or not state.read_as_answered():
            continue  # a state read as another release reads logs is read again from its log
        completed = bool(state.completed)
        listing = AttemptListing(
            app_id=state.app_id,
            app_name=state.app_name,
            attempt_id=state.attempt_id,
            start_time=state.start_time,
            end_time=state.end_time if completed else -1,
            duration=state.end_time - state.start_time if completed else 0,
            spark_user=state.spark_user,
            completed=completed,
            spark_version=state.spark_version,
            got_env=state.has_env,
            exit_code=getattr(state, "exit_code", None),
        )
        records[snapshot.log_path] = LogRecord(
            path=snapshot.log_path,
            kind=kind_of(snapshot.log_path),
            size_of_last=-1,  # unknown: the next scan looks at the log again
            last_index=None,
            in_progress=snapshot.in_progress,
            mtime_ms=snapshot.log_mtime_ms,
            position=snapshot.position,
            resume_file=snapshot.resume_file,
            listing=listing,
            total_size=snapshot.log_size,
            snapshot_size=snapshot.log_size,
            snapshot_in_progress=snapshot.in_progress,
            last_updated=snapshot.log_mtime_ms,
        )
    if records:
        log.warning("rebuilt %d catalog records from snapshots", len(records))
    return records
