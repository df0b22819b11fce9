"""Decoding of event-log JSON fragments with ``JsonProtocol``'s defaults.

Old logs (Spark 1.x–3.x) lack fields newer versions write; Spark's ``JsonProtocol`` fills
them with defaults (0, empty, None). These helpers do the same, so the listener never
branches on log versions.
"""

from __future__ import annotations

from typing import Any

import orjson

from sparkhist.state.entities import EXECUTOR_METRIC_NAMES, N_METRICS, M, StageInfo

Accum = tuple[int, str | None, str | None, str | None]  # id, name, update, value


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def accumulables(items: list[dict[str, Any]] | None) -> list[Accum]:
    """Non-internal, non-SQL accumulables (``LiveEntityHelpers.newAccumulatorInfos``)."""
    out: list[Accum] = []
    for acc in items or []:
        if acc.get("Internal") or acc.get("Metadata") == "sql":
            continue
        name = acc.get("Name")
        if isinstance(name, str) and name.startswith("internal.metrics."):
            continue
        out.append((int(acc.get("ID", 0)), name, _as_text(acc.get("Update")), _as_text(acc.get("Value"))))
    return out


def sql_accum_updates(items: list[dict[str, Any]] | None) -> list[tuple[int, int]]:
    """(id, update) of every accumulable with an update: what SQL metrics consume."""
    out = []
    for acc in items or []:
        update = acc.get("Update")
        if update is None:
            continue
        try:
            out.append((int(acc["ID"]), int(update)))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def task_metrics(tm: dict[str, Any] | None) -> list[int] | None:
    """The exploded metric vector of a ``Task Metrics`` object, or None when absent."""
    if not tm:
        return None
    v = [0] * N_METRICS
    g = tm.get
    v[M["executorDeserializeTime"]] = g("Executor Deserialize Time", 0) or 0
    v[M["executorDeserializeCpuTime"]] = g("Executor Deserialize CPU Time", 0) or 0
    v[M["executorRunTime"]] = g("Executor Run Time", 0) or 0
    v[M["executorCpuTime"]] = g("Executor CPU Time", 0) or 0
    v[M["resultSize"]] = g("Result Size", 0) or 0
    v[M["jvmGcTime"]] = g("JVM GC Time", 0) or 0
    v[M["resultSerializationTime"]] = g("Result Serialization Time", 0) or 0
    v[M["memoryBytesSpilled"]] = g("Memory Bytes Spilled", 0) or 0
    v[M["diskBytesSpilled"]] = g("Disk Bytes Spilled", 0) or 0
    v[M["peakExecutionMemory"]] = g("Peak Execution Memory", 0) or 0
    inp = g("Input Metrics") or {}
    v[M["in.bytesRead"]] = inp.get("Bytes Read", 0) or 0
    v[M["in.recordsRead"]] = inp.get("Records Read", 0) or 0
    out = g("Output Metrics") or {}
    v[M["out.bytesWritten"]] = out.get("Bytes Written", 0) or 0
    v[M["out.recordsWritten"]] = out.get("Records Written", 0) or 0
    sr = g("Shuffle Read Metrics") or {}
    v[M["sr.remoteBlocksFetched"]] = sr.get("Remote Blocks Fetched", 0) or 0
    v[M["sr.localBlocksFetched"]] = sr.get("Local Blocks Fetched", 0) or 0
    v[M["sr.fetchWaitTime"]] = sr.get("Fetch Wait Time", 0) or 0
    v[M["sr.remoteBytesRead"]] = sr.get("Remote Bytes Read", 0) or 0
    v[M["sr.remoteBytesReadToDisk"]] = sr.get("Remote Bytes Read To Disk", 0) or 0
    v[M["sr.localBytesRead"]] = sr.get("Local Bytes Read", 0) or 0
    v[M["sr.recordsRead"]] = sr.get("Total Records Read", 0) or 0
    v[M["sr.remoteReqsDuration"]] = sr.get("Remote Requests Duration", 0) or 0
    # 4.x writes "Push Based Shuffle"; 3.2-era logs "Shuffle Push Read Metrics".
    push = sr.get("Push Based Shuffle") or sr.get("Shuffle Push Read Metrics") or {}
    v[M["push.corruptMergedBlockChunks"]] = push.get("Corrupt Merged Block Chunks", 0) or 0
    v[M["push.mergedFetchFallbackCount"]] = (push.get("Merged Fetch Fallback Count")
                                          or push.get("Merged Fallback Count", 0) or 0)
    v[M["push.remoteMergedBlocksFetched"]] = push.get("Merged Remote Blocks Fetched", 0) or 0
    v[M["push.localMergedBlocksFetched"]] = push.get("Merged Local Blocks Fetched", 0) or 0
    v[M["push.remoteMergedChunksFetched"]] = push.get("Merged Remote Chunks Fetched", 0) or 0
    v[M["push.localMergedChunksFetched"]] = push.get("Merged Local Chunks Fetched", 0) or 0
    v[M["push.remoteMergedBytesRead"]] = push.get("Merged Remote Bytes Read", 0) or 0
    v[M["push.localMergedBytesRead"]] = push.get("Merged Local Bytes Read", 0) or 0
    v[M["push.remoteMergedReqsDuration"]] = push.get("Merged Remote Requests Duration", 0) or 0
    sw = g("Shuffle Write Metrics") or {}
    v[M["sw.bytesWritten"]] = sw.get("Shuffle Bytes Written", 0) or 0
    v[M["sw.writeTime"]] = sw.get("Shuffle Write Time", 0) or 0
    v[M["sw.recordsWritten"]] = sw.get("Shuffle Records Written", 0) or 0
    return v


