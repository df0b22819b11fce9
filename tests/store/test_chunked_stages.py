"""Chunked stage attempts: a task request costs memory for what it returns (issue 3, item 5).

* A stage attempt bigger than ``GROUP_TASKS`` is cut into chunks in task id order, with a
  small stage index (statuses, order by run time): a ``taskList`` page of any order or
  status filter loads only the chunks holding it.
* ``taskSummary`` and ``withSummaries`` stream over the chunks without caching them and
  give exactly ``AppStatusStore.taskSummary``'s numbers.
* Every answer is byte for byte the one computed from the whole in-memory state.
* A damaged stage index is caught by ``verify`` and, when read, quarantined and rebuilt.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.datastructures import QueryParams

from sparkhist.api.v1 import app_resources
from sparkhist.api.v1.app_resources import handle
from sparkhist.config import load_settings
from sparkhist.devtools.big import write_big_log
from sparkhist.devtools.scale import load_template
from sparkhist.server import build_runtime
from sparkhist.state import sections, summaries
from sparkhist.store.snapshots import SnapshotStore, decode, encode
from sparkhist.store.verify import verify_store
from support.conformance import SPARK401
from support.server import copy_logs, runtime_for

BIG = "local-4000000000078"
TASK_QUERIES = ["/taskList", "/taskList?length=100000", "/taskList?offset=2&length=5", "/taskList?sortBy=runtime&length=7",
                "/taskList?sortBy=-RUNTIME&offset=1&length=4", "/taskList?status=failed",
                "/taskList?status=SUCCESS&sortBy=-runtime&length=3",
                "/taskList?status=killed&status=running&length=50", "/taskList?sortBy=decreasing_runtime&status=success&offset=3",
                "/taskList?offset=100000", "/taskList?length=0", "/taskSummary", "/taskSummary?quantiles=0.1,0.9",
                "", "?details=true&taskStatus=FAILED", "?withSummaries=true&quantiles=0.01,0.5,0.99", "/taskTable"]


def _index(logs: Path, store: Path, group_tasks: int) -> None:
    """Index ``logs`` in this process (where ``GROUP_TASKS`` is patched)."""
    runtime = build_runtime(load_settings({"log_dir": str(logs), "store_dir": str(store), "index_workers": 1},
                                          environ={}))
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(sections, "GROUP_TASKS", group_tasks)
            assert runtime.loop.lock.try_acquire()
            runtime.scanner.scan_once()
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def tiny_chunks(tmp_path_factory):
    """The conformance logs, indexed with chunks of 1 task: every stage of several tasks is chunked."""
    base = tmp_path_factory.mktemp("tiny")
    logs = copy_logs(SPARK401 / "eventlogs", base / "logs")
    _index(logs, base / "store", 1)
    return logs, base / "store"


@pytest.fixture(scope="module")
def big_store(tmp_path_factory):
    """A 5,000-task stage in chunks of 500."""
    base = tmp_path_factory.mktemp("big")
    (base / "logs").mkdir()
    write_big_log(load_template(SPARK401 / "eventlogs" / "local-1795972896863"), base / "logs", BIG, 5_000)
    _index(base / "logs", base / "store", 500)
    return base / "logs", base / "store"


def _whole_state_answers(logs: Path, store: Path, app: str, paths: list[str]) -> list[tuple[int, bytes]]:
    """The answers computed from the whole in-memory state (no section involved)."""
    with runtime_for(logs, store, scan=False) as (runtime, client):
        real_read = runtime.snapshots.read_summary
        runtime.snapshots.read_summary = (  # type: ignore[method-assign]
            lambda path: None if real_read(path) is None else (runtime.snapshots.read(path), None))
        return [(r.status_code, r.content) for r in (client.get(f"/api/v1/applications/{app}/{p}") for p in paths)]


def test_every_answer_equals_the_whole_state_one(tiny_chunks) -> None:
    logs, store = tiny_chunks
    with runtime_for(logs, store, scan=False) as (runtime, client):
        plans = {}
        for app in runtime.index.sorted_apps():
            _, layout = runtime.snapshots.read_summary(runtime.index.get(app.id).attempts[0].log_path)
            stages = client.get(f"/api/v1/applications/{app.id}/stages").json()
            paths = ["stages?details=true", "stages?withSummaries=true", "stages?details=true&taskStatus=SUCCESS"]
            paths += [f"stages/{st['stageId']}/{st['attemptId']}{q}" for st in stages for q in TASK_QUERIES]
            plans[app.id] = (paths, [(r.status_code, r.content) for r in
                                     (client.get(f"/api/v1/applications/{app.id}/{p}") for p in paths)])
            assert layout.stage_chunks or not any(st["numTasks"] > 1 for st in stages)
        assert runtime.states.section_loads > 0
    assert sum(len(paths) for paths, _ in plans.values()) > 500
    for app_id, (paths, answers) in plans.items():
        expected = _whole_state_answers(logs, store, app_id, paths)
        for path, got, want in zip(paths, answers, expected, strict=True):
            assert got == want, (app_id, path)


def test_streamed_quantiles_equal_the_task_summary(tiny_chunks) -> None:
    """Chunk by chunk, numbers only: the same distributions as over the whole task list."""
    logs, store = tiny_chunks
    snapshots = SnapshotStore(str(store))
    compared = 0
    for name in sorted(p.name for p in logs.iterdir()):
        state = snapshots.read(str(logs / name)).state
        for st in state.stages.values():
            tasks = [state.tasks[t] for t in st.task_ids if t in state.tasks]
            for qs in ([0.05, 0.25, 0.5, 0.75, 0.95], [1.0, 0.0, 0.5], [0.999]):
                want = summaries.task_summary(tasks, qs, state.last_update_time)
                chunks = [tasks[i:i + 2] for i in range(0, len(tasks), 2)]
                got = app_resources.task_summary(iter(chunks), qs, state.last_update_time)
                assert json.dumps(got) == json.dumps(want)
                compared += want is not None
    assert compared > 20


def test_a_page_loads_only_the_chunks_it_shows(big_store) -> None:
    logs, store = big_store
    full = SnapshotStore(str(store)).read(str(logs / BIG)).state
    with runtime_for(logs, store, scan=False) as (runtime, client):
        states = runtime.states
        (stage,) = client.get(f"/api/v1/applications/{BIG}/stages").json()
        _, layout = runtime.snapshots.read_summary(str(logs / BIG))
        assert layout.task_sections() == 10 and states.section_loads == 0
        rest = ["stages", str(stage["stageId"]), str(stage["attemptId"])]
        base = f"/api/v1/applications/{BIG}/{'/'.join(rest)}"
        # (query, sections it must load: chunks of 500 in task id order, and the stage index)
        for query, loads in [("offset=0&length=20", 1), ("offset=20&length=20", 0), ("offset=490&length=20", 1),
                             ("offset=4990&length=20", 1), ("sortBy=-runtime&length=20", 1),
                             ("sortBy=runtime&offset=2400&length=20", 1), ("status=success&offset=1000&length=20", 1),
                             ("status=failed", 0)]:
            before = states.section_loads
            answer = client.get(f"{base}/taskList?{query}")
            assert answer.status_code == 200
            assert states.section_loads - before == loads, query
            assert answer.json() == handle(full, [*rest, "taskList"], QueryParams(query), app_id=BIG)
        cached = states.cached_bytes
        assert cached < 6 * 500 * 1_450 + 1_000_000  # five chunks and the index, not 5,000 tasks
        before = states.section_loads
        summary = client.get(f"{base}/taskSummary").json()
        assert states.section_loads - before == 5  # the five chunks not cached, read once each
        assert states.cached_bytes == cached  # ... and released, not cached
        tasks = [full.tasks[t] for t in full.stages[(stage["stageId"], stage["attemptId"])].task_ids]
        assert summary == json.loads(json.dumps(summaries.task_summary(tasks, [0.05, 0.25, 0.5, 0.75, 0.95],
                                                                          full.last_update_time)))


def test_round_trip_keeps_a_stage_own_task_order(tiny_chunks, monkeypatch) -> None:
    """Chunks are in task id order; a stage listing its tasks otherwise gets its order back."""
    logs, store = tiny_chunks
    snapshots = SnapshotStore(str(store))
    snapshot = max((snapshots.read(str(p)) for p in logs.iterdir()),
                   key=lambda s: max((len(st.task_ids) for st in s.state.stages.values()), default=0))
    state = snapshot.state
    key = max(state.stages, key=lambda k: len(state.stages[k].task_ids))
    ids = state.stages[key].task_ids
    assert len(ids) > 1
    ids.reverse()
    monkeypatch.setattr(sections, "GROUP_TASKS", 1)
    summary, groups, indices, indexes = sections.split(state)
    assert key in indices[2] and key in {index.key for index in indexes}
    chunk_ids = [g[0][1] for g in groups if g[0][0] == key]
    assert all(len(c) == 1 for c in chunk_ids) and sum(chunk_ids, []) == sorted(ids)
    assert sections.merge(summary, groups, indices) == state
    assert decode(encode(snapshot), "memory").state == state


def test_damaged_stage_index_is_found_and_rebuilt(tmp_path: Path) -> None:
    app = "local-1795972896863"
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / app).write_bytes((SPARK401 / "eventlogs" / app).read_bytes())
    _index(logs, tmp_path / "store", 1)
    with runtime_for(logs, tmp_path / "store", scan=False) as (runtime, client):
        path = str(logs / app)
        _, layout = runtime.snapshots.read_summary(path)
        key, (_, _, index_section) = next(iter(layout.stage_chunks.items()))
        url = f"/api/v1/applications/{app}/stages/{key[0]}/{key[1]}/taskList?sortBy=-runtime"
        expected = client.get(url).json()
        victim = Path(runtime.snapshots.path_for(path))
    section = layout.sections[index_section]
    blob = bytearray(victim.read_bytes())
    blob[section.offset + section.length // 2] ^= 0x01
    victim.write_bytes(bytes(blob))
    report = verify_store(str(tmp_path / "store"))
    assert not report.ok and f"section {index_section} checksum mismatch" in next(iter(report.damaged_snapshots.values()))
    with runtime_for(logs, tmp_path / "store", scan=False) as (runtime, client):
        assert client.get(url).json() == expected
        assert runtime.snapshots.corrupt_found == 1 and runtime.states.builds == 1
    assert verify_store(str(tmp_path / "store")).ok
