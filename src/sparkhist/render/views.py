"""Frozen API records built from the accumulators: Spark's ``doUpdate``/``toApi`` methods.

Each function returns a JSON-ready dict with the field order and types of the REST model
(``api.scala``) of the release sparkhist answers as (``sparkhist.releases``): ``None``-valued
options are omitted, dates are GMT strings, counters stay ``int`` and distributions ``float``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from sparkhist import releases
from sparkhist.render.encode import drop_none, format_date
from sparkhist.state.app_state import AppState
from sparkhist.state.entities import (
    EXECUTOR_METRIC_NAMES,
    RDD,
    Executor,
    ExecutorStageSummary,
    Job,
    M,
    Process,
    Stage,
    Task,
)
from sparkhist.state.scala_order import int_order, string_order
from sparkhist.state.sql import SQLExecution
from sparkhist.state.summaries import fetch_start, getting_result_time, scheduler_delay, task_duration

_PUSH = ("corruptMergedBlockChunks", "mergedFetchFallbackCount", "remoteMergedBlocksFetched",
         "localMergedBlocksFetched", "remoteMergedChunksFetched", "localMergedChunksFetched",
         "remoteMergedBytesRead", "localMergedBytesRead", "remoteMergedReqsDuration")


def _date(ms: int | None) -> str | None:
    return None if ms is None else format_date(ms)


def peaks(values: list[int]) -> dict[str, int] | None:
    if values[0] <= -1:
        return None
    return dict(zip(EXECUTOR_METRIC_NAMES, values, strict=False))


def accumulators(accs: list[tuple[int, str | None, str | None, str | None]]) -> list[dict[str, Any]]:
    return [drop_none({"id": a[0], "name": a[1], "update": a[2], "value": a[3]}) for a in accs]


def job(j: Job) -> dict[str, Any]:
    return drop_none({
        "jobId": j.job_id,
        "name": j.name,
        "description": j.description,
        "submissionTime": _date(j.submission_time),
        "completionTime": _date(j.completion_time),
        "stageIds": list(j.stage_ids),
        "jobGroup": j.job_group,
        "jobTags": list(j.job_tags),
        "status": j.status,
        "numTasks": j.num_tasks,
        "numActiveTasks": j.active_tasks,
        "numCompletedTasks": j.completed_tasks,
        "numSkippedTasks": j.skipped_tasks,
        "numFailedTasks": j.failed_tasks,
        "numKilledTasks": j.killed_tasks,
        "numCompletedIndices": len(j.completed_indices),
        "numActiveStages": j.active_stages,
        "numCompletedStages": len(j.completed_stages),
        "numSkippedStages": len(j.skipped_stages),
        "numFailedStages": j.failed_stages,
        "killedTasksSummary": dict(j.killed_summary),
    })


def stage(st: Stage) -> dict[str, Any]:
    m, info = st.metrics, st.info
    return drop_none({
        "status": st.status,
        "stageId": info.stage_id,
        "attemptId": info.attempt_id,
        "numTasks": info.num_tasks,
        "numActiveTasks": st.active_tasks,
        "numCompleteTasks": st.completed_tasks,
        "numFailedTasks": st.failed_tasks,
        "numKilledTasks": st.killed_tasks,
        "numCompletedIndices": len(st.completed_indices),
        "submissionTime": _date(info.submission_time),
        "firstTaskLaunchedTime": _date(st.first_launch_time),
        "completionTime": _date(info.completion_time),
        "failureReason": info.failure_reason,
        "executorDeserializeTime": m[M["executorDeserializeTime"]],
        "executorDeserializeCpuTime": m[M["executorDeserializeCpuTime"]],
        "executorRunTime": m[M["executorRunTime"]],
        "executorCpuTime": m[M["executorCpuTime"]],
        "resultSize": m[M["resultSize"]],
        "jvmGcTime": m[M["jvmGcTime"]],
        "resultSerializationTime": m[M["resultSerializationTime"]],
        "memoryBytesSpilled": m[M["memoryBytesSpilled"]],
        "diskBytesSpilled": m[M["diskBytesSpilled"]],
        "peakExecutionMemory": m[M["peakExecutionMemory"]],
        "inputBytes": m[M["in.bytesRead"]],
        "inputRecords": m[M["in.recordsRead"]],
        "outputBytes": m[M["out.bytesWritten"]],
        "outputRecords": m[M["out.recordsWritten"]],
        "shuffleRemoteBlocksFetched": m[M["sr.remoteBlocksFetched"]],
        "shuffleLocalBlocksFetched": m[M["sr.localBlocksFetched"]],
        "shuffleFetchWaitTime": m[M["sr.fetchWaitTime"]],
        "shuffleRemoteBytesRead": m[M["sr.remoteBytesRead"]],
        "shuffleRemoteBytesReadToDisk": m[M["sr.remoteBytesReadToDisk"]],
        "shuffleLocalBytesRead": m[M["sr.localBytesRead"]],
        "shuffleReadBytes": m[M["sr.localBytesRead"]] + m[M["sr.remoteBytesRead"]],
        "shuffleReadRecords": m[M["sr.recordsRead"]],
        "shuffleCorruptMergedBlockChunks": m[M["push.corruptMergedBlockChunks"]],
        "shuffleMergedFetchFallbackCount": m[M["push.mergedFetchFallbackCount"]],
        "shuffleMergedRemoteBlocksFetched": m[M["push.remoteMergedBlocksFetched"]],
        "shuffleMergedLocalBlocksFetched": m[M["push.localMergedBlocksFetched"]],
        "shuffleMergedRemoteChunksFetched": m[M["push.remoteMergedChunksFetched"]],
        "shuffleMergedLocalChunksFetched": m[M["push.localMergedChunksFetched"]],
        "shuffleMergedRemoteBytesRead": m[M["push.remoteMergedBytesRead"]],
        "shuffleMergedLocalBytesRead": m[M["push.localMergedBytesRead"]],
        "shuffleRemoteReqsDuration": m[M["sr.remoteReqsDuration"]],
        "shuffleMergedRemoteReqsDuration": m[M["push.remoteMergedReqsDuration"]],
        "shuffleWriteBytes": m[M["sw.bytesWritten"]],
        "shuffleWriteTime": m[M["sw.writeTime"]],
        "shuffleWriteRecords": m[M["sw.recordsWritten"]],
        "name": info.name,
        "description": st.description,
        "details": info.details,
        "schedulingPool": st.scheduling_pool,
        "rddIds": list(info.rdd_ids),
        "accumulatorUpdates": accumulators(info.accumulables),
        "killedTasksSummary": dict(st.killed_summary),
        "resourceProfileId": info.resource_profile_id,
        "peakExecutorMetrics": peaks(st.peaks),
        "isShufflePushEnabled": info.is_shuffle_push_enabled,
        "shuffleMergersCount": info.shuffle_mergers_count,
    })


def task_metrics(m: list[int]) -> dict[str, Any]:
    return {
        "executorDeserializeTime": m[M["executorDeserializeTime"]],
        "executorDeserializeCpuTime": m[M["executorDeserializeCpuTime"]],
        "executorRunTime": m[M["executorRunTime"]],
        "executorCpuTime": m[M["executorCpuTime"]],
        "resultSize": m[M["resultSize"]],
        "jvmGcTime": m[M["jvmGcTime"]],
        "resultSerializationTime": m[M["resultSerializationTime"]],
        "memoryBytesSpilled": m[M["memoryBytesSpilled"]],
        "diskBytesSpilled": m[M["diskBytesSpilled"]],
        "peakExecutionMemory": m[M["peakExecutionMemory"]],
        "inputMetrics": {"bytesRead": m[M["in.bytesRead"]], "recordsRead": m[M["in.recordsRead"]]},
        "outputMetrics": {"bytesWritten": m[M["out.bytesWritten"]],
                          "recordsWritten": m[M["out.recordsWritten"]]},
        "shuffleReadMetrics": {
            "remoteBlocksFetched": m[M["sr.remoteBlocksFetched"]],
            "localBlocksFetched": m[M["sr.localBlocksFetched"]],
            "fetchWaitTime": m[M["sr.fetchWaitTime"]],
            "remoteBytesRead": m[M["sr.remoteBytesRead"]],
            "remoteBytesReadToDisk": m[M["sr.remoteBytesReadToDisk"]],
            "localBytesRead": m[M["sr.localBytesRead"]],
            "recordsRead": m[M["sr.recordsRead"]],
            "remoteReqsDuration": m[M["sr.remoteReqsDuration"]],
            "shufflePushReadMetrics": {name: m[M["push." + name]] for name in _PUSH},
        },
        "shuffleWriteMetrics": {"bytesWritten": m[M["sw.bytesWritten"]], "writeTime": m[M["sw.writeTime"]],
                                "recordsWritten": m[M["sw.recordsWritten"]]},
    }


#: ``LiveEntityHelpers.makeNegative`` (4.0.1) hands ``createMetrics`` these arguments out of
#: order, so for a task that is not SUCCESS the SHS stores, and ``TaskDataWrapper.toApi``
#: shows, field <- the value of source. (Read from the bytecode; seen on a KILLED task.)
_NOT_SUCCESS_SOURCE = {
    "out.bytesWritten": "push.corruptMergedBlockChunks",
    "out.recordsWritten": "push.mergedFetchFallbackCount",
    "sr.remoteBlocksFetched": "push.remoteMergedBlocksFetched",
    "sr.localBlocksFetched": "push.localMergedBlocksFetched",
    "sr.fetchWaitTime": "push.remoteMergedChunksFetched",
    "sr.remoteBytesRead": "push.localMergedChunksFetched",
    "sr.remoteBytesReadToDisk": "push.remoteMergedBytesRead",
    "sr.localBytesRead": "push.localMergedBytesRead",
    "sr.recordsRead": "sr.remoteReqsDuration",
    "push.corruptMergedBlockChunks": "push.remoteMergedReqsDuration",
    "push.mergedFetchFallbackCount": "out.bytesWritten",
    "push.remoteMergedBlocksFetched": "out.recordsWritten",
    "push.localMergedBlocksFetched": "sr.remoteBlocksFetched",
    "push.remoteMergedChunksFetched": "sr.localBlocksFetched",
    "push.localMergedChunksFetched": "sr.fetchWaitTime",
    "push.remoteMergedBytesRead": "sr.remoteBytesRead",
    "push.localMergedBytesRead": "sr.remoteBytesReadToDisk",
    "sr.remoteReqsDuration": "sr.localBytesRead",
    "push.remoteMergedReqsDuration": "sr.recordsRead",
}


def _as_shs_stores(m: list[int], status: str) -> list[int]:
    if status == "SUCCESS" or not releases.shifted_failed_task_metrics():
        return m
    out = list(m)
    for field_name, source in _NOT_SUCCESS_SOURCE.items():
        out[M[field_name]] = m[M[source]]
    return out


def task(t: Task, state: AppState) -> dict[str, Any]:
    dur = task_duration(t, state.last_update_time)
    fs = fetch_start(t)
    status = t.status
    sched = 0
    if status in ("FAILED", "KILLED", "SUCCESS") and t.metrics is not None and dur > 0:
        sched = scheduler_delay(t.launch_time, fs, dur, t.metrics[M["executorDeserializeTime"]],
                                t.metrics[M["resultSerializationTime"]], t.metrics[M["executorRunTime"]])
    ex = state.executors.get(t.executor_id)
    return drop_none({
        "taskId": t.task_id,
        "index": t.index,
        "attempt": t.attempt,
        "partitionId": t.partition_id,
        "launchTime": format_date(t.launch_time),
        "resultFetchStart": format_date(fs) if fs > 0 else None,
        "duration": dur if dur > 0 else None,
        "executorId": t.executor_id,
        "host": t.host,
        "status": status,
        "taskLocality": t.locality,
        "speculative": t.speculative,
        "accumulatorUpdates": accumulators(t.accumulables),
        "errorMessage": t.error_message,
        "taskMetrics": task_metrics(_as_shs_stores(t.metrics, status)) if t.metrics is not None else None,
        "executorLogs": dict(ex.executor_logs) if ex is not None else {},
        "schedulerDelay": sched,
        "gettingResultTime": getting_result_time(t.launch_time, fs, dur if dur > 0 else -1),
    })


def executor_stage_summary(s: ExecutorStageSummary) -> dict[str, Any]:
    m = s.metrics
    return drop_none({
        "taskTime": s.task_time,
        "failedTasks": s.failed_tasks,
        "succeededTasks": s.succeeded_tasks,
        "killedTasks": s.killed_tasks,
        "inputBytes": m[M["in.bytesRead"]],
        "inputRecords": m[M["in.recordsRead"]],
        "outputBytes": m[M["out.bytesWritten"]],
        "outputRecords": m[M["out.recordsWritten"]],
        "shuffleRead": m[M["sr.remoteBytesRead"]] + m[M["sr.localBytesRead"]],
        "shuffleReadRecords": m[M["sr.recordsRead"]],
        "shuffleWrite": m[M["sw.bytesWritten"]],
        "shuffleWriteRecords": m[M["sw.recordsWritten"]],
        "memoryBytesSpilled": m[M["memoryBytesSpilled"]],
        "diskBytesSpilled": m[M["diskBytesSpilled"]],
        "isBlacklistedForStage": s.excluded,
        "peakMemoryMetrics": peaks(s.peaks),
        "isExcludedForStage": s.excluded,
    })


def executor(ex: Executor, state: AppState) -> dict[str, Any]:
    memory = None
    if ex.total_on_heap >= 0:
        memory = {"usedOnHeapStorageMemory": ex.used_on_heap, "usedOffHeapStorageMemory": ex.used_off_heap,
                  "totalOnHeapStorageMemory": ex.total_on_heap, "totalOffHeapStorageMemory": ex.total_off_heap}
    peak = peaks(ex.peaks)
    total_duration, total_gc = ex.total_duration, ex.total_gc_time
    if ex.executor_id == "driver":
        # AppStatusStore.replaceExec: the driver shows the app's run time and its GC peak.
        if peak is not None:
            total_gc = peak["TotalGCTime"]
        if state.start_time != -1 or state.end_time != -1:
            if state.end_time < 0:  # running: the SHS uses the wall clock of the request
                total_duration = int(time.time() * 1000) - state.start_time
            else:
                total_duration = state.end_time - state.start_time
    excluded = sorted(ex.excluded_in_stages)
    return drop_none({
        "id": ex.executor_id,
        "hostPort": ex.host_port if ex.host_port is not None else ex.host,
        "isActive": ex.is_active,
        "rddBlocks": ex.rdd_blocks,
        "memoryUsed": ex.memory_used,
        "diskUsed": ex.disk_used,
        "totalCores": ex.total_cores,
        "maxTasks": ex.max_tasks,
        "activeTasks": ex.active_tasks,
        "failedTasks": ex.failed_tasks,
        "completedTasks": ex.completed_tasks,
        "totalTasks": ex.total_tasks,
        "totalDuration": total_duration,
        "totalGCTime": total_gc,
        "totalInputBytes": ex.total_input_bytes,
        "totalShuffleRead": ex.total_shuffle_read,
        "totalShuffleWrite": ex.total_shuffle_write,
        "isBlacklisted": ex.is_excluded,
        "maxMemory": ex.max_memory,
        "addTime": format_date(ex.add_time),
        "removeTime": _date(ex.remove_time),
        "removeReason": ex.remove_reason,
        "executorLogs": dict(ex.executor_logs),
        "memoryMetrics": memory,
        "blacklistedInStages": excluded,
        "peakMemoryMetrics": peak,
        "attributes": dict(ex.attributes),
        "resources": {k: dict(v) for k, v in ex.resources.items()},
        "resourceProfileId": ex.resource_profile_id,
        "isExcluded": ex.is_excluded,
        "excludedInStages": excluded,
    })


def process(p: Process) -> dict[str, Any]:
    return drop_none({
        "id": p.process_id,
        "hostPort": p.host_port,
        "isActive": p.is_active,
        "totalCores": p.total_cores,
        "addTime": format_date(p.add_time),
        "processLogs": dict(p.process_logs),
    })


def _storage_level(use_disk: bool, use_memory: bool, off_heap: bool, deserialized: bool, replication: int) -> str:
    """``StorageLevel.description``."""
    result = ""
    result += "Disk " if use_disk else ""
    if use_memory:
        result += "Memory (off heap) " if off_heap else "Memory "
    result += "Deserialized " if deserialized else "Serialized "
    result += f"{replication}x Replicated"
    return result


def rdd(r: RDD, state: AppState) -> dict[str, Any]:
    dists = []
    for executor_id, d in r.distributions.items():
        ex = state.executors.get(executor_id)
        if ex is None:
            continue
        mem_info = ex.has_memory_info
        remaining = d.remaining or (ex.max_memory - ex.memory_used,
                                    ex.total_on_heap - ex.used_on_heap if mem_info else None,
                                    ex.total_off_heap - ex.used_off_heap if mem_info else None)
        dists.append(drop_none({
            "address": ex.host_port if ex.host_port is not None else ex.host,
            "memoryUsed": d.memory_used,
            "memoryRemaining": remaining[0],
            "diskUsed": d.disk_used,
            "onHeapMemoryUsed": d.on_heap_used if mem_info else None,
            "offHeapMemoryUsed": d.off_heap_used if mem_info else None,
            "onHeapMemoryRemaining": remaining[1],
            "offHeapMemoryRemaining": remaining[2],
        }))
    parts = []
    for p in r.partitions.values():
        level = _storage_level(p.disk_used > 0, p.memory_used > 0, r.use_off_heap,
                               r.deserialized if p.memory_used > 0 else False, len(p.executors))
        parts.append({"blockName": p.block_name, "storageLevel": level, "memoryUsed": p.memory_used,
                      "diskUsed": p.disk_used, "executors": list(p.executors)})
    return drop_none({
        "id": r.rdd_id,
        "name": r.name,
        "numPartitions": r.num_partitions,
        "numCachedPartitions": len(r.partitions),
        "storageLevel": _storage_level(r.use_disk, r.use_memory, r.use_off_heap, r.deserialized, r.replication),
        "memoryUsed": r.memory_used,
        "diskUsed": r.disk_used,
        "dataDistribution": dists if r.distributions else None,
        "partitions": parts,
    })


REDACTED = "*********(redacted)"


def _redactor(regex: str | None) -> Callable[[list[tuple[str, str]]], list[list[str]]]:
    """Pairs sorted by key, a value redacted when its key or itself matches ``spark.redaction.regex``
    (by default the SHS's default, ``releases.redaction_regex``)."""
    pattern = re.compile(regex if regex is not None else releases.redaction_regex())

    def redact(pairs: list[tuple[str, str]]) -> list[list[str]]:
        out = [[k, REDACTED if pattern.search(k) or pattern.search(v) else v] for k, v in pairs]
        return sorted(out, key=lambda kv: kv[0])

    return redact


def spark_properties(state: AppState, regex: str | None = None) -> list[list[str]]:
    """``environment(state)["sparkProperties"]``, without redacting the other sections (Hadoop's are ~1,000 pairs)."""
    return _redactor(regex)(state.env.get("Spark Properties", []))


def environment(state: AppState, regex: str | None = None) -> dict[str, Any]:
    """``regex``: ``spark.redaction.regex``; by default the SHS's default (``releases.redaction_regex``)."""
    redact = _redactor(regex)
    profiles = []
    for rp_id in sorted(state.resource_profiles):
        rp = state.resource_profiles[rp_id]
        profiles.append({
            "id": rp_id,
            "executorResources": {k: {"resourceName": v.get("Resource Name", k), "amount": int(v.get("Amount", 0)),
                                      "discoveryScript": v.get("Discovery Script", ""),
                                      "vendor": v.get("Vendor", "")}
                                  for k, v in rp["executor"].items()},
            "taskResources": {k: {"resourceName": v.get("Resource Name", k), "amount": float(v.get("Amount", 0))}
                              for k, v in rp["task"].items()},
        })
    return {
        "runtime": drop_none(dict(state.runtime)),
        "sparkProperties": redact(state.env.get("Spark Properties", [])),
        "hadoopProperties": redact(state.env.get("Hadoop Properties", [])),
        "systemProperties": redact(state.env.get("System Properties", [])),
        "metricsProperties": redact(state.env.get("Metrics Properties", [])),
        "classpathEntries": sorted(([k, v] for k, v in state.env.get("Classpath Entries", [])),
                                   key=lambda kv: kv[0]),
        "resourceProfiles": profiles,
    }


def execution(x: SQLExecution, details: bool, plan_description: bool, now_ms: int) -> dict[str, Any]:
    # ``exec.jobs.foreach``: a Scala immutable Map[Int, _] (insertion order up to 4 jobs, then hash order)
    job_ids = int_order(x.jobs)
    running = [j for j in job_ids if x.jobs[j] == "RUNNING"]
    completed = [j for j in job_ids if x.jobs[j] == "SUCCEEDED"]
    failed = [j for j in job_ids if x.jobs[j] == "FAILED"]
    end = x.completion_time if x.completion_time is not None else now_ms
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, int]] = []
    if details:
        with_desc = releases.sql_node_desc()
        values = x.metric_values or {}
        all_nodes = x.graph.all_nodes()
        wscg: dict[int, int | None] = {}
        for node in all_nodes:
            name = node.name.strip()
            if name.startswith("WholeStageCodegen") and node.cluster_nodes is not None:
                try:
                    cid: int | None = int(name[len("WholeStageCodegen ("):-1])
                except ValueError:
                    cid = None
                for child in node.cluster_nodes:
                    wscg[child.node_id] = cid
        for node in all_nodes:
            metrics = []
            for mname, acc_id, _t in node.metrics:
                value = values.get(acc_id)
                if value is not None:
                    metrics.append({"name": mname.strip(), "value": value[1:] if value.startswith("\n") else value})
            nodes.append(drop_none({"nodeId": node.node_id, "nodeName": node.name.strip(),
                                    "wholeStageCodegenId": wscg.get(node.node_id), "metrics": metrics,
                                    "desc": node.desc if with_desc else None}))
        nodes.sort(key=lambda n: n["nodeId"], reverse=True)
        edges = [{"fromId": a, "toId": b} for a, b in x.graph.edges]
    answer: dict[str, Any] = {
        "id": x.execution_id,
        "status": x.status,
        "description": x.description,
        "planDescription": x.plan_description if plan_description else "",
        "submissionTime": format_date(x.submission_time),
        "duration": end - x.submission_time,
        "runningJobIds": running,
        "successJobIds": completed,
        "failedJobIds": failed,
        "nodes": nodes,
        "edges": edges,
    }
    if releases.sql_query_fields():  # null queryId / errorMessage are left out, as Jackson does
        if x.query_id is not None:
            answer["queryId"] = x.query_id
        if x.error_message is not None:
            answer["errorMessage"] = x.error_message
        answer["rootExecutionId"] = x.root_execution_id if x.root_execution_id is not None else 0
    if releases.sql_modified_configs() and x.modified_configs is not None:
        # a Scala immutable Map[String, String], in its iteration order
        answer["modifiedConfigs"] = {k: x.modified_configs[k] for k in string_order(x.modified_configs)}
    return answer
