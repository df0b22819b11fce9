"""Quantile summaries exactly as ``AppStatusStore`` computes them.

``taskSummary`` scans one KVStore index per metric with ``first(0L)``: the indexed value
is the *stored* one, where non-successful tasks carry ``-(v)-1`` (SPARK-26260) and tasks
without metrics ``-1``. So most metrics only see successful tasks, but the derived indices
(duration, scheduler delay, getting-result time, shuffle totals) use real values and also
see failed/killed tasks. The quantile positions come from the count of the run-time index:
``min((q * count).toLong, count - 1)``; a position past the end yields NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from sparkhist.state.entities import EXECUTOR_METRIC_NAMES, ExecutorStageSummary, M, Task


def stored(task: Task, i: int, success: bool | None = None) -> int:
    """The value Spark's ``TaskDataWrapper`` stores for metric ``i`` (negative if not SUCCESS).

    ``success``: whether the task's status is SUCCESS, when the caller already has it (the
    status is computed on each read); None: read here."""
    if task.metrics is None:
        return -1
    v = task.metrics[i]
    if success is None:
        success = task.status == "SUCCESS"
    return v if success else -v - 1


def task_duration(task: Task, last_update_time: int | None) -> int:
    """``LiveTask.doUpdate``'s duration: finished → finish − launch, else time running so far."""
    if task.finished:
        return task.finish_time - task.launch_time
    now = last_update_time if last_update_time is not None else task.launch_time
    return now - task.launch_time


def getting_result_time(launch: int, fetch_start: int, duration: int) -> int:
    if fetch_start > 0:
        if duration > 0:
            return launch + duration - fetch_start
        return 0
    return 0


def scheduler_delay(launch: int, fetch_start: int, duration: int, deser: int, ser: int, run: int) -> int:
    return max(0, duration - run - deser - ser - getting_result_time(launch, fetch_start, duration))


def fetch_start(task: Task) -> int:
    return task.getting_result_time if task.getting_result_time != 0 else -1


def _indexed(task: Task, last_update: int | None) -> dict[str, int]:
    """The derived index values of ``TaskDataWrapper`` (real values, -1 without metrics),
    Java longs as there (a damaged log's huge values overflow as in the SHS)."""
    dur = _long(task_duration(task, last_update))
    if task.metrics is None:
        return {"duration": dur, "sched": -1, "grt": -1, "reads": -1, "blocks": -1}
    m = task.metrics
    fs = fetch_start(task)
    return {
        "duration": dur,
        "sched": _long(scheduler_delay(task.launch_time, fs, dur, m[M["executorDeserializeTime"]],
                                       m[M["resultSerializationTime"]], m[M["executorRunTime"]])),
        "grt": _long(getting_result_time(task.launch_time, fs, dur)),
        # TaskDataWrapper.shuffleTotalReads/-Blocks add the stored values: negative unless SUCCESS.
        "reads": _long(stored(task, M["sr.localBytesRead"]) + stored(task, M["sr.remoteBytesRead"])),
        "blocks": _long(stored(task, M["sr.localBlocksFetched"]) + stored(task, M["sr.remoteBlocksFetched"])),
    }


def _long(value: int) -> int:
    """``value`` as a Java long: modulo 2**64, signed."""
    return value if -(1 << 63) <= value < 1 << 63 else (value + (1 << 63)) % (1 << 64) - (1 << 63)


def _pick(values: list[int], indices: list[int]) -> list[float]:
    values.sort()
    return [float(values[i]) if i < len(values) else math.nan for i in indices]


