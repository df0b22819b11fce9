"""Decoding of event-log JSON fragments with ``JsonProtocol``'s defaults.

Old logs (Spark 1.x–3.x) lack fields newer versions write; Spark's ``JsonProtocol`` fills
them with defaults (0, empty, None). These helpers do the same, so the listener never
branches on log versions.

Valid JSON of the wrong shape (a number where an object goes, a string that is no
number, a list where a key goes) is not a version difference: ``JsonProtocol``'s typed
extraction rejects such an event. Here :func:`check_shape` rejects what the handlers
would store as is (ids, times, names: what the views compute with, sort or hash), and a
handler fails with one of :data:`MALFORMED` on the rest; the indexer skips the event
with a warning either way, as it skips a line that is not JSON.
"""

from __future__ import annotations

from array import array
from functools import partial
from typing import Any

import orjson

from sparkhist import releases
from sparkhist.state.entities import EXECUTOR_METRIC_NAMES, N_METRICS, M, StageInfo

Accum = tuple[int, str | None, str | None, str | None]  # id, name, update, value

#: What a handler (or :func:`check_shape`) raises on an event of the wrong shape.
MALFORMED: tuple[type[Exception], ...] = (AttributeError, IndexError, KeyError, OverflowError, TypeError, ValueError)

_INT, _STR, _DICT, _LIST = frozenset({int}), frozenset({str}), frozenset({dict}), frozenset({list})
_NONE = type(None)

#: The type of each field the handlers keep as logged, wherever it appears (``JsonProtocol``
#: reads each name with one type); a null passes where the handlers take it for absent.
#: ``int`` is not ``bool``: the check is on the exact type, as ``extractLong`` refuses a boolean.
FIELD_TYPES: dict[str, frozenset[type]] = {
    **dict.fromkeys(("Timestamp", "time", "Launch Time", "Job ID", "Stage ID", "Task ID", "Index", "Attempt",
                     "RDD ID", "Number of Tasks", "Number of Partitions", "Maximum Memory", "Total Cores",
                     "executionId", "stageId", "accumulatorId", "Resource Profile Id", "Replication"), _INT),
    **dict.fromkeys(("Submission Time", "Completion Time", "Partition ID", "Stage Attempt ID", "Getting Result Time",
                     "Finish Time", "Maximum Onheap Memory", "Maximum Offheap Memory", "stageAttemptId", "cores",
                     "rootExecutionId", "Disk Size", "Memory Size", "Shuffle Push Mergers Count"), _INT | {_NONE}),
    **dict.fromkeys(("Executor ID", "executorId", "processId", "nodeName", "metricType", "name", "Event"), _STR),
    **dict.fromkeys(("Host", "hostId", "hostPort", "Locality", "Stage Name", "Name", "Removed Reason", "Details",
                     "Resource Name", "Discovery Script", "Vendor",
                     "description", "details", "physicalPlanDescription", "errorMessage", "Failure Reason",
                     "App ID", "App Name", "App Attempt ID", "User", "Spark Version"), _STR | {_NONE}),
    **dict.fromkeys(("Task Info", "Stage Info", "Executor Info", "Block Manager ID", "Job Result", "Task End Reason",
                     "Storage Level", "sparkPlanInfo", "info", "Block Updated Info", "Executor Resource Requests",
                     "Task Resource Requests", "Resources", "Properties", "JVM Information", "Log Urls",
                     "Attributes", "logUrlInfo", "Driver Logs", "Driver Attributes"), _DICT | {_NONE}),
    "Amount": frozenset({int, float}),
    **dict.fromkeys(("Stage Infos", "Stage IDs", "RDD Info", "children", "metrics", "Accumulables", "accumUpdates",
                     "sqlPlanMetrics", "Stack Trace", "addresses"), _LIST | {_NONE}),
}
#: Lists whose items have one type.
ITEM_TYPES: dict[str, frozenset[type]] = {
    "Stage IDs": _INT,
    "addresses": _STR,
    **dict.fromkeys(("Stage Infos", "RDD Info", "children", "metrics", "Accumulables", "sqlPlanMetrics", "Stack Trace"),
                    _DICT),
}
#: Objects whose values have one type (their keys are names, not fields): ``mapFromJson``
#: reads strings.
VALUE_TYPES: dict[str, frozenset[type]] = {
    **dict.fromkeys(("Executor Resource Requests", "Task Resource Requests", "Resources"), _DICT),
    **dict.fromkeys(("Properties", "JVM Information", "Log Urls", "Attributes", "logUrlInfo", "Driver Logs",
                     "Driver Attributes"), _STR),
}
#: Objects whose keys are names (properties, log URLs, metric names): not fields, not looked into.
_OPAQUE = frozenset(("Properties", "Spark Properties", "Hadoop Properties", "System Properties", "Metrics Properties",
                     "Classpath Entries", "JVM Information", "Log Urls", "Attributes", "logUrlInfo", "Driver Logs",
                     "Driver Attributes", "modifiedConfigs", "metadata", "Executor Metrics", "Task Executor Metrics",
                     "Task Metrics", "Update", "Value"))
