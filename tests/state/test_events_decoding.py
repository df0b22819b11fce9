"""The event-fragment decoders' fast paths give what ``JsonProtocol``'s defaults give."""

from __future__ import annotations

from typing import Any

import pytest

import sparkhist
from sparkhist.state import events as ev
from sparkhist.state.entities import EXECUTOR_METRIC_NAMES, METRIC_NAMES, N_METRICS, add_metrics, new_peaks, update_peaks


def test_task_metrics_in_metric_names_order() -> None:
    tm = {
        "Executor Deserialize Time": 1, "Executor Deserialize CPU Time": 2, "Executor Run Time": 3,
        "Executor CPU Time": 4, "Result Size": 5, "JVM GC Time": 6, "Result Serialization Time": 7,
        "Memory Bytes Spilled": 8, "Disk Bytes Spilled": 9, "Peak Execution Memory": 10,
        "Input Metrics": {"Bytes Read": 11, "Records Read": 12},
        "Output Metrics": {"Bytes Written": 13, "Records Written": 14},
        "Shuffle Read Metrics": {
            "Remote Blocks Fetched": 15, "Local Blocks Fetched": 16, "Fetch Wait Time": 17,
            "Remote Bytes Read": 18, "Remote Bytes Read To Disk": 19, "Local Bytes Read": 20,
            "Total Records Read": 21, "Remote Requests Duration": 22,
            "Push Based Shuffle": {
                "Corrupt Merged Block Chunks": 23, "Merged Fetch Fallback Count": 24,
                "Merged Remote Blocks Fetched": 25, "Merged Local Blocks Fetched": 26,
                "Merged Remote Chunks Fetched": 27, "Merged Local Chunks Fetched": 28,
                "Merged Remote Bytes Read": 29, "Merged Local Bytes Read": 30,
                "Merged Remote Requests Duration": 31}},
        "Shuffle Write Metrics": {"Shuffle Bytes Written": 32, "Shuffle Write Time": 33, "Shuffle Records Written": 34},
    }
    assert len(METRIC_NAMES) == N_METRICS == 34
    assert ev.task_metrics(tm) == list(range(1, 35))


def test_task_metrics_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ev.task_metrics(None) is None
    assert ev.task_metrics({}) is None
    legacy = {"Executor Run Time": None, "JVM GC Time": False, "Result Size": 7,
              "Shuffle Read Metrics": {"Shuffle Push Read Metrics": {"Merged Fallback Count": 3,
                                                                      "Merged Remote Bytes Read": 5}}}
    monkeypatch.setattr(sparkhist, "SPARK_VERSION", "4.0.1")
    v = ev.task_metrics(legacy)
    assert v is not None and len(v) == N_METRICS
    assert v[METRIC_NAMES.index("resultSize")] == 7
    assert v[METRIC_NAMES.index("push.mergedFetchFallbackCount")] == 3  # the 3.2-era names, read by 4.0.1
    assert v[METRIC_NAMES.index("push.remoteMergedBytesRead")] == 5
    assert sum(v) == 15 and all(type(x) is int for x in v)
    monkeypatch.setattr(sparkhist, "SPARK_VERSION", "4.3.0")  # 4.2+ read only "Push Based Shuffle"
    assert ev.task_metrics(legacy) == [7 if name == "resultSize" else 0 for name in METRIC_NAMES]
    current = {"Shuffle Read Metrics": {"Push Based Shuffle": {"Merged Fetch Fallback Count": 4},
                                        "Shuffle Push Read Metrics": {"Merged Fallback Count": 3}}}
    v = ev.task_metrics(current)
    assert v is not None and v[METRIC_NAMES.index("push.mergedFetchFallbackCount")] == 4 and sum(v) == 4


