"""The event-fragment decoders' fast paths give what ``JsonProtocol``'s defaults give."""

from __future__ import annotations

from typing import Any

import pytest

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


def test_task_metrics_defaults() -> None:
    assert ev.task_metrics(None) is None
    assert ev.task_metrics({}) is None
    v = ev.task_metrics({"Executor Run Time": None, "JVM GC Time": False, "Result Size": 7,
                         "Shuffle Read Metrics": {"Shuffle Push Read Metrics": {"Merged Fallback Count": 3}}})
    assert v is not None and len(v) == N_METRICS
    assert v[METRIC_NAMES.index("resultSize")] == 7
    assert v[METRIC_NAMES.index("push.mergedFetchFallbackCount")] == 3  # the 3.2-era name
    assert sum(v) == 10 and all(type(x) is int for x in v)


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