#: The bulk of a log, checked shallowly (their own fields and their task's): what else they
#: hold is decoded by :func:`task_metrics`, :func:`accumulables` and :func:`end_reason`.
_TASK_EVENTS = frozenset(("SparkListenerTaskStart", "SparkListenerTaskEnd", "SparkListenerTaskGettingResult"))
#: Spark's own events (the fields above are theirs); others' events are not checked.
_SPARK_EVENTS = ("SparkListener", "org.apache.spark.scheduler.SparkListener", "org.apache.spark.sql.execution.ui.")


def check_shape(event: dict[str, Any]) -> None:
    """Raise ``TypeError`` if a field of a Spark event has a type ``JsonProtocol`` would not
    read (:data:`FIELD_TYPES`); an unknown field, or a missing one, passes."""
    name = event.get("Event")
    if name in _TASK_EVENTS:
        _check_task(event)
    elif type(name) is str and name.startswith(_SPARK_EVENTS):
        _check_tree(event)


def _check_task(event: dict[str, Any]) -> None:
    """A task event's fields that the handlers keep: one ``get`` each (they are most events)."""
    g = event.get
    info = g("Task Info")
    if type(g("Stage ID", 0)) is not int or type(g("Stage Attempt ID", 0)) not in _INT_OR_NONE:
        _check_fields(event)  # raises, naming the field
    if info is None:
        return
    if type(info) is not dict:
        raise TypeError(f"'Task Info' is {type(info).__name__}")
    t = info.get
    if (type(t("Task ID", 0)) is not int or type(t("Index", 0)) is not int or type(t("Launch Time", 0)) is not int
            or type(t("Executor ID", "")) is not str or type(t("Finish Time")) not in _INT_OR_NONE
            or type(t("Getting Result Time")) not in _INT_OR_NONE or type(t("Partition ID")) not in _INT_OR_NONE
            or type(t("Attempt", 0)) is not int or type(t("Host")) not in _STR_OR_NONE
            or type(t("Locality")) not in _STR_OR_NONE):
        _check_fields(info)


_INT_OR_NONE, _STR_OR_NONE = _INT | {_NONE}, _STR | {_NONE}


def _check_fields(obj: dict[str, Any]) -> None:
    for key, value in obj.items():
        allowed = FIELD_TYPES.get(key)
        if allowed is not None and type(value) not in allowed:
            raise TypeError(f"{key!r} is {type(value).__name__}")


def _check_tree(obj: dict[str, Any]) -> None:
    for key, value in obj.items():
        kind = type(value)
        allowed = FIELD_TYPES.get(key)
        if allowed is not None and kind not in allowed:
            raise TypeError(f"{key!r} is {kind.__name__}")
        if kind is dict:
            if key == "sparkPlanInfo":
                _check_plan(value)
            elif key in VALUE_TYPES:
                values = VALUE_TYPES[key]
                for item in value.values():
                    if type(item) not in values:
                        raise TypeError(f"a value of {key!r} is {type(item).__name__}")
                    if type(item) is dict:
                        _check_tree(item)
            elif key not in _OPAQUE:
                _check_tree(value)
        elif kind is list and key not in _OPAQUE:
            items = ITEM_TYPES.get(key)
            if items is not None:
                for item in value:
                    if type(item) not in items:
                        raise TypeError(f"an item of {key!r} is {type(item).__name__}")
            if key == "RDD Info":
                _check_rdds(value)
            elif key not in _SHALLOW:
                for item in value:
                    if type(item) is dict:
                        _check_tree(item)


#: Lists whose items are not looked into: their decoders (:func:`accumulables`,
#: :func:`end_reason`) check what they use.
_SHALLOW = frozenset(("Accumulables", "Stack Trace", "accumUpdates", "Parent IDs"))


def _check_rdds(rdds: list[dict[str, Any]]) -> None:
    """A stage's RDDs (many per stage in SQL jobs): what the stage and storage keep of each."""
    for rdd in rdds:
        g = rdd.get
        level = g("Storage Level")
        if (type(g("RDD ID")) not in _INT_OR_NONE or type(g("Name", "")) not in _STR_OR_NONE
                or type(g("Number of Partitions", 0)) is not int
                or (level is not None and (type(level) is not dict or type(level.get("Replication", 1)) is not int))):
            _check_tree(rdd)  # raises, naming the field
            raise TypeError("an RDD's storage level is no object")