def test_heartbeat_accumulators_are_task_metrics_by_name() -> None:
    """``TaskMetrics.fromAccumulatorInfos``: named internal updates only (a heartbeat logs its
    task metrics without names: those are 0), block statuses skipped, a non-number refused."""
    accums = [{"ID": 1, "Name": "internal.metrics.jvmGCTime", "Update": 12},
              {"ID": 2, "Name": "internal.metrics.shuffle.read.localBytesRead", "Update": 40},
              {"ID": 3, "Name": "internal.metrics.shuffle.push.read.mergedFetchFallbackCount", "Update": 2},
              {"ID": 4, "Name": "internal.metrics.updatedBlockStatuses", "Update": []},
              {"ID": 5, "Update": 99}, {"ID": 6, "Name": "number of output rows", "Update": "7"},
              {"ID": 7, "Name": "internal.metrics.executorRunTime"}]
    v = ev.accumulator_task_metrics(accums)
    assert {METRIC_NAMES[i]: x for i, x in enumerate(v) if x} == {
        "jvmGcTime": 12, "sr.localBytesRead": 40, "push.mergedFetchFallbackCount": 2}
    assert set(ev.ACCUMULATOR_SLOTS.values()) == set(range(N_METRICS))  # every metric has its accumulator
    with pytest.raises(TypeError):
        ev.accumulator_task_metrics([{"ID": 1, "Name": "internal.metrics.jvmGCTime", "Update": "12"}])
    event = {"Executor ID": "driver", "Metrics Updated": [{"Task ID": 3, "Stage ID": 1, "Stage Attempt ID": 0,
                                                           "Accumulator Updates": accums}],
             "Executor Metrics Updated": [{"Stage ID": 1, "Stage Attempt ID": 0, "Executor Metrics": {"JVMHeapMemory": 5}},
                                          {"Stage ID": 1, "Stage Attempt ID": 0, "Executor Metrics": {"JVMHeapMemory": 2}}]}
    tasks, peaks = ev.executor_metrics_update(event)
    assert [t[:3] for t in tasks] == [(3, 1, 0)] and tasks[0][4] == v
    assert list(peaks) == [(1, 0)] and peaks[(1, 0)] is not None and peaks[(1, 0)][0] == 2  # a map: the last wins
    with pytest.raises(TypeError):
        ev.executor_metrics_update({"Metrics Updated": [{"Task ID": "3", "Stage ID": 1, "Stage Attempt ID": 0}]})


@pytest.mark.parametrize("em", [
    None, {},
    {name: i for i, name in enumerate(EXECUTOR_METRIC_NAMES)},  # as Spark writes it
    {name: i for i, name in reversed(list(enumerate(EXECUTOR_METRIC_NAMES)))},  # other order
    {EXECUTOR_METRIC_NAMES[3]: 5},  # missing names
    {**{name: 1 for name in EXECUTOR_METRIC_NAMES}, "JVMHeapMemory": None, "MinorGCCount": True},
    {**{name: 2 for name in EXECUTOR_METRIC_NAMES}, "Unknown": 9},
])
def test_executor_metrics_matches_from_json(em: dict[str, Any] | None) -> None:
    model = [int((em or {}).get(name, 0) or 0) for name in EXECUTOR_METRIC_NAMES]
    got = ev.executor_metrics(em)
    assert got == model and all(type(x) is int for x in got)


def test_add_metrics_and_peaks() -> None:
    assert add_metrics([1, 2, 3], [1, 1, 1]) == [2, 3, 4]
    assert add_metrics([1, 2, 3], [1, 1, 1], -1) == [0, 1, 2]
    assert add_metrics([1, 2, 3], [1, 1, 1], 2) == [3, 4, 5]
    peaks = new_peaks()
    assert update_peaks(peaks, [0] * len(peaks)) is True  # slot 0 leaves -1: set
    assert update_peaks(peaks, [0] * len(peaks)) is False
    assert update_peaks(peaks, None) is False
    assert update_peaks(peaks, [0, 5] + [0] * (len(peaks) - 2)) is True and peaks[:2] == [0, 5]
