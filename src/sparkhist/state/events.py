"""Decoding of event-log JSON fragments with ``JsonProtocol``'s defaults.

Old logs (Spark 1.x–3.x) lack fields newer versions write; Spark's ``JsonProtocol`` fills
them with defaults (0, empty, None). These helpers do the same, so the listener never
branches on log versions.
"""

from __future__ import annotations

from typing import Any

import orjson

from sparkhist.state.entities import EXECUTOR_METRIC_NAMES, StageInfo

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


_EMPTY: dict[str, Any] = {}
_ZERO_EXECUTOR_METRICS = (0,) * len(EXECUTOR_METRIC_NAMES)
_EXECUTOR_METRIC_NAME_LIST = list(EXECUTOR_METRIC_NAMES)
_INT_ONLY = {int}


def task_metrics(tm: dict[str, Any] | None) -> list[int] | None:
    """The exploded metric vector of a ``Task Metrics`` object, or None when absent.

    One list display in :data:`~sparkhist.state.entities.METRIC_NAMES` order (this runs
    once per task: no index lookups); a missing, null or false value is 0.
    """
    if not tm:
        return None
    g = tm.get
    i = (g("Input Metrics") or _EMPTY).get
    o = (g("Output Metrics") or _EMPTY).get
    sr = g("Shuffle Read Metrics") or _EMPTY
    r = sr.get
    # 4.x writes "Push Based Shuffle"; 3.2-era logs "Shuffle Push Read Metrics".
    p = (r("Push Based Shuffle") or r("Shuffle Push Read Metrics") or _EMPTY).get
    w = (g("Shuffle Write Metrics") or _EMPTY).get
    return [
        g("Executor Deserialize Time", 0) or 0,
        g("Executor Deserialize CPU Time", 0) or 0,
        g("Executor Run Time", 0) or 0,
        g("Executor CPU Time", 0) or 0,
        g("Result Size", 0) or 0,
        g("JVM GC Time", 0) or 0,
        g("Result Serialization Time", 0) or 0,
        g("Memory Bytes Spilled", 0) or 0,
        g("Disk Bytes Spilled", 0) or 0,
        g("Peak Execution Memory", 0) or 0,
        i("Bytes Read", 0) or 0,
        i("Records Read", 0) or 0,
        o("Bytes Written", 0) or 0,
        o("Records Written", 0) or 0,
        r("Remote Blocks Fetched", 0) or 0,
        r("Local Blocks Fetched", 0) or 0,
        r("Fetch Wait Time", 0) or 0,
        r("Remote Bytes Read", 0) or 0,
        r("Remote Bytes Read To Disk", 0) or 0,
        r("Local Bytes Read", 0) or 0,
        r("Total Records Read", 0) or 0,
        r("Remote Requests Duration", 0) or 0,
        p("Corrupt Merged Block Chunks", 0) or 0,
        p("Merged Fetch Fallback Count") or p("Merged Fallback Count", 0) or 0,
        p("Merged Remote Blocks Fetched", 0) or 0,
        p("Merged Local Blocks Fetched", 0) or 0,
        p("Merged Remote Chunks Fetched", 0) or 0,
        p("Merged Local Chunks Fetched", 0) or 0,
        p("Merged Remote Bytes Read", 0) or 0,
        p("Merged Local Bytes Read", 0) or 0,
        p("Merged Remote Requests Duration", 0) or 0,
        w("Shuffle Bytes Written", 0) or 0,
        w("Shuffle Write Time", 0) or 0,
        w("Shuffle Records Written", 0) or 0,
    ]


def executor_metrics(em: dict[str, Any] | None) -> list[int] | None:
    """``executorMetricsFromJson``: missing names (or a missing object) are 0."""
    if not em:
        return list(_ZERO_EXECUTOR_METRICS)
    values = list(em.values())
    # Spark writes every name, in this order: then the values are the vector.
    if list(em) == _EXECUTOR_METRIC_NAME_LIST and set(map(type, values)) == _INT_ONLY:
        return values
    g = em.get
    return [v if type(v) is int else int(v or 0) for v in map(g, EXECUTOR_METRIC_NAMES)]


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