def _check_plan(plan: dict[str, Any]) -> None:
    """A SQL plan (the biggest events): what the plan graph keeps of each node, its name
    and its metrics' names and types, without a walk of everything else."""
    stack: list[Any] = [plan]
    while stack:
        node = stack.pop()
        if type(node) is not dict:
            raise TypeError(f"a plan node is {type(node).__name__}")
        if type(node.get("nodeName", "")) is not str:
            raise TypeError("a plan node's name is no string")
        for metric in node.get("metrics") or ():
            if type(metric) is not dict or type(metric.get("name", "")) is not str:
                raise TypeError("a plan metric's name is no string")
        children = node.get("children") or []
        if type(children) is not list:
            raise TypeError(f"a plan node's children are {type(children).__name__}")
        stack.extend(children)


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
        if isinstance(name, str):
            if name.startswith("internal.metrics."):
                continue
        elif name is not None:
            raise TypeError(f"an accumulable's name is {type(name).__name__}")
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


#: ``TaskMetrics.nameToAccums``: an internal accumulator's name -> its slot in the metric vector.
_INTERNAL = "internal.metrics."
ACCUMULATOR_SLOTS: dict[str, int] = {
    _INTERNAL + name: M[slot] for name, slot in (
        ("executorDeserializeTime", "executorDeserializeTime"),
        ("executorDeserializeCpuTime", "executorDeserializeCpuTime"),
        ("executorRunTime", "executorRunTime"), ("executorCpuTime", "executorCpuTime"),
        ("resultSize", "resultSize"), ("jvmGCTime", "jvmGcTime"),
        ("resultSerializationTime", "resultSerializationTime"), ("memoryBytesSpilled", "memoryBytesSpilled"),
        ("diskBytesSpilled", "diskBytesSpilled"), ("peakExecutionMemory", "peakExecutionMemory"),
        ("input.bytesRead", "in.bytesRead"), ("input.recordsRead", "in.recordsRead"),
        ("output.bytesWritten", "out.bytesWritten"), ("output.recordsWritten", "out.recordsWritten"),
        *((f"shuffle.read.{n}", f"sr.{n}") for n in (
            "remoteBlocksFetched", "localBlocksFetched", "fetchWaitTime", "remoteBytesRead",
            "remoteBytesReadToDisk", "localBytesRead", "recordsRead", "remoteReqsDuration")),
        *((f"shuffle.push.read.{n}", f"push.{n}") for n in (
            "corruptMergedBlockChunks", "mergedFetchFallbackCount", "remoteMergedBlocksFetched",
            "localMergedBlocksFetched", "remoteMergedChunksFetched", "localMergedChunksFetched",
            "remoteMergedBytesRead", "localMergedBytesRead", "remoteMergedReqsDuration")),
        ("shuffle.write.bytesWritten", "sw.bytesWritten"), ("shuffle.write.writeTime", "sw.writeTime"),
        ("shuffle.write.recordsWritten", "sw.recordsWritten"),
    )
}


def accumulator_task_metrics(items: list[dict[str, Any]] | None) -> list[int]:
    """``TaskMetrics.fromAccumulatorInfos``: the metric vector of a task's accumulator updates
    (an executor heartbeat's ``Accumulator Updates``); names it does not know are ignored, a
    metric without an update is 0. ``accumValueFromJson`` reads an internal metric's update
    as a long (a list for ``updatedBlockStatuses``): anything else is a ``TypeError``."""
    metrics = [0] * N_METRICS
    for acc in items or ():
        name, update = acc.get("Name"), acc.get("Update")
        if update is None or type(name) is not str or not name.startswith(_INTERNAL):
            continue
        if type(update) is not int:
            if type(update) is list:  # updatedBlockStatuses: no metric of its own
                continue
            raise TypeError(f"accumulator {name} has the update {update!r}, not a number")
        slot = ACCUMULATOR_SLOTS.get(name)
        if slot is not None:
            metrics[slot] = _long(update)
    return metrics


TaskUpdate = tuple[int, int, int, list[dict[str, Any]], list[int]]  # task id, stage, attempt, accumulables, metrics


