"""The indexer's builds: two at once of one log share one replay; an unsaved build's size.

:meth:`~sparkhist.scan.indexer.Indexer.refresh` holds a lock per log. A thread that
finds it taken waits, and is given the snapshot the other thread built (the same object,
no second read of the log nor of the snapshot file just written) when it covers the log
as the waiter sees it and is saved if the waiter wants it saved; otherwise the waiter
refreshes as before.

A state built and not saved (a serving process's on-demand build) carries an estimate of
its pickled size (:func:`~sparkhist.scan.indexer.pickled_size`), what the cache's memory
estimate reads, instead of having the whole state pickled to measure it.
"""

from __future__ import annotations

import pickle
import threading
import time
from pathlib import Path

from sparkhist.reader.layout import EventLog
from sparkhist.scan.indexer import Indexer, pickled_size
from sparkhist.state.app_state import AppState
from sparkhist.store.snapshots import Snapshot, SnapshotStore
from support.fuzz import SAMPLES, load, seed, seed_names

LOG = SAMPLES / "local-1795972915174.zstd"


def _concurrent(indexer: Indexer, path: Path, persists: list[bool]) -> list[Snapshot]:
    """``refresh`` of ``path`` by one thread per entry of ``persists``, all started while the
    log's lock is held, so every one of them waits; the lock is released once all do."""
    source, event_log = load(path)
    indexer.source = source
    lock = indexer._lock_for(event_log.path)
    results: list[Snapshot | None] = [None] * len(persists)

    def run(i: int) -> None:
        results[i] = indexer.refresh(event_log, persist=persists[i])

    with lock:
        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(persists))]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while indexer._waiting.get(event_log.path, 0) < len(persists) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert indexer._waiting.get(event_log.path) == len(persists)
    for t in threads:
        t.join(60)
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


def test_waiters_share_one_build(tmp_path: Path) -> None:
    """A saving build under way, a waiter that saves and one that does not: both are handed it.
    (The build is held until both wait: which waiter a released lock wakes first is not ordered.)"""
    source, event_log = load(LOG)
    indexer = Indexer(source, SnapshotStore(str(tmp_path / "snapshots")), AppState)
    building, go = threading.Event(), threading.Event()
    build = indexer._refresh

    def held(log: EventLog, persist: bool) -> Snapshot:
        building.set()
        go.wait(30)
        return build(log, persist)

    indexer._refresh = held  # type: ignore[method-assign]
    results: list[Snapshot | None] = [None] * 3

    def run(i: int, persist: bool) -> None:
        results[i] = indexer.refresh(event_log, persist=persist)

    threads = [threading.Thread(target=run, args=(0, True))]
    threads[0].start()
    assert building.wait(30)
    threads += [threading.Thread(target=run, args=(1, True)), threading.Thread(target=run, args=(2, False))]
    for t in threads[1:]:
        t.start()
    deadline = time.monotonic() + 30
    while indexer._waiting.get(event_log.path, 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert indexer._waiting.get(event_log.path) == 2
    go.set()
    for t in threads:
        t.join(60)
    first, second, third = results
    assert first is not None and first is second is third
    assert indexer.builds == 1
    assert first.persisted
    # nothing is kept for later callers: the next refresh reads the saved snapshot
    assert not indexer._handoff and not indexer._waiting
    again = indexer.refresh(load(LOG)[1])
    assert again is not first and again.log_size == first.log_size and indexer.builds == 1
    # the handed state is the one a fresh build gives
    fresh = Indexer(source, SnapshotStore(str(tmp_path / "other")), AppState).refresh(load(LOG)[1], persist=False)
    assert fresh.state == first.state


def test_an_unsaved_build_is_not_handed_to_a_waiter_that_saves(tmp_path: Path) -> None:
    source, _ = load(LOG)
    indexer = Indexer(source, SnapshotStore(str(tmp_path / "snapshots")), AppState)
    results = _concurrent(indexer, LOG, [False, True])
    unsaved = [r for r in results if not r.persisted]
    saved = [r for r in results if r.persisted]
    # whichever ran first: a build kept in memory is built again to be saved, a saved one is shared
    assert saved and (len(unsaved) == 1 and indexer.builds == 2 or results[0] is results[1] and indexer.builds == 1)
    assert indexer.snapshots.read(saved[0].log_path) is not None


def test_an_unsaved_build_carries_its_pickled_size(tmp_path: Path) -> None:
    """Within 10 % of the state's real pickle, for every seed log (small and large, SQL, failures)."""
    ratios = {}
    for name in seed_names():
        source, event_log = load(seed(name).path)
        snapshot = Indexer(source, SnapshotStore(str(tmp_path / "s")), AppState).refresh(event_log, persist=False)
        real = len(pickle.dumps(snapshot.state, protocol=pickle.HIGHEST_PROTOCOL))
        assert snapshot.pickled_bytes == pickled_size(snapshot.state) > 0
        ratios[name] = snapshot.pickled_bytes / real
    assert ratios and all(0.9 <= r <= 1.1 for r in ratios.values()), ratios
    # a saved one's is the file's measure, as a read of the file sets it
    source, event_log = load(LOG)
    saved = Indexer(source, SnapshotStore(str(tmp_path / "saved")), AppState).refresh(event_log)
    assert saved.persisted and saved.pickled_bytes == SnapshotStore(str(tmp_path / "saved")).read(saved.log_path).pickled_bytes
