"""The store's disk budget: a byte limit for snapshots plus free-space watermarks.

Like the SHS's ``HistoryServerDiskManager`` (``spark.history.store.maxDiskUsage``), but
the unit evicted is one attempt's snapshot, least recently used first, and the catalog
entry always stays: an evicted application is rebuilt from its log on demand. The
file system's own fill level is watched too: above the *cleanup* watermark snapshots
are evicted until it is back under; above the *critical* one no new snapshot is
written at all (states are still served, built in memory), until space returns.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from sparkhist.files import filesystem_usage
from sparkhist.store.snapshots import SnapshotStore

log = logging.getLogger("sparkhist.store")


@dataclass(frozen=True)
class DiskPolicy:
    max_bytes: int = 10 << 30  # spark.history.store.maxDiskUsage default
    cleanup_ratio: float = 0.80
    critical_ratio: float = 0.90
    #: Once a cleanup starts it goes this far below the watermark (a low watermark), so
    #: the catalog writes that follow a scan's snapshots do not cross it again at once.
    hysteresis: float = 0.03


def fs_used_ratio(path: str) -> float:
    """How full the file system is, as ``df`` shows it: used / (used + available to us).

    Blocks reserved for another user (ext4's reserved blocks, a few percent by default,
    far more on some hosts) are neither used nor ours: counting them as used would put a
    half-empty disk over the watermarks and stop every snapshot write.
    """
    return filesystem_usage(path).ratio


class DiskBudget:
    def __init__(self, snapshots: SnapshotStore, policy: DiskPolicy,
                 used_ratio: Callable[[str], float] = fs_used_ratio) -> None:
        self.snapshots = snapshots
        self.policy = policy
        self.used_ratio = used_ratio
        self._lock = threading.Lock()
        self._sizes: OrderedDict[str, int] = OrderedDict()  # log path -> snapshot bytes, LRU first
        self.total = 0
        self.evictions: dict[str, int] = {"budget": 0, "watermark": 0}
        self.critical = False
        self.write_failures = 0
        #: Called with the log path of each evicted snapshot (what is kept beside it goes too).
        self.on_evict: list[Callable[[str], None]] = []

    def load(self, paths: list[str]) -> None:
        """Learn the sizes of the snapshots already on disk (start-up)."""
        with self._lock:
            for path in paths:
                try:
                    size = os.path.getsize(self.snapshots.path_for(path))
                except OSError:
                    continue
                self._sizes[path] = size
                self.total += size

    def touch(self, path: str) -> None:
        with self._lock:
            if path in self._sizes:
                self._sizes.move_to_end(path)

    def may_write(self) -> bool:
        """False while the file system is critically full: skip writing snapshots."""
        if self.policy.critical_ratio >= 1.0:
            return True  # watermark off: only a real ENOSPC stops a write
        ratio = self.used_ratio(self.snapshots.dir)
        critical = ratio >= self.policy.critical_ratio
        if critical != self.critical:
            log.warning("store file system %s the critical watermark (%.0f%% used)",
                        "crossed" if critical else "is back under", ratio * 100)
            self.critical = critical
        if critical:
            self.enforce()
            return self.used_ratio(self.snapshots.dir) < self.policy.critical_ratio
        return True

    def wrote(self, path: str, size: int) -> None:
        with self._lock:
            self.total -= self._sizes.pop(path, 0)
            self._sizes[path] = size
            self.total += size
        self.enforce(keep=path)

    def forget(self, path: str) -> None:
        with self._lock:
            self.total -= self._sizes.pop(path, 0)

    def enforce(self, keep: str | None = None) -> int:
        """Evict least recently used snapshots until under the budget and the cleanup watermark
        (and, once evicting for the watermark, :attr:`DiskPolicy.hysteresis` below it)."""
        evicted = 0
        while True:
            with self._lock:
                over_budget = self.total > self.policy.max_bytes
                candidates = [p for p in self._sizes if p != keep]
            watermark = self.policy.cleanup_ratio - (self.policy.hysteresis if evicted else 0.0)
            over_watermark = (not over_budget and bool(candidates) and self.policy.cleanup_ratio < 1.0
                              and self.used_ratio(self.snapshots.dir) >= watermark)
            if not (over_budget or over_watermark) or not candidates:
                return evicted
            victim = candidates[0]
            self.snapshots.delete(victim)
            for hook in self.on_evict:
                hook(victim)
            with self._lock:
                self.total -= self._sizes.pop(victim, 0)
                self.evictions["budget" if over_budget else "watermark"] += 1
            evicted += 1
            log.info("evicted the snapshot of %s (%s); it is rebuilt on demand", victim,
                     "over the disk budget" if over_budget else "file system over the cleanup watermark")