def executor_metrics_update(event: dict[str, Any]) -> tuple[list[TaskUpdate], dict[tuple[int, int], list[int] | None]]:
    """``executorMetricsUpdateFromJson``, decoded whole before anything is applied (a malformed
    event is dropped, not half applied): each ``Metrics Updated`` item as (task id, stage id,
    stage attempt, its accumulator updates, their :func:`accumulator_task_metrics`), and the
    ``Executor Metrics Updated`` peaks by (stage, attempt), a map as ``JsonProtocol`` builds
    it (a repeated key keeps its last value)."""
    tasks: list[TaskUpdate] = []
    for item in event.get("Metrics Updated") or ():
        accums = item.get("Accumulator Updates") or []
        if type(accums) is not list or not all(type(a) is dict for a in accums):
            raise TypeError("'Accumulator Updates' is no list of objects")
        tasks.append((_int(item["Task ID"]), _int(item["Stage ID"]), _int(item["Stage Attempt ID"]), accums,
                      accumulator_task_metrics(accums)))
    peaks: dict[tuple[int, int], list[int] | None] = {}
    for item in event.get("Executor Metrics Updated") or ():
        peaks[(_int(item["Stage ID"]), _int(item["Stage Attempt ID"]))] = executor_metrics(item.get("Executor Metrics"))
    return tasks, peaks


def _int(value: Any) -> int:
    """``extractInt``/``extractLong`` of an id: an integer, nothing else."""
    if type(value) is not int:
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


_EMPTY: dict[str, Any] = {}
_ZERO_EXECUTOR_METRICS = (0,) * len(EXECUTOR_METRIC_NAMES)
_EXECUTOR_METRIC_NAME_LIST = list(EXECUTOR_METRIC_NAMES)
_INT_ONLY = {int}


def task_metrics(tm: dict[str, Any] | None) -> list[int] | None:
    """The exploded metric vector of a ``Task Metrics`` object, or None when absent.

    One list display in :data:`~sparkhist.state.entities.METRIC_NAMES` order (this runs
    once per task: no index lookups); a missing, null or false value is 0, any other
    number a Java long (what the summaries' arrays hold); a value that is no number is a
    ``TypeError`` (the event is malformed).
    """
    if not tm:
        return None
    g = tm.get
    i = (g("Input Metrics") or _EMPTY).get
    o = (g("Output Metrics") or _EMPTY).get
    sr = g("Shuffle Read Metrics") or _EMPTY
    r = sr.get
    # 4.x writes "Push Based Shuffle"; 3.2-era logs "Shuffle Push Read Metrics", which only
    # releases before 4.2 read (releases.legacy_push_read_metrics).
    legacy = _LEGACY_PUSH_READ()
    p = (r("Push Based Shuffle") or (r("Shuffle Push Read Metrics") if legacy else None) or _EMPTY).get
    w = (g("Shuffle Write Metrics") or _EMPTY).get
    metrics = [
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
        p("Merged Fetch Fallback Count") or (p("Merged Fallback Count", 0) if legacy else 0) or 0,
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
    try:
        _LONGS(metrics)  # the usual case, checked in C: every value fits a Java long
    except (TypeError, OverflowError):
        return [_long(v) for v in metrics]
    return metrics


_LEGACY_PUSH_READ = releases.legacy_push_read_metrics
_LONGS = partial(array, "q")
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1


def _long(value: Any) -> int:
    """``JsonNode.extractLong``: an integer wraps to 64 bits, a float is cut (saturating, as a
    Java cast), anything else is a ``TypeError`` (a boolean passes as 0 or 1, as in C)."""
    if isinstance(value, int):
        return (value - _LONG_MIN) % (1 << 64) + _LONG_MIN
    if type(value) is float:
        return max(_LONG_MIN, min(_LONG_MAX, int(value)))
    raise TypeError(f"a metric is {type(value).__name__}, not a number")


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


def exit_code(event: dict[str, Any]) -> int | None:
    """An application end's ``ExitCode`` (``jsonOption(...).map(_.extractInt)``): absent or null is
    None, an integer its low 32 bits, a float cut as a Java ``(int)``; anything else is a ``TypeError``."""
    value = event.get("ExitCode")
    if value is None:
        return None
    if type(value) is int:
        return (value + (1 << 31)) % (1 << 32) - (1 << 31)
    if type(value) is float:
        return max(-(1 << 31), min((1 << 31) - 1, int(value)))
    raise TypeError(f"ExitCode is {type(value).__name__}, not a number")


def _text(value: Any) -> str:
    """``extractString``: a string; anything else is a ``TypeError`` (the event is malformed)."""
    if type(value) is not str:
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def end_reason(reason: dict[str, Any] | None) -> tuple[str, str | None]:
    """(kind, errorMessage) of a ``Task End Reason`` (``TaskEndReason.toErrorString``)."""
    if not reason:
        return "Success", None
    kind = reason.get("Reason", "Success")
    if kind == "Success":
        return kind, None
    if kind == "TaskKilled":
        return kind, _text(reason.get("Kill Reason", "unknown reason"))
    if kind == "ExceptionFailure":
        full = reason.get("Full Stack Trace")
        if full:
            return kind, _text(full)
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