def executor_metrics(em: dict[str, Any] | None) -> list[int] | None:
    """``executorMetricsFromJson``: missing names (or a missing object) are 0."""
    if em is None:
        em = {}
    return [int(em.get(name, 0) or 0) for name in EXECUTOR_METRIC_NAMES]


def stage_info(si: dict[str, Any]) -> StageInfo:
    return StageInfo(
        stage_id=si.get("Stage ID", 0),
        attempt_id=si.get("Stage Attempt ID", 0) or 0,
        name=si.get("Stage Name", ""),
        num_tasks=si.get("Number of Tasks", 0),
        rdd_ids=[r.get("RDD ID") for r in si.get("RDD Info") or []],
        details=si.get("Details", "") or "",
        submission_time=si.get("Submission Time"),
        completion_time=si.get("Completion Time"),
        failure_reason=si.get("Failure Reason"),
        accumulables=sorted(accumulables(si.get("Accumulables")), key=lambda a: a[0]),
        resource_profile_id=si.get("Resource Profile Id", 0) or 0,
        is_shuffle_push_enabled=bool(si.get("Shuffle Push Enabled", False)),
        shuffle_mergers_count=si.get("Shuffle Push Mergers Count", 0) or 0,
    )


def end_reason(reason: dict[str, Any] | None) -> tuple[str, str | None]:
    """(kind, errorMessage) of a ``Task End Reason`` (``TaskEndReason.toErrorString``)."""
    if not reason:
        return "Success", None
    kind = reason.get("Reason", "Success")
    if kind == "Success":
        return kind, None
    if kind == "TaskKilled":
        return kind, reason.get("Kill Reason", "unknown reason")
    if kind == "ExceptionFailure":
        full = reason.get("Full Stack Trace")
        if full:
            return kind, full
        cls = reason.get("Class Name", "")
        desc = reason.get("Description") or ""
        st = reason.get("Stack Trace") or []
        lines = "\n".join(
            f"        {f.get('Declaring Class', '')}.{f.get('Method Name', '')}"
            f"({f.get('File Name', '')}:{f.get('Line Number', 0)})" for f in st)
        return kind, f"{cls}: {desc}\n{lines}"
    if kind == "FetchFailed":
        bm = reason.get("Block Manager Address")
        bm_text = ("null" if not bm else
                   f"BlockManagerId({bm.get('Executor ID')}, {bm.get('Host')}, {bm.get('Port')}, None)")
        return kind, (f"FetchFailed({bm_text}, shuffleId={reason.get('Shuffle ID')}, "
                      f"mapIndex={reason.get('Map Index', -1)}, mapId={reason.get('Map ID')}, "
                      f"reduceId={reason.get('Reduce ID')}, message=\n{reason.get('Message')}\n)")
    if kind == "Resubmitted":
        return kind, "Resubmitted (resubmitted due to lost executor)"
    if kind == "TaskResultLost":
        return kind, "TaskResultLost (result lost from block manager)"
    if kind == "TaskCommitDenied":
        return kind, (f"TaskCommitDenied (Driver denied task commit) for job: {reason.get('Job ID', -1)}, "
                      f"partition: {reason.get('Partition ID', -1)}, "
                      f"attemptNumber: {reason.get('Attempt Number', -1)}")
    if kind == "ExecutorLostFailure":
        caused = reason.get("Exit Caused By App", True)
        behavior = "caused by one of the running tasks" if caused else "unrelated to the running tasks"
        text = f"ExecutorLostFailure (executor {reason.get('Executor ID')} exited {behavior})"
        if reason.get("Loss Reason") is not None:
            text += f" Reason: {reason.get('Loss Reason')}"
        return kind, text
    return kind, "UnknownReason"
