"""``sparkhist verify``: check every checksum of a store, report per application.

The pre-rendered application list file is checked too: its checksum, and whether it
names the catalog's current listing (a stale one is not damage: it is never served,
and the server writes it again).

Every section of every snapshot is checked (the section table's checksum, then each
section's checksum, decoding and kind: summary, indices, task groups and chunks, stage
indexes), not only the summary a request would read.
Read-only: it never repairs (the server does that, by re-reading the logs), so it is
safe to run beside a live server.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from sparkhist.errors import StoreCorrupt
from sparkhist.store import list_file
from sparkhist.store.catalog import Catalog
from sparkhist.store.snapshots import TEMP_SUFFIX, SnapshotStore, decode_layout, snapshot_name


@dataclass
class VerifyReport:
    records: int = 0
    damaged_records: int = 0
    snapshots_ok: int = 0
    sections_ok: int = 0  # sections of the sound snapshots (summary, indices, task groups, stage indexes)
    snapshots_missing: int = 0  # not built yet: rebuilt on demand, not damage
    damaged_snapshots: dict[str, str] = field(default_factory=dict)  # app id -> reason
    orphans: list[str] = field(default_factory=list)
    temp_files: list[str] = field(default_factory=list)
    #: The application list file: "absent", "current", "stale" or "damaged: <why>".
    list_file: str = "absent"

    @property
    def ok(self) -> bool:
        return self.damaged_records == 0 and not self.damaged_snapshots and not self.list_file.startswith("damaged")


def _check_list_file(store_dir: str, catalog: Catalog) -> str:
    try:
        with open(list_file.path_in(store_dir), "rb") as f:
            blob = f.read()
    except FileNotFoundError:
        return "absent"
    except OSError as exc:
        return f"damaged: {exc}"
    try:
        stored = list_file.decode(blob)
    except list_file.ListFileDamaged as exc:
        return f"damaged: {exc}"
    return "current" if stored.matches(catalog) else "stale"


def verify_store(store_dir: str) -> VerifyReport:
    report = VerifyReport()
    catalog = Catalog(store_dir, None, read_only=True)
    try:
        loaded = catalog.load(repair=False)
        report.list_file = _check_list_file(store_dir, catalog)
    finally:
        catalog.close()
    report.records = len(loaded.records) + loaded.corrupt
    report.damaged_records = loaded.corrupt
    snapshots = SnapshotStore(store_dir, create=False)
    expected = set()
    for path, record in loaded.records.items():
        name = snapshot_name(path)
        expected.add(name)
        file = os.path.join(snapshots.dir, name)
        label = f"{record.app_id or '?'}{'/' + record.listing.attempt_id if record.listing.attempt_id else ''} ({path})"
        try:
            with open(file, "rb") as f:
                blob = f.read()
        except FileNotFoundError:
            report.snapshots_missing += 1
            continue
        try:
            snapshot, layout = decode_layout(blob, file)
            if snapshot.log_path != path:
                raise StoreCorrupt(f"{file}: belongs to {snapshot.log_path}")
        except StoreCorrupt as exc:
            report.damaged_snapshots[label] = str(exc)
            continue
        report.snapshots_ok += 1
        report.sections_ok += len(layout.sections)
    if os.path.exists(list_file.path_in(store_dir) + list_file.TEMP_SUFFIX):
        report.temp_files.append(list_file.LIST_FILE + list_file.TEMP_SUFFIX)
    for name in os.listdir(snapshots.dir) if os.path.isdir(snapshots.dir) else []:
        if name.endswith(TEMP_SUFFIX):
            report.temp_files.append(name)
        elif name not in expected:
            report.orphans.append(name)
    return report