def task_summary(tasks: Sequence[Task], quantiles: list[float], last_update: int | None) -> dict[str, Any] | None:
    """``AppStatusStore.taskSummary`` → a ``TaskMetricDistributions`` dict, or None."""
    qs = sorted(quantiles)
    count = sum(1 for t in tasks if stored(t, M["executorRunTime"]) >= 0)
    if count <= 0:
        return None
    indices = [min(int(q * count), count - 1) for q in qs]
    derived = [_indexed(t, last_update) for t in tasks]

    def metric(i: int) -> list[float]:
        return _pick([v for v in (stored(t, i) for t in tasks) if v >= 0], indices)

    def derived_metric(name: str) -> list[float]:
        return _pick([d[name] for d in derived if d[name] >= 0], indices)

    push = ["corruptMergedBlockChunks", "mergedFetchFallbackCount", "remoteMergedBlocksFetched",
            "localMergedBlocksFetched", "remoteMergedChunksFetched", "localMergedChunksFetched",
            "remoteMergedBytesRead", "localMergedBytesRead", "remoteMergedReqsDuration"]
    return {
        "quantiles": qs,
        "duration": derived_metric("duration"),
        "executorDeserializeTime": metric(M["executorDeserializeTime"]),
        "executorDeserializeCpuTime": metric(M["executorDeserializeCpuTime"]),
        "executorRunTime": metric(M["executorRunTime"]),
        "executorCpuTime": metric(M["executorCpuTime"]),
        "resultSize": metric(M["resultSize"]),
        "jvmGcTime": metric(M["jvmGcTime"]),
        "resultSerializationTime": metric(M["resultSerializationTime"]),
        "gettingResultTime": derived_metric("grt"),
        "schedulerDelay": derived_metric("sched"),
        "peakExecutionMemory": metric(M["peakExecutionMemory"]),
        "memoryBytesSpilled": metric(M["memoryBytesSpilled"]),
        "diskBytesSpilled": metric(M["diskBytesSpilled"]),
        "inputMetrics": {"bytesRead": metric(M["in.bytesRead"]),
                         "recordsRead": metric(M["in.recordsRead"])},
        "outputMetrics": {"bytesWritten": metric(M["out.bytesWritten"]),
                          "recordsWritten": metric(M["out.recordsWritten"])},
        "shuffleReadMetrics": {
            "readBytes": derived_metric("reads"),
            "readRecords": metric(M["sr.recordsRead"]),
            "remoteBlocksFetched": metric(M["sr.remoteBlocksFetched"]),
            "localBlocksFetched": metric(M["sr.localBlocksFetched"]),
            "fetchWaitTime": metric(M["sr.fetchWaitTime"]),
            "remoteBytesRead": metric(M["sr.remoteBytesRead"]),
            "remoteBytesReadToDisk": metric(M["sr.remoteBytesReadToDisk"]),
            "totalBlocksFetched": derived_metric("blocks"),
            "remoteReqsDuration": metric(M["sr.remoteReqsDuration"]),
            "shufflePushReadMetricsDist": {name: metric(M["push." + name]) for name in push},
        },
        "shuffleWriteMetrics": {"writeBytes": metric(M["sw.bytesWritten"]),
                                "writeRecords": metric(M["sw.recordsWritten"]),
                                "writeTime": metric(M["sw.writeTime"])},
    }


def quantiles_of(values: list[float], qs: list[float]) -> list[float]:
    """``AppStatusUtils.getQuantilesValue`` over already sorted values (zeros when empty)."""
    n = len(values)
    if n == 0:
        return [0.0] * len(qs)
    return [values[min(int(q * n), n - 1)] for q in qs]


def executor_summary_distributions(summaries: Sequence[ExecutorStageSummary],
                                   quantiles: list[float]) -> dict[str, Any] | None:
    """``AppStatusStore.stageExecutorSummary``: quantiles across the stage's executors."""
    if not summaries:
        return None
    qs = sorted(quantiles)

    def dist(fn: Callable[[ExecutorStageSummary], int]) -> list[float]:
        return quantiles_of(sorted(float(fn(s)) for s in summaries), qs)

    def mv(name: str) -> Callable[[ExecutorStageSummary], int]:
        return lambda s: s.metrics[M[name]]

    peak_sets = [s.peaks for s in summaries if s.peaks[0] > -1]
    peak = {name: quantiles_of(sorted(float(p[i]) for p in peak_sets), qs)
            for i, name in enumerate(EXECUTOR_METRIC_NAMES)}
    return {
        "quantiles": qs,
        "taskTime": dist(lambda s: s.task_time),
        "failedTasks": dist(lambda s: s.failed_tasks),
        "succeededTasks": dist(lambda s: s.succeeded_tasks),
        "killedTasks": dist(lambda s: s.killed_tasks),
        "inputBytes": dist(mv("in.bytesRead")),
        "inputRecords": dist(mv("in.recordsRead")),
        "outputBytes": dist(mv("out.bytesWritten")),
        "outputRecords": dist(mv("out.recordsWritten")),
        "shuffleRead": dist(lambda s: s.metrics[M["sr.remoteBytesRead"]] + s.metrics[M["sr.localBytesRead"]]),
        "shuffleReadRecords": dist(mv("sr.recordsRead")),
        "shuffleWrite": dist(mv("sw.bytesWritten")),
        "shuffleWriteRecords": dist(mv("sw.recordsWritten")),
        "memoryBytesSpilled": dist(mv("memoryBytesSpilled")),
        "diskBytesSpilled": dist(mv("diskBytesSpilled")),
        "peakMemoryMetrics": peak,
    }
