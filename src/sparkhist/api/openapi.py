"""The OpenAPI 3.1 description of ``/api/v1``, served at ``/openapi.json``.

Written from the SHS's REST model (``api.scala``, SHS_REFERENCE §1) and from what
``sparkhist.api.v1`` answers: every endpoint, its path and query parameters, and the
schema of each answer, errors included (their bodies are the SHS's: plain text, or
Jetty's HTML pages). Objects are closed (``additionalProperties: false``) and list the
keys always present as required, so an answer that gains, loses or retypes a field no
longer matches: ``tests/api/test_openapi.py`` checks the recorded answers of the real
SHS 4.0.1 and sparkhist's own against it, and ``tests/api/test_fuzz_api.py`` drives the
API from it with schemathesis.

Per-application resources are described twice, once below ``/applications/{appId}``
and once below ``/applications/{appId}/{attemptId}`` (YARN cluster mode's named
attempts), since OpenAPI has no optional path segment.
"""

from __future__ import annotations

from typing import Any

from sparkhist import SPARK_VERSION, __version__
from sparkhist.api.v1.dispatch import APP_RESOURCES
from sparkhist.api.v1.params import MAX_QUANTILES

Schema = dict[str, Any]

INT = {"type": "integer", "format": "int32"}
LONG = {"type": "integer", "format": "int64"}
DOUBLE = {"type": "number", "format": "double"}
STRING = {"type": "string"}
BOOL = {"type": "boolean"}
DATE = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}GMT$",
        "description": "``yyyy-MM-dd'T'HH:mm:ss.SSS'GMT'`` (an unset time is ``1969-12-31T23:59:59.999GMT``)."}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def mapping(values: Schema) -> Schema:
    return {"type": "object", "additionalProperties": values}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None, description: str = "") -> Schema:
    """A closed object: ``required`` keys always present, ``optional`` ones when set (Spark's ``Option``)."""
    out: Schema = {"type": "object", "properties": {**required, **(optional or {})},
                   "required": list(required), "additionalProperties": False}
    if description:
        out["description"] = description
    return out


def _longs(*names: str) -> dict[str, Schema]:
    return dict.fromkeys(names, LONG)


def _ints(*names: str) -> dict[str, Schema]:
    return dict.fromkeys(names, INT)


def _dists(*names: str) -> dict[str, Schema]:
    return dict.fromkeys(names, array(DOUBLE))


_PUSH = ("corruptMergedBlockChunks", "mergedFetchFallbackCount", "remoteMergedBlocksFetched", "localMergedBlocksFetched",
         "remoteMergedChunksFetched", "localMergedChunksFetched", "remoteMergedBytesRead", "localMergedBytesRead",
         "remoteMergedReqsDuration")

