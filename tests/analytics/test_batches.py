"""Issue 19: indexed attempts' rows are buffered and written several per pending file.

Real logs are indexed by the real indexer into a temporary store with the tables on; the
rows are queried with the real engine before and after their batch is written (by a
flush, by the buffer's own thread after N attempts or T seconds, by the end of a scan's
builds); a real subprocess indexing with rows still buffered is killed with SIGKILL and
the repair makes exactly the lost attempts' rows again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sparkhist.analytics import batch, compaction, pending, repair
from sparkhist.analytics.layout import key_of, pending_dir
from sparkhist.reader.layout import find_event_log
from sparkhist.scan.builds import build_all
from sparkhist.scan.indexer import Indexer
from sparkhist.scan.workers import Built, IndexPool
from sparkhist.source.factory import open_source
from sparkhist.state.app_state import AppState
from sparkhist.store.snapshots import SnapshotStore
from support.analytics import first_row

LOGS = Path("/work/shared/conformance/spark-4.0.1/eventlogs")
NAMES = ("local-1795972896863", "local-1795972911639.snappy", "local-1795972905472.lz4")
ANSWER = ("SELECT (SELECT count(*) FROM applications), (SELECT count(*) FROM stages), "
          "(SELECT sum(executor_run_time) FROM stages), (SELECT count(*) FROM jobs), (SELECT count(*) FROM properties)")


def _store(tmp_path: Path, name: str = "store") -> str:
    store = tmp_path / name
    (store / "analytics").mkdir(parents=True)  # the tables on
    return str(store)


def _index(store: str, names: tuple[str, ...]) -> None:
    source = open_source(str(LOGS))
    indexer = Indexer(source, SnapshotStore(store), AppState)
    for name in names:
        indexer.refresh(find_event_log(source, str(LOGS / name)))


def _answer(store: str) -> tuple[object, ...]:
    return first_row(store, ANSWER)


def _pending_files(store: str) -> list[str]:
    directory = pending_dir(store)
    return sorted(n for n in os.listdir(directory) if n.endswith(pending.SUFFIX)) if os.path.isdir(directory) else []


def _until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, ...]:
    """The answer over the three attempts, each written alone (no batching involved)."""
    store = _store(tmp_path_factory.mktemp("reference"))
    source = open_source(str(LOGS))
    indexer = Indexer(source, SnapshotStore(store), AppState)
    indexer.rows_to = lambda entry: pending.write_batch(store, [entry])
    for name in NAMES:
        indexer.refresh(find_event_log(source, str(LOGS / name)))
    assert len(_pending_files(store)) == len(NAMES)
    answer = _answer(store)
    assert answer[0] == len(NAMES) and answer[1] > 0 and answer[3] > 0
    return answer


def test_rows_are_queryable_once_their_batch_is_written(tmp_path: Path, reference: tuple[object, ...]) -> None:
    store = _store(tmp_path)
    buffer = batch.buffer_for(store)
    buffer.max_age = 3600.0  # written by the flush only
    _index(store, NAMES)
    assert len(buffer) == len(NAMES) and _pending_files(store) == []
    assert _answer(store)[0] == 0  # buffered: not in any file yet
    assert batch.flush(store) == len(NAMES)
    files = _pending_files(store)
    assert len(files) == 1 and pending.attempts_in(files[0]) == len(NAMES)  # one file for the three attempts
    assert _answer(store) == reference
    assert compaction.compact(store).attempts == len(NAMES)
    assert _pending_files(store) == [] and _answer(store) == reference
    assert batch.flush(store) == 0 and _pending_files(store) == []  # nothing buffered: no file


def test_the_buffer_writes_on_its_own_after_n_attempts_or_t_seconds(tmp_path: Path, reference: tuple[object, ...]) -> None:
    store = _store(tmp_path)
    snapshots = SnapshotStore(store)
    source = open_source(str(LOGS))
    indexer = Indexer(source, snapshots, AppState)
    entries: list[pending.Entry] = []
    indexer.rows_to = entries.append
    for name in NAMES:
        indexer.refresh(find_event_log(source, str(LOGS / name)))
    by_count = batch.RowBuffer(store, max_attempts=2, max_age=3600.0)
    by_count.add(entries[0])
    by_count.add(entries[0])  # the same attempt again: still one
    time.sleep(0.3)
    assert _pending_files(store) == [] and len(by_count) == 1
    by_count.add(entries[1])  # the second attempt: written by the buffer's thread, not by the caller
    assert _until(lambda: len(_pending_files(store)) == 1) and len(by_count) == 0
    assert pending.attempts_in(_pending_files(store)[0]) == 2
    by_age = batch.RowBuffer(store, max_age=0.3)
    started = time.monotonic()
    by_age.add(entries[2])
    assert _until(lambda: len(_pending_files(store)) == 2)
    assert time.monotonic() - started >= 0.25 and len(by_age) == 0
    assert _answer(store) == reference
    assert _until(lambda: by_age._thread is None and by_count._thread is None)  # idle buffers keep no thread


def test_a_scans_builds_write_their_rows_at_their_end(tmp_path: Path, reference: tuple[object, ...]) -> None:
    store = _store(tmp_path)
    batch.buffer_for(store).max_age = 3600.0
    source = open_source(str(LOGS))
    indexer = Indexer(source, SnapshotStore(store), AppState)
    built = build_all(indexer, [find_event_log(source, str(LOGS / n)) for n in NAMES])
    for _ in range(len(NAMES)):
        next(built)
    assert _pending_files(store) == []  # every log built, the rows still buffered
    assert list(built) == []  # the end of the builds
    assert len(_pending_files(store)) == 1 and _answer(store) == reference


def test_indexing_workers_write_no_row_file_the_scanning_process_writes_theirs(tmp_path: Path,
                                                                             reference: tuple[object, ...]) -> None:
    store = _store(tmp_path)
    batch.buffer_for(store).max_age = 3600.0
    source = open_source(str(LOGS))
    indexer = Indexer(source, SnapshotStore(store), AppState)
    pool = IndexPool(str(LOGS), store, 2)
    try:
        results = build_all(indexer, [find_event_log(source, str(LOGS / n)) for n in NAMES], pool=pool)
        for _ in range(len(NAMES)):
            _, result = next(results)
            assert isinstance(result, Built) and result.persisted and result.rows is not None
        assert _pending_files(store) == [] and len(batch.buffer_for(store)) == len(NAMES)  # built in the workers
        assert list(results) == []
    finally:
        pool.close()
    assert len(_pending_files(store)) == 1 and _answer(store) == reference


def test_later_batches_win_but_not_with_rows_of_an_older_snapshot(tmp_path: Path) -> None:
    store = _store(tmp_path)
    pending.write_batch(store, [pending.Entry("a", 5, b"{1}"), pending.Entry("b", 5, b"{2}")])
    pending.write_batch(store, [pending.Entry("a", 7, b"{3}"), pending.Entry("b", 4, b"{4}"), pending.tombstone("c")])
    pending.write_batch(store, [pending.Entry("c", 9, b"{5}")])
    scanned = pending.scan(store)
    assert {e.key: (e.stamp, e.payload) for e in scanned.entries} == {"a": (7, b"{3}"), "b": (5, b"{2}"), "c": (9, b"{5}")}
    assert [f.attempts for f in scanned.files] == [2, 3, 1] and scanned.damaged == []
    pending.write_batch(store, [pending.tombstone("a")])
    assert {e.key: e.payload for e in pending.scan(store).entries}["a"] is None


_INDEXER = """
import sys, time
from pathlib import Path
from sparkhist.analytics import batch, compaction
from sparkhist.reader.layout import find_event_log
from sparkhist.scan.indexer import Indexer
from sparkhist.scan.workers import Built, IndexPool
from sparkhist.source.factory import open_source
from sparkhist.state.app_state import AppState
from sparkhist.store.snapshots import SnapshotStore
store, logs, first, *rest = sys.argv[1:]
source = open_source(logs)
indexer = Indexer(source, SnapshotStore(store), AppState)
indexer.refresh(find_event_log(source, str(Path(logs) / first)))
batch.flush(store)
compaction.compact(store)
batch.buffer_for(store).max_age = 3600.0
for name in rest:
    indexer.refresh(find_event_log(source, str(Path(logs) / name)))
