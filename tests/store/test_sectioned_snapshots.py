"""Sectioned snapshots: a summary plus task sections, each loaded and verified on its own.

* Requests that need no task (``/jobs``, ``/stages``, executors, SQL...) load no task
  section; a stage's tasks load only that stage's section (issue 3).
* Every answer equals the one computed from the whole in-memory state.
* A damaged task section is found when read (and by ``verify``), quarantined, and the
  application rebuilt; a snapshot rewritten between the summary and a section is read again.
"""

from __future__ import annotations

import dataclasses
import os
import struct
from pathlib import Path

import pytest
from starlette.datastructures import QueryParams

from sparkhist.api.v1.app_resources import handle
from sparkhist.devtools.big import write_big_log
from sparkhist.devtools.scale import load_template
from sparkhist.errors import StoreCorrupt
from sparkhist.reader.position import Position
from sparkhist.state import sections
from sparkhist.state.app_state import AppState
from sparkhist.store.snapshots import FORMAT, MAGIC, Snapshot, SnapshotStore
from sparkhist.store.verify import verify_store
from support.conformance import SPARK401
from support.server import copy_logs, runtime_for

BIG = "local-4000000000077"
NO_TASKS = ["jobs", "jobs/0", "stages", "stages?status=COMPLETE", "stages/0?details=false", "executors",
            "allexecutors", "environment", "sql", "storage/rdd", "allmiscellaneousprocess"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """The conformance logs plus a 3,000-task app, indexed."""
    base = tmp_path_factory.mktemp("sections")
    logs = copy_logs(SPARK401 / "eventlogs", base / "logs")
    write_big_log(load_template(SPARK401 / "eventlogs" / "local-1795972896863"), logs, BIG, 3_000)
    with runtime_for(logs, base / "store"):
        pass
    return logs, base / "store"


def _full_states(logs: Path, store: Path) -> dict[str, AppState]:
    snapshots = SnapshotStore(str(store))
    out = {}
    for name in sorted(os.listdir(logs)):
        snapshot = snapshots.read(str(logs / name))
        assert snapshot is not None
        out[snapshot.state.app_id] = snapshot.state
    return out


def test_split_and_merge_round_trip(store) -> None:
    logs, store_dir = store
    for state in _full_states(logs, store_dir).values():
        summary, groups, indices, indexes = sections.split(state)
        assert summary.tasks == {} and all(not st.task_ids for st in summary.stages.values())
        assert [len(st.completed_indices) for st in summary.stages.values()] == \
            [len(st.completed_indices) for st in state.stages.values()]
        assert state.tasks and any(st.task_ids for st in state.stages.values()) or not state.stages
        assert sum(sections.group_tasks(g) for g in groups) >= len(state.tasks)
        assert max((sections.group_tasks(g) for g in groups if len(g) > 1), default=0) <= sections.GROUP_TASKS
        chunked = {index.key for index in indexes}
        assert all(sections.group_tasks(g) <= sections.GROUP_TASKS for g in groups if g[0][0] in chunked)
        assert chunked == ({st_key for st_key, st in state.stages.items() if len(st.task_ids) > sections.GROUP_TASKS})
        assert sections.merge(summary, groups, indices) == state  # the writer resumes from exactly what it saved


def test_summary_and_sections_on_disk(store) -> None:
    logs, store_dir = store
    snapshots = SnapshotStore(str(store_dir))
    summary, layout = snapshots.read_summary(str(logs / BIG))
    assert summary.state.tasks == {} and layout.task_sections() == 3  # 3,000 tasks in chunks of 1,024
    first = layout.first_task_section
    chunks = range(first, layout.task_sections_end)
    assert layout.sections[0].raw_length < sum(layout.sections[i].raw_length for i in chunks) / 4  # the summary is small
    assert [sections.group_tasks(snapshots.read_section(str(logs / BIG), layout, i)) for i in chunks] == [1024, 1024, 952]
    (stage_index,) = (snapshots.read_section(str(logs / BIG), layout, i, sections.StageIndex)
                      for i in range(layout.task_sections_end, len(layout.sections)))
    assert len(stage_index.statuses) == 3_000 and sorted(stage_index.by_runtime) == list(range(3_000))


def test_requests_load_only_the_sections_they_need(store) -> None:
    logs, store_dir = store
    full = _full_states(logs, store_dir)
    with runtime_for(logs, store_dir, scan=False) as (runtime, client):
        states, snapshots = runtime.states, runtime.snapshots
        for path in NO_TASKS:
            response = client.get(f"/api/v1/applications/{BIG}/{path}")
            assert response.status_code in (200, 404), (path, response.text)
        assert states.section_loads == 0 and snapshots.section_reads == 0
        assert states.cached_bytes < 1_000_000  # the summary only: 3,000 tasks would be ~4 MB
        (stage,) = client.get(f"/api/v1/applications/{BIG}/stages").json()
        base = f"/api/v1/applications/{BIG}/stages/{stage['stageId']}/{stage['attemptId']}"
        assert client.get(base + "/taskList").status_code == 200
        assert states.section_loads == 1  # the first chunk of three
        for path in ("/taskList", "/taskList?sortBy=-runtime&length=5", "/taskSummary", "?details=true",
                     "?withSummaries=true", "/taskTable?start=10&length=3"):
            answer = client.get(base + path)
            assert answer.status_code == 200, answer.text
        assert states.cached_bytes > 1_000 * 1_000  # the chunks a page read are accounted for
        expected = handle(full[BIG], ["stages", str(stage["stageId"]), str(stage["attemptId"]), "taskList"],
                          QueryParams(), app_id=BIG)
        assert client.get(base + "/taskList").json() == expected


@pytest.mark.parametrize("query", ["?details=true", "?details=true&withSummaries=true&taskStatus=SUCCESS"])
def test_answers_equal_those_of_the_whole_state(store, query: str) -> None:
    """Every stage and task answer of every app, served from sections, as from the full state."""
    logs, store_dir = store
    with runtime_for(logs, store_dir, scan=False) as (runtime, client):
        whole = {}
        for app in runtime.index.sorted_apps():
            whole[app.id] = _stage_answers(client, app.id, query)
        loaded = runtime.states.section_loads
        assert loaded > 0
    # the same requests against states built in memory (no snapshot sections involved)
    with runtime_for(logs, store_dir, scan=False) as (runtime, client):
        real_read = runtime.snapshots.read_summary
        runtime.snapshots.read_summary = lambda path: None if real_read(path) is None else _full(runtime, path)  # type: ignore[method-assign]
        for app in runtime.index.sorted_apps():
            assert _stage_answers(client, app.id, query) == whole[app.id], app.id


def _stage_answers(client, app_id: str, query: str) -> list:
    """``/stages{query}`` and, per stage attempt, the stage, its task list, summary and table."""
    stages = client.get(f"/api/v1/applications/{app_id}/stages{query}")
    assert stages.status_code == 200
    answers = [stages.json()]
    for st in stages.json():
        base = f"/api/v1/applications/{app_id}/stages/{st['stageId']}/{st['attemptId']}"
        for path in ("", "/taskList?length=100000", "/taskSummary", "/taskTable"):
            r = client.get(base + path)
            answers.append((r.status_code, r.json() if r.status_code == 200 else r.text))
    return answers


def _full(runtime, path):
    snapshot = runtime.snapshots.read(path)
    return snapshot, None


def test_damaged_task_section_is_quarantined_and_rebuilt(tmp_path: Path) -> None:
    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    app = "local-1795972896863"
    with runtime_for(logs, tmp_path / "store") as (runtime, client):
        expected = client.get(f"/api/v1/applications/{app}/stages/0/0/taskList").json()
        path = str(logs / app)
        _, layout = runtime.snapshots.read_summary(path)
        victim = Path(runtime.snapshots.path_for(path))
    assert layout.task_sections() >= 1
    last = layout.sections[-1]
    blob = bytearray(victim.read_bytes())
    blob[last.offset + last.length // 2] ^= 0x10
    victim.write_bytes(bytes(blob))
    report = verify_store(str(tmp_path / "store"))
    assert not report.ok and "checksum mismatch" in next(iter(report.damaged_snapshots.values()))
    with runtime_for(logs, tmp_path / "store", scan=False) as (runtime, client):
        assert client.get(f"/api/v1/applications/{app}/jobs").status_code == 200  # the summary is sound
        assert runtime.states.builds == 0
        answers = {}
        for st in client.get(f"/api/v1/applications/{app}/stages").json():
            r = client.get(f"/api/v1/applications/{app}/stages/{st['stageId']}/{st['attemptId']}/taskList")
            assert r.status_code == 200
            answers[(st["stageId"], st["attemptId"])] = r.json()
        assert answers[(0, 0)] == expected
        assert runtime.states.builds == 1 and runtime.snapshots.corrupt_found == 1
    assert verify_store(str(tmp_path / "store")).ok


def test_snapshot_rewritten_between_summary_and_section(tmp_path: Path) -> None:
    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    app = "local-1795972896863"
    with runtime_for(logs, tmp_path / "store") as (runtime, client):
        expected = client.get(f"/api/v1/applications/{app}/stages/0/0/taskList").json()
    with runtime_for(logs, tmp_path / "store", scan=False) as (runtime, client):
        assert client.get(f"/api/v1/applications/{app}/stages").status_code == 200
        path = str(logs / app)
        snapshot = runtime.snapshots.read(path)
        snapshot.position = dataclasses.replace(snapshot.position, line=snapshot.position.line + 1)
        runtime.snapshots.write(snapshot)  # same state, new file: another generation
        assert client.get(f"/api/v1/applications/{app}/stages/0/0/taskList").json() == expected
        assert runtime.states.loads == 2 and runtime.states.builds == 0


def test_older_formats_are_refused(tmp_path: Path) -> None:
    snapshots = SnapshotStore(str(tmp_path))
    snapshots.write(Snapshot("/logs/a", Position(0, 10, 2, 5), "a", 100, False, AppState()))
    path = Path(snapshots.path_for("/logs/a"))
    blob = bytearray(path.read_bytes())
    struct.pack_into("<H", blob, len(MAGIC), FORMAT - 1)
    path.write_bytes(bytes(blob))
    with pytest.raises(StoreCorrupt, match="format"):
        snapshots.read_summary("/logs/a")
    assert not path.exists() and "/logs/a" in snapshots.quarantined


def test_estimates_of_summary_and_section_match_measured_memory(store) -> None:
    """The cache accounts summaries and task sections separately: both estimates must hold."""
    import gc
    import tracemalloc

    from sparkhist.store.states import estimate_bytes, estimate_state_bytes

    logs, store_dir = store
    snapshots = SnapshotStore(str(store_dir))
    gc.collect()
    tracemalloc.start()
    summary, layout = snapshots.read_summary(str(logs / BIG))
    after_summary, _ = tracemalloc.get_traced_memory()
    first = layout.first_task_section
    group = snapshots.read_section(str(logs / BIG), layout, first)
    after_section, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert sections.group_tasks(group) == 1_024
    assert 0.65 <= estimate_state_bytes(summary.state, summary.pickled_bytes) / after_summary <= 1.35
    section_estimate = estimate_bytes(layout.sections[first].raw_length, layout.section_tasks[first])
    assert 0.65 <= section_estimate / (after_section - after_summary) <= 1.35