SCHEMAS: dict[str, Schema] = {
    "VersionInfo": obj({"spark": STRING}),
    "ApplicationInfo": obj(
        {"id": STRING, "attempts": array(ref("ApplicationAttemptInfo"))},
        {"name": STRING, **_ints("coresGranted", "maxCores", "coresPerExecutor", "memoryPerExecutorMB")},
        "The four cores/memory fields are always absent on the SHS (FsHistoryProvider sets them to None)."),
    "ApplicationAttemptInfo": obj(
        {"startTime": DATE, "endTime": DATE, "lastUpdated": DATE, "duration": LONG, "completed": BOOL,
         **_longs("startTimeEpoch", "endTimeEpoch", "lastUpdatedEpoch")},
        {"attemptId": STRING, "sparkUser": STRING, "appSparkVersion": STRING, "exitCode": INT,
         "logSourceName": STRING, "logSourceFullPath": STRING},
        "``exitCode`` (4.3), ``logSourceName`` and ``logSourceFullPath`` (4.2): see ``sparkhist.releases``."),
    "JobData": obj(
        {"jobId": INT, "name": STRING, "stageIds": array(INT), "jobTags": array(STRING),
         "status": {"type": "string", "enum": ["RUNNING", "SUCCEEDED", "FAILED", "UNKNOWN"]},
         **_ints("numTasks", "numActiveTasks", "numCompletedTasks", "numSkippedTasks", "numFailedTasks",
                 "numKilledTasks", "numCompletedIndices", "numActiveStages", "numCompletedStages",
                 "numSkippedStages", "numFailedStages"),
         "killedTasksSummary": mapping(INT)},
        {"description": STRING, "submissionTime": DATE, "completionTime": DATE, "jobGroup": STRING}),
    "StageData": obj(
        {"status": {"type": "string", "enum": ["ACTIVE", "COMPLETE", "PENDING", "FAILED", "SKIPPED"]},
         **_ints("stageId", "attemptId", "numTasks", "numActiveTasks", "numCompleteTasks", "numFailedTasks",
                 "numKilledTasks", "numCompletedIndices"),
         **_longs("executorDeserializeTime", "executorDeserializeCpuTime", "executorRunTime", "executorCpuTime",
                  "resultSize", "jvmGcTime", "resultSerializationTime", "memoryBytesSpilled", "diskBytesSpilled",
                  "peakExecutionMemory", "inputBytes", "inputRecords", "outputBytes", "outputRecords",
                  "shuffleRemoteBlocksFetched", "shuffleLocalBlocksFetched", "shuffleFetchWaitTime",
                  "shuffleRemoteBytesRead", "shuffleRemoteBytesReadToDisk", "shuffleLocalBytesRead",
                  "shuffleReadBytes", "shuffleReadRecords", "shuffleCorruptMergedBlockChunks",
                  "shuffleMergedFetchFallbackCount", "shuffleMergedRemoteBlocksFetched",
                  "shuffleMergedLocalBlocksFetched", "shuffleMergedRemoteChunksFetched",
                  "shuffleMergedLocalChunksFetched", "shuffleMergedRemoteBytesRead", "shuffleMergedLocalBytesRead",
                  "shuffleRemoteReqsDuration", "shuffleMergedRemoteReqsDuration", "shuffleWriteBytes",
                  "shuffleWriteTime", "shuffleWriteRecords"),
         "name": STRING, "details": STRING, "schedulingPool": STRING, "rddIds": array(INT),
         "accumulatorUpdates": array(ref("AccumulableInfo")), "killedTasksSummary": mapping(INT),
         "resourceProfileId": INT, "isShufflePushEnabled": BOOL, "shuffleMergersCount": INT},
        {"submissionTime": DATE, "firstTaskLaunchedTime": DATE, "completionTime": DATE, "failureReason": STRING,
         "description": STRING,
         "tasks": {**mapping(ref("TaskData")), "description": "With ``details=true``: task id -> task."},
         "executorSummary": {**mapping(ref("ExecutorStageSummary")), "description": "With ``details=true``."},
         "speculationSummary": ref("SpeculationStageSummary"), "peakExecutorMetrics": ref("ExecutorMetrics"),
         "taskMetricsDistributions": ref("TaskMetricDistributions"),
         "executorMetricsDistributions": ref("ExecutorMetricsDistributions")}),
    "AccumulableInfo": obj({"id": LONG}, {"name": STRING, "update": STRING, "value": STRING}),
    "SpeculationStageSummary": obj(_ints("numTasks", "numActiveTasks", "numCompletedTasks", "numFailedTasks",
                                         "numKilledTasks")),
    "ExecutorMetrics": {**mapping(LONG), "description": "Executor metric name (``JVMHeapMemory``...) -> value."},
    "TaskData": obj(
        {"taskId": LONG, **_ints("index", "attempt", "partitionId"), "launchTime": DATE, "executorId": STRING,
         "host": STRING, "status": STRING, "taskLocality": STRING, "speculative": BOOL,
         "accumulatorUpdates": array(ref("AccumulableInfo")), "executorLogs": mapping(STRING),
         "schedulerDelay": LONG, "gettingResultTime": LONG},
        {"resultFetchStart": DATE, "duration": LONG, "errorMessage": STRING, "taskMetrics": ref("TaskMetrics")}),
    "TaskMetrics": obj(
        {**_longs("executorDeserializeTime", "executorDeserializeCpuTime", "executorRunTime", "executorCpuTime",
                  "resultSize", "jvmGcTime", "resultSerializationTime", "memoryBytesSpilled", "diskBytesSpilled",
                  "peakExecutionMemory"),
         "inputMetrics": obj(_longs("bytesRead", "recordsRead")),
         "outputMetrics": obj(_longs("bytesWritten", "recordsWritten")),
         "shuffleReadMetrics": obj({
             **_longs("remoteBlocksFetched", "localBlocksFetched", "fetchWaitTime", "remoteBytesRead",
                      "remoteBytesReadToDisk", "localBytesRead", "recordsRead", "remoteReqsDuration"),
             "shufflePushReadMetrics": obj(_longs(*_PUSH))}),
         "shuffleWriteMetrics": obj(_longs("bytesWritten", "writeTime", "recordsWritten"))}),
    "TaskMetricDistributions": obj(
        {"quantiles": array(DOUBLE),
         **_dists("duration", "executorDeserializeTime", "executorDeserializeCpuTime", "executorRunTime",
                  "executorCpuTime", "resultSize", "jvmGcTime", "resultSerializationTime", "gettingResultTime",
                  "schedulerDelay", "peakExecutionMemory", "memoryBytesSpilled", "diskBytesSpilled"),
         "inputMetrics": obj(_dists("bytesRead", "recordsRead")),
         "outputMetrics": obj(_dists("bytesWritten", "recordsWritten")),
         "shuffleReadMetrics": obj({
             **_dists("readBytes", "readRecords", "remoteBlocksFetched", "localBlocksFetched", "fetchWaitTime",
                      "remoteBytesRead", "remoteBytesReadToDisk", "totalBlocksFetched", "remoteReqsDuration"),
             "shufflePushReadMetricsDist": obj(_dists(*_PUSH))}),
         "shuffleWriteMetrics": obj(_dists("writeBytes", "writeRecords", "writeTime"))},
        description="One value per requested quantile (sorted) for each metric."),
    "ExecutorMetricsDistributions": obj(
        {"quantiles": array(DOUBLE),
         **_dists("taskTime", "failedTasks", "succeededTasks", "killedTasks", "inputBytes", "inputRecords",
                  "outputBytes", "outputRecords", "shuffleRead", "shuffleReadRecords", "shuffleWrite",
                  "shuffleWriteRecords", "memoryBytesSpilled", "diskBytesSpilled"),
         "peakMemoryMetrics": mapping(array(DOUBLE))}),
    "ExecutorStageSummary": obj(
        {"taskTime": LONG, **_ints("failedTasks", "succeededTasks", "killedTasks"),
         **_longs("inputBytes", "inputRecords", "outputBytes", "outputRecords", "shuffleRead", "shuffleReadRecords",
                  "shuffleWrite", "shuffleWriteRecords", "memoryBytesSpilled", "diskBytesSpilled"),
         "isBlacklistedForStage": BOOL, "isExcludedForStage": BOOL},
        {"peakMemoryMetrics": ref("ExecutorMetrics")}),
    "ExecutorSummary": obj(
        {"id": STRING, "hostPort": STRING, "isActive": BOOL, "rddBlocks": INT, "memoryUsed": LONG, "diskUsed": LONG,
         **_ints("totalCores", "maxTasks", "activeTasks", "failedTasks", "completedTasks", "totalTasks"),
         **_longs("totalDuration", "totalGCTime", "totalInputBytes", "totalShuffleRead", "totalShuffleWrite"),
         "isBlacklisted": BOOL, "maxMemory": LONG, "addTime": DATE, "executorLogs": mapping(STRING),
         "blacklistedInStages": array(INT), "attributes": mapping(STRING),
         "resources": mapping(obj({"name": STRING, "addresses": array(STRING)})),
         "resourceProfileId": INT, "isExcluded": BOOL, "excludedInStages": array(INT)},
        {"removeTime": DATE, "removeReason": STRING,
         "memoryMetrics": obj(_longs("usedOnHeapStorageMemory", "usedOffHeapStorageMemory", "totalOnHeapStorageMemory",
                                     "totalOffHeapStorageMemory")),
         "peakMemoryMetrics": ref("ExecutorMetrics")}),
    "ProcessSummary": obj(
        {"id": STRING, "hostPort": STRING, "isActive": BOOL, "totalCores": INT, "addTime": DATE,
         "processLogs": mapping(STRING)},
        {"removeTime": DATE}),
    "RDDStorageInfo": obj(
        {"id": INT, "name": STRING, "numPartitions": INT, "numCachedPartitions": INT, "storageLevel": STRING,
         "memoryUsed": LONG, "diskUsed": LONG},
        {"dataDistribution": array(obj(
            {"address": STRING, **_longs("memoryUsed", "memoryRemaining", "diskUsed")},
            _longs("onHeapMemoryUsed", "offHeapMemoryUsed", "onHeapMemoryRemaining", "offHeapMemoryRemaining"))),
         "partitions": array(obj({"blockName": STRING, "storageLevel": STRING, "memoryUsed": LONG, "diskUsed": LONG,
                                  "executors": array(STRING)}))}),
    "ApplicationEnvironmentInfo": obj({
        "runtime": obj({}, {"javaVersion": STRING, "javaHome": STRING, "scalaVersion": STRING}),
        **dict.fromkeys(("sparkProperties", "hadoopProperties", "systemProperties", "metricsProperties",
                         "classpathEntries"), array(ref("Pair"))),
        "resourceProfiles": array(obj({
            "id": INT,
            "executorResources": mapping(obj({"resourceName": STRING, "amount": LONG, "discoveryScript": STRING,
                                              "vendor": STRING})),
            "taskResources": mapping(obj({"resourceName": STRING, "amount": DOUBLE}))}))},
        description="Values matching ``spark.redaction.regex`` are redacted; lists are sorted by key."),
    "Pair": {"type": "array", "prefixItems": [STRING, STRING], "minItems": 2, "maxItems": 2,
             "description": "A Scala tuple: ``[key, value]``."},
    "ExecutionData": obj({
        "id": LONG, "status": STRING, "description": STRING, "planDescription": STRING, "submissionTime": DATE,
        "duration": LONG, "runningJobIds": array(INT), "successJobIds": array(INT), "failedJobIds": array(INT),
        "nodes": array(obj({"nodeId": LONG, "nodeName": STRING, "metrics": array(obj({"name": STRING, "value": STRING}))},
                           {"wholeStageCodegenId": LONG, "desc": STRING})),
        "edges": array(obj({"fromId": LONG, "toId": LONG}))},
        {"queryId": STRING, "errorMessage": STRING, "rootExecutionId": LONG, "modifiedConfigs": mapping(STRING)},
        "``queryId``, ``errorMessage``, ``rootExecutionId`` (4.2), ``modifiedConfigs`` and nodes' ``desc`` (4.3)."),
    "TaskTable": obj({"aaData": array(ref("TaskData")), "recordsTotal": {"type": ["string", "integer"]},
                      "recordsFiltered": {"type": ["string", "integer"]}},
                     description="The stage page's DataTables answer (UI-internal)."),
}

