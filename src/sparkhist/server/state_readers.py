"""What reads application states from the store: snapshots, disk budget, indexer, states.

Made once per opened store, apart from the rest of the runtime (no scanner, no
records), so the first request for an application's details after a restart does not
wait for the rest; the runtime, once complete, uses the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sparkhist.scan.indexer import Indexer
    from sparkhist.server.opening import OpenedStore
    from sparkhist.state.app_state import AppState
    from sparkhist.store.disk import DiskBudget
    from sparkhist.store.snapshots import SnapshotStore
    from sparkhist.store.states import StoreStates


@dataclass
class StoreReaders:
    """Snapshots, disk budget, indexer and the application states over them."""

    snapshots: SnapshotStore
    budget: DiskBudget
    indexer: Indexer
    states: StoreStates


def _new_state() -> AppState:
    from sparkhist.state.app_state import AppState

    return AppState()


def store_readers(opened: OpenedStore) -> StoreReaders:
    """The readers of ``opened``, made once (by the first request or the start-up, whichever comes first)."""
    readers = opened.readers
    if readers is not None:
        return readers
    with opened.readers_lock:
        if opened.readers is None:
            from sparkhist.scan.indexer import Indexer
            from sparkhist.store.disk import DiskBudget, DiskPolicy
            from sparkhist.store.snapshots import SnapshotStore
            from sparkhist.store.states import StoreStates

            settings = opened.settings
            snapshots = SnapshotStore(settings.store_dir)
            budget = DiskBudget(snapshots, DiskPolicy(settings.store_max_disk, settings.disk_cleanup_ratio,
                                                      settings.disk_critical_ratio))
            indexer = Indexer(opened.source, snapshots, _new_state, budget)
            states = StoreStates(snapshots, budget, indexer.build, is_writer=opened.is_writer,
                                 memory_budget=settings.memory_budget)
            if opened.response_cache is not None:
                states.on_invalidate.append(opened.response_cache.forget)  # a forgotten state, its answers too
            if settings.shared_store is not None:  # a replica: snapshots fetched from the shared store, never built
                from sparkhist.server.shared_store import fetch_into

                fetch_into(opened, states, budget)
            opened.readers = StoreReaders(snapshots, budget, indexer, states)
        return opened.readers