print("indexed", len(batch.buffer_for(store)), flush=True)
time.sleep(3600)
"""


def test_a_kill_9_before_the_flush_loses_only_buffered_rows_which_the_repair_makes_again(
        tmp_path: Path, reference: tuple[object, ...]) -> None:
    store = _store(tmp_path)
    child = subprocess.Popen([sys.executable, "-c", _INDEXER, store, str(LOGS), *NAMES], stdout=subprocess.PIPE)
    assert child.stdout is not None
    try:
        assert child.stdout.readline() == b"indexed %d\n" % (len(NAMES) - 1)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    snapshots = SnapshotStore(store)
    assert len(snapshots.file_names()) == len(NAMES)  # every attempt indexed and saved
    assert _pending_files(store) == []  # the last two attempts' rows were only buffered
    assert _answer(store)[0] == 1  # the first attempt, compacted before
    done = repair.repair(store, snapshots)
    assert (done.written, done.dropped, done.damaged, done.failed) == (len(NAMES) - 1, 0, 0, 0)  # exactly the lost ones
    assert _pending_files(store) == []  # and compacted
    assert _answer(store) == reference
    assert repair.repair(store, snapshots).written == 0
    keys = {key_of(n) for n in snapshots.file_names()}
    assert len(keys) == len(NAMES)


def test_a_batch_of_no_attempt_is_removed_by_the_next_compaction(tmp_path: Path) -> None:
    store = _store(tmp_path)
    pending.write_batch(store, [])
    assert len(_pending_files(store)) == 1 and pending.scan(store).entries == []
    assert compaction.compact(store).attempts == 0
    assert _pending_files(store) == [] and not compaction.due(store)


def test_the_writers_shutdown_and_a_normal_exit_write_what_is_buffered(tmp_path: Path, reference: tuple[object, ...]) -> None:
    store = _store(tmp_path)
    batch.buffer_for(store).max_age = 3600.0
    pending.write_batch(store, [pending.tombstone("0" * 16)])
    maintenance = repair.Maintenance(store, SnapshotStore(store)).start()  # the writer's thread, stopped by its close
    try:
        assert _until(lambda: _pending_files(store) == [])  # its first repair has compacted
        _index(store, NAMES[:1])
        assert _pending_files(store) == []
    finally:
        maintenance.stop()
    assert len(_pending_files(store)) == 1
    exiting = subprocess.run([sys.executable, "-c", _INDEXER.replace("time.sleep(3600)", "") + "sys.exit(0)",
                              store, str(LOGS), *NAMES], capture_output=True, timeout=120)
    assert exiting.returncode == 0 and exiting.stdout == b"indexed %d\n" % (len(NAMES) - 1), exiting.stderr
    assert len(_pending_files(store)) == 1  # the child's: at exit (the parent's batch was compacted by the child)
    assert _answer(store) == reference
