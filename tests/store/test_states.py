"""StoreStates over its seams: a snapshot store, a disk budget and a build function."""

from __future__ import annotations

from pathlib import Path

from sparkhist.scan.indexer import Indexer
from sparkhist.store.snapshots import Snapshot
from sparkhist.store.states import SectionTasks, StoreStates
from support.conformance import SPARK401
from support.server import copy_logs, runtime_for

APP = "local-1795972896863"


def test_summary_from_the_snapshot_else_built_by_the_build_function(tmp_path: Path) -> None:
    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    with runtime_for(logs, tmp_path / "store") as (runtime, _client):
        app = runtime.index.get(APP)
        assert app is not None
        attempt = app.attempts[0]
        indexer = runtime.scanner.indexer
        assert isinstance(indexer, Indexer)
        builds: list[tuple[str, bool]] = []

        def build(log_path: str, *, persist: bool) -> Snapshot:
            builds.append((log_path, persist))
            return indexer.build(log_path, persist=persist)

        writer = [False]
        states = StoreStates(runtime.snapshots, None, build, is_writer=lambda: writer[0])

        loaded = states.get(app, attempt)  # the scan wrote its snapshot: the summary is read
        assert (states.loads, states.builds, builds) == (1, 0, [])
        assert isinstance(loaded.tasks, SectionTasks) and loaded.state.tasks == {}
        assert states.get(app, attempt).state is loaded.state and states.hits == 1
        assert states.cached_bytes > 0

        runtime.snapshots.delete(attempt.log_path)
        states.invalidate(attempt.log_path)
        built = states.get(app, attempt)  # no snapshot: built from the log, kept in memory only (standby)
        assert builds == [(attempt.log_path, False)] and states.builds == 1
        assert built.tasks is None and built.state.tasks
        assert runtime.snapshots.read_summary(attempt.log_path) is None

        writer[0] = True
        states.invalidate(attempt.log_path)
        states.get(app, attempt)  # a writer saves what it builds
        assert builds[-1] == (attempt.log_path, True)
        assert runtime.snapshots.read_summary(attempt.log_path) is not None