# ---------------------------------------------------------------------------------- answers
_TEXT = {"text/plain": {"schema": STRING}}
_HTML = {"text/html": {"schema": STRING}}

_REFUSED = {
    "400": {"description": "A path with an encoded NUL (``%00``) or a broken escape: Jetty's ``Bad Message 400``. "
                           "For a bad parameter, the SHS's plain-text message.", "content": {**_HTML}},
    "414": {"description": "A request target over 8 KiB: Jetty's ``Bad Message 414``.", "content": _HTML},
}
_NOT_FOUND = {"404": {"description": "Plain text (``unknown app: <id>``, ``no such app: <id>``, ``unknown job: N``...), "
                                     "or Jetty's HTML page when a path segment or parameter fails Jersey's conversion "
                                     "(``?status=bogus``, ``jobs/2147483648``).",
                      "content": {**_TEXT, **_HTML}}}
_UNAVAILABLE = {"503": {"description": "The application's data changed three times while answering; ask again.",
                        "content": _TEXT}}


def _ok(schema: Schema, description: str) -> dict[str, Any]:
    return {"200": {"description": description, "content": {"application/json": {"schema": schema}}}}


def _with_bad_parameter(responses: dict[str, Any], message: str) -> dict[str, Any]:
    bad = dict(responses["400"])
    bad["content"] = {**bad["content"], **_TEXT}
    bad["description"] = f"{bad['description']} {message}"
    return {**responses, "400": bad}


