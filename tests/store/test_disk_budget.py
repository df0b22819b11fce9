"""DiskBudget's eviction order and watermarks, with the file system's fill level
derived from the snapshots it holds (the real tmpfs runs are in test_disk_full.py)."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

from sparkhist.store.disk import DiskBudget, DiskPolicy, fs_used_ratio
from sparkhist.store.snapshots import SnapshotStore

SNAPSHOT = 1000
CAPACITY = 100 * SNAPSHOT


def _budget(tmp_path: Path, **policy: float) -> tuple[DiskBudget, SnapshotStore]:
    snapshots = SnapshotStore(str(tmp_path / "store"))
    budget = DiskBudget(snapshots, DiskPolicy(**policy))  # type: ignore[arg-type]
    budget.used_ratio = lambda _path: budget.total / CAPACITY
    return budget, snapshots


def _write(budget: DiskBudget, snapshots: SnapshotStore, name: str) -> None:
    path = snapshots.path_for(name)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(b"x" * SNAPSHOT)
    budget.wrote(name, SNAPSHOT)


def test_a_cleanup_goes_below_the_watermark_by_the_hysteresis(tmp_path: Path) -> None:
    budget, snapshots = _budget(tmp_path, cleanup_ratio=0.5, critical_ratio=0.9, hysteresis=0.05)
    for i in range(49):
        _write(budget, snapshots, f"/logs/app-{i}")
    assert budget.evictions["watermark"] == 0, "under the watermark nothing is evicted"
    _write(budget, snapshots, "/logs/app-49")  # 50 %: the cleanup starts
    assert budget.total / CAPACITY < 0.45, "evicted down to the low watermark, not just under the high one"
    assert budget.evictions["watermark"] == 6
    assert not Path(snapshots.path_for("/logs/app-0")).exists(), "least recently used first"
    assert Path(snapshots.path_for("/logs/app-49")).exists(), "never the snapshot just written"
    evicted = budget.evictions["watermark"]
    for i in range(50, 54):  # back up to 48 %: under the high watermark, no new eviction
        _write(budget, snapshots, f"/logs/app-{i}")
    assert budget.evictions["watermark"] == evicted


def test_touch_protects_a_recently_read_snapshot(tmp_path: Path) -> None:
    budget, snapshots = _budget(tmp_path, cleanup_ratio=0.05, critical_ratio=0.9, hysteresis=0.0)
    for i in range(4):
        _write(budget, snapshots, f"/logs/app-{i}")
    budget.touch("/logs/app-0")
    _write(budget, snapshots, "/logs/app-4")  # 5 %: one eviction brings it to 4 %
    assert Path(snapshots.path_for("/logs/app-0")).exists()
    assert not Path(snapshots.path_for("/logs/app-1")).exists()


def test_the_file_system_fill_level_is_the_one_df_shows(tmp_path: Path) -> None:
    """used / (used + available), as ``df`` computes Use%: blocks reserved for another user
    are not counted as used (on a host reserving 65 % of its disk, counting them put a
    half-empty file system over the watermarks and no snapshot was written)."""
    shown = subprocess.run(["df", "--output=pcent", str(tmp_path)], capture_output=True, text=True, check=True)
    percent = int(shown.stdout.splitlines()[-1].strip().rstrip("%"))
    ratio = fs_used_ratio(str(tmp_path))
    assert 0.0 <= ratio <= 1.0
    assert math.ceil(ratio * 100) in (percent - 1, percent, percent + 1)  # df rounds up; the disk moves