def _server_error(reason: str) -> dict[str, Any]:
    return {"500": {"description": f"Jetty's HTML 500 page, as the SHS fails the request: {reason}", "content": _HTML}}


# ---------------------------------------------------------------------------------- parameters
def _query(name: str, schema: Schema, description: str, *, explode: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schema,
                           "description": description}
    if schema.get("type") == "array":
        out.update(style="form", explode=explode)
    return out


def _path(name: str, schema: Schema, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def _enum_list(values: list[str], description: str) -> Schema:
    return {"type": "array", "items": {"type": "string", "enum": values}, "description": description}


def _case_variants(*values: str) -> list[str]:
    return [v for value in values for v in (value, value.lower())]


_DIGITS = {"type": "string", "pattern": r"^[0-9]+$"}
APP_ID = _path("appId", STRING, "The application id. An id over 255 characters or holding a control character "
                                "is never looked up in the log directory (404 ``unknown app``).")
ATTEMPT_ID = _path("attemptId", {"type": "string", "not": {"enum": sorted(APP_RESOURCES)}},
                   "The attempt id (YARN cluster mode: ``1``, ``2``...); a resource's name is that resource.")
STAGE_ID = _path("stageId", _DIGITS, "``\\d+`` within a Java int; anything else is Jersey's 404 page.")
STAGE_ATTEMPT_ID = _path("stageAttemptId", _DIGITS, "``\\d+`` within a Java int.")
QUANTILES_DOC = (f"Comma-separated Java doubles (spaces trimmed); at most {MAX_QUANTILES}, each finite and in [0, 1], "
                 "else 400. Beyond the SHS, which takes any count and NaN.")


def _quantiles(default: str) -> dict[str, Any]:
    schema = {"type": "array", "items": {"type": "number", "minimum": 0, "maximum": 1}, "maxItems": MAX_QUANTILES}
    return _query("quantiles", schema, f"{QUANTILES_DOC} Default ``{default}``.", explode=False)


_TASK_STATUS = _case_variants("RUNNING", "KILLED", "FAILED", "SUCCESS", "UNKNOWN")
_STAGE_DETAIL_PARAMS = [
    _query("taskStatus", _enum_list(_TASK_STATUS, ""), "Only tasks in these states (with ``details=true``)."),
    _query("withSummaries", BOOL, "Add ``taskMetricsDistributions`` and ``executorMetricsDistributions`` (false)."),
]


def _int_query(name: str, description: str, minimum: int | None = None) -> dict[str, Any]:
    schema: Schema = dict(INT)
    if minimum is not None:
        schema["minimum"] = minimum
    return _query(name, schema, description)


def _operation(op_id: str, summary: str, responses: dict[str, Any], parameters: list[dict[str, Any]] | None = None,
               tags: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op_id, "summary": summary, "responses": responses}
    if parameters:
        out["parameters"] = parameters
    if tags:
        out["tags"] = list(tags)
    return out


def _app_resources(base: str, params: list[dict[str, Any]], suffix: str) -> dict[str, Any]:
    """The resources below one application (``base`` is its path, ``params`` its path parameters)."""
    app_errors = {**_REFUSED, **_NOT_FOUND, **_UNAVAILABLE}
    stage_detail = [*params, STAGE_ID]
    attempt_detail = [*stage_detail, STAGE_ATTEMPT_ID]
    stage_responses = _with_bad_parameter(app_errors, "Bad quantiles: ``Bad value for parameter \"quantiles\"...``.")
    streaming = "Only for DStreams applications, which sparkhist does not serve: always 404 " \
                "``no streaming listener attached to <name>``, as the SHS answers for other applications."
    paths: dict[str, Any] = {
        f"{base}/jobs": _operation(f"jobs{suffix}", "Jobs, by job id descending.", {
            **_ok(array(ref("JobData")), "The jobs."), **app_errors},
            [*params, _query("status", _enum_list(_case_variants("RUNNING", "SUCCEEDED", "FAILED", "UNKNOWN"), ""),
                             "Only jobs in these states (case-insensitive, repeatable).")]),
        f"{base}/jobs/{{jobId}}": _operation(f"job{suffix}", "One job.", {
            **_ok(ref("JobData"), "The job."), **app_errors},
            [*params, _path("jobId", _DIGITS, "``\\d+`` within a Java int.")]),
        f"{base}/stages": _operation(f"stages{suffix}", "Stage attempts, by stage id descending.", {
            **_ok(array(ref("StageData")), "The stage attempts."), **stage_responses},
            [*params, _query("status", _enum_list(_case_variants("ACTIVE", "COMPLETE", "PENDING", "FAILED", "SKIPPED"),
                                                  ""), "Only stages in these states."),
             _query("details", BOOL, "Add ``tasks`` and ``executorSummary`` (false)."), *_STAGE_DETAIL_PARAMS,
             _quantiles("0.0,0.25,0.5,0.75,1.0")]),
        f"{base}/stages/{{stageId}}": _operation(f"stage{suffix}", "Every attempt of one stage.", {
            **_ok(array(ref("StageData")), "The attempts."), **stage_responses},
            [*stage_detail, _query("details", BOOL, "Add ``tasks`` and ``executorSummary`` (true)."),
             *_STAGE_DETAIL_PARAMS, _quantiles("0.0,0.25,0.5,0.75,1.0")]),
        f"{base}/stages/{{stageId}}/{{stageAttemptId}}": _operation(f"stageAttempt{suffix}", "One stage attempt.", {
            **_ok(ref("StageData"), "The stage attempt."), **stage_responses},
            [*attempt_detail, _query("details", BOOL, "Add ``tasks`` and ``executorSummary`` (true)."),
             *_STAGE_DETAIL_PARAMS, _quantiles("0.0,0.25,0.5,0.75,1.0")]),
        f"{base}/stages/{{stageId}}/{{stageAttemptId}}/taskSummary": _operation(
            f"taskSummary{suffix}", "Quantiles of the attempt's task metrics.", {
                **_ok(ref("TaskMetricDistributions"), "The distributions."), **stage_responses},
            [*attempt_detail, _quantiles("0.05,0.25,0.5,0.75,0.95")]),
        f"{base}/stages/{{stageId}}/{{stageAttemptId}}/taskList": _operation(
            f"taskList{suffix}", "A page of the attempt's tasks.", {
                **_ok(array(ref("TaskData")), "The tasks."), **app_errors,
                **_server_error("``length`` below 1 (``KVStoreView.max``).")},
            [*attempt_detail, _int_query("offset", "First task of the page (0)."),
             _int_query("length", "Tasks in the page (20); below 1 the SHS fails with a 500.", minimum=1),
             _query("sortBy", {"type": "string", "enum": ["ID", "id", "runtime", "-runtime", "INCREASING_RUNTIME",
                                                          "DECREASING_RUNTIME"]}, "Order (``ID``)."),
             _query("status", _enum_list(_TASK_STATUS, ""), "Only tasks in these states.")]),
        f"{base}/stages/{{stageId}}/{{stageAttemptId}}/taskTable": _operation(
            f"taskTable{suffix}", "The stage page's task table (DataTables; UI-internal).", {
                **_ok(ref("TaskTable"), "A page of tasks."), **app_errors},
            [*attempt_detail, _query("numTasks", STRING, "Echoed as ``recordsTotal``."),
             _int_query("start", "First row (0)."), _int_query("length", "Rows (all)."),
             _query("search[value]", STRING, "Only tasks whose JSON holds this text."),
             _query("columnNameToSort", STRING, "Column (``Index``)."),
             _query("order[0][dir]", {"type": "string", "enum": ["asc", "desc"]}, "Direction (``asc``).")]),
        f"{base}/executors": _operation(f"executors{suffix}", "Active executors.", {
            **_ok(array(ref("ExecutorSummary")), "The executors."), **app_errors}, params),
        f"{base}/allexecutors": _operation(f"allExecutors{suffix}", "Active and dead executors.", {
            **_ok(array(ref("ExecutorSummary")), "The executors."), **app_errors}, params),
        f"{base}/executors/{{executorId}}/threads": _operation(
            f"executorThreads{suffix}", "Thread dumps: live applications only.",
            {**_REFUSED, **_NOT_FOUND, "503": {"description": "``Thread dumps not available through the history "
                                                              "server.``", "content": _TEXT}},
            [*params, _path("executorId", STRING, "The executor id.")]),
        f"{base}/threads": _operation(
            f"taskThreads{suffix}", "A task's thread dump: live applications only.",
            {**_REFUSED, **_NOT_FOUND, "503": {"description": "``Thread dumps not available through the history "
                                                              "server.``", "content": _TEXT}},
            [*params, _query("taskId", LONG, "The task."), _query("executorId", STRING, "Its executor.")]),
        f"{base}/allmiscellaneousprocess": _operation(f"processes{suffix}", "Miscellaneous processes.", {
            **_ok(array(ref("ProcessSummary")), "The processes."), **app_errors}, params),
        f"{base}/storage/rdd": _operation(f"rdds{suffix}", "Cached RDDs.", {
            **_ok(array(ref("RDDStorageInfo")), "The RDDs."), **app_errors}, params),
        f"{base}/storage/rdd/{{rddId}}": _operation(f"rdd{suffix}", "One cached RDD.", {
            **_ok(ref("RDDStorageInfo"), "The RDD."), **app_errors},
            [*params, _path("rddId", _DIGITS, "``\\d+`` within a Java int.")]),
        f"{base}/environment": _operation(f"environment{suffix}", "The application's environment.", {
            **_ok(ref("ApplicationEnvironmentInfo"), "The environment."), **app_errors}, params),
        f"{base}/logs": _operation(f"logs{suffix}", "The event logs as a zip (all attempts without an attempt id).", {
            "200": {"description": "``Content-Disposition: attachment; filename=eventLogs-<id>[-<attempt>].zip``.",
                    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
            **_REFUSED, **_NOT_FOUND,
            "503": {"description": "``Event logs are not available for app: <id>.``", "content": _TEXT}}, params),
        f"{base}/sql": _operation(f"sqlExecutions{suffix}", "SQL executions, by id.", {
            **_ok(array(ref("ExecutionData")), "The executions."), **app_errors,
            **_server_error("``length`` below 1 (4.0.1 pages with ``KVStoreView.max``).")},
            [*params, _query("details", BOOL, "Plan nodes and edges (true)."),
             _query("planDescription", BOOL, "The physical plan's text (true)."),
             _int_query("offset", "First execution (0)."),
             _int_query("length", "Executions in the page (20).", minimum=1)]),
        f"{base}/sql/{{executionId}}": _operation(f"sqlExecution{suffix}", "One SQL execution.", {
            **_ok(ref("ExecutionData"), "The execution."), **app_errors},
            [*params, _path("executionId", _DIGITS, "``\\d+`` within a Java long."),
             _query("details", BOOL, "Plan nodes and edges (true)."),
             _query("planDescription", BOOL, "The physical plan's text (true).")]),
    }
    streaming_paths = {
        "streaming/statistics": ("streamingStatistics", []),
        "streaming/receivers": ("streamingReceivers", []),
        "streaming/receivers/{streamId}": ("streamingReceiver", [_path("streamId", _DIGITS, "A stream id.")]),
        "streaming/batches": ("streamingBatches", [_query("status", _enum_list(["COMPLETED", "QUEUED", "PROCESSING"], ""),
                                                          "Only batches in these states.")]),
        "streaming/batches/{batchId}": ("streamingBatch", [_path("batchId", _DIGITS, "A batch id.")]),
        "streaming/batches/{batchId}/operations": ("streamingOperations", [_path("batchId", _DIGITS, "A batch id.")]),
        "streaming/batches/{batchId}/operations/{outputOpId}": (
            "streamingOperation", [_path("batchId", _DIGITS, "A batch id."),
                                   _path("outputOpId", _DIGITS, "An output operation id.")]),
    }
    for tail, (op_id, extra) in streaming_paths.items():
        paths[f"{base}/{tail}"] = _operation(f"{op_id}{suffix}", streaming, {**_REFUSED, **_NOT_FOUND}, [*params, *extra])
    return paths


def _date_param(name: str, default: str) -> dict[str, Any]:
    return _query(name, STRING, f"``yyyy-MM-dd'T'HH:mm:ss.SSSz`` (any zone) or ``yyyy-MM-dd`` (GMT); default "
                                f"``{default}``. Anything else is a 400 ``Couldn't parse date: <v>``.")


def build_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document (a fresh dict)."""
    app_errors = {**_REFUSED, **_NOT_FOUND}
    list_errors = {**_REFUSED, **_NOT_FOUND, "400": {
        **_REFUSED["400"],
        "description": "A bad date: ``Couldn't parse date: <v>`` in plain text, sent (as the SHS does) with a JSON "
                       "content type. Or a refused request line (Jetty's ``Bad Message 400``).",
        "content": {**_HTML, "application/json": {}}}}
    paths: dict[str, Any] = {
        "/version": {"get": _operation("version", "The Spark version the API mirrors.",
                                       {**_ok(ref("VersionInfo"), "The version."), **_REFUSED})},
        "/applications": {"get": _operation(
            "applications", "Applications, by the end time of their attempts descending (running ones last).",
            {**_ok(array(ref("ApplicationInfo")), "The applications."), **list_errors},
            [_query("status", _enum_list(_case_variants("COMPLETED", "RUNNING"), ""),
                    "Only completed or running applications (the state of their latest attempt)."),
             _date_param("minDate", "2010-01-01"), _date_param("maxDate", "3000-01-01"),
             _date_param("minEndDate", "2010-01-01"), _date_param("maxEndDate", "3000-01-01"),
             _int_query("limit", "At most this many, after filtering (all; -1: none).")])},
        "/applications/{appId}": {"get": _operation(
            "application", "One application.", {**_ok(ref("ApplicationInfo"), "The application."), **app_errors},
            [APP_ID])},
        "/applications/{appId}/{attemptId}": {"get": _operation(
            "applicationAttempt", "One attempt of an application.",
            {**_ok(ref("ApplicationAttemptInfo"), "The attempt."), **app_errors}, [APP_ID, ATTEMPT_ID])},
    }
    for path, op in _app_resources("/applications/{appId}", [APP_ID], "").items():
        paths[path] = {"get": op}
    for path, op in _app_resources("/applications/{appId}/{attemptId}", [APP_ID, ATTEMPT_ID], "OfAttempt").items():
        paths[path] = {"get": op}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "sparkhist: the Spark History Server REST API",
            "version": __version__,
            "description": f"Apache Spark History Server's REST API v1, answer for answer (Spark {SPARK_VERSION}). "
                           "Errors have the SHS's bodies: plain text, or Jetty's HTML pages.",
        },
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {"schemas": SCHEMAS},
    }
