"""``AppStatusListener``, first half: the application, its environment and its executors.

Handles the application's start and end, the environment (not the retention limits: the
SHS replays with its own conf, :func:`sparkhist.config.retention_limits`), resource
profiles, executors and block managers coming and going,
exclusions (``*Excluded``, and their pre-3.1 ``*Blacklisted`` names) and miscellaneous
processes. Jobs, stages and tasks are :mod:`~sparkhist.state.job_listener`'s; what an
executor's removal does to cached RDDs is :mod:`~sparkhist.state.storage_listener`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sparkhist.state import events as ev
from sparkhist.state import retention
from sparkhist.state.entities import Executor, Process
from sparkhist.state.scala_order import map_from_json

if TYPE_CHECKING:
    from sparkhist.state.app_state import AppState, Handler

__all__ = ["HANDLERS"]

_STR_ONLY = frozenset((str,))


# --------------------------------------------------------------------------- application
def _log_start(s: AppState, e: dict[str, Any]) -> None:
    s.spark_version = e.get("Spark Version", "")


def _app_start(s: AppState, e: dict[str, Any]) -> None:
    s.app_id = e.get("App ID")
    s.app_name = e.get("App Name", "")
    s.attempt_id = e.get("App Attempt ID")
    s.start_time = e.get("Timestamp", -1)
    s.spark_user = e.get("User", "")
    logs = e.get("Driver Logs")
    if logs is not None:
        driver = s.live_executor("driver")
        if driver is not None:
            driver.executor_logs = map_from_json(logs)
            driver.attributes = map_from_json(e.get("Driver Attributes") or {})


def _app_end(s: AppState, e: dict[str, Any]) -> None:
    exit_code = ev.exit_code(e)
    s.end_time = e.get("Timestamp", -1)
    s.completed = True
    s.exit_code = exit_code


def _env_update(s: AppState, e: dict[str, Any]) -> None:
    jvm = e.get("JVM Information") or {}
    s.runtime = {"javaVersion": jvm.get("Java Version"), "javaHome": jvm.get("Java Home"),
                 "scalaVersion": jvm.get("Scala Version")}
    for key in ("Spark Properties", "Hadoop Properties", "System Properties",
                "Metrics Properties", "Classpath Entries"):
        value = e.get(key) or {}
        if (isinstance(value, dict) and set(map(type, value)) <= _STR_ONLY
                and set(map(type, value.values())) <= _STR_ONLY):
            s.env[key] = list(value.items())  # already (str, str): the usual case
            continue
        pairs = list(value.items()) if isinstance(value, dict) else [tuple(p) for p in value]
        s.env[key] = [(str(k), str(v)) for k, v in pairs]
    s.has_env = True
    props = dict(s.env.get("Spark Properties", []))
    try:
        s.default_cpus_per_task = int(props.get("spark.task.cpus", s.default_cpus_per_task))
    except ValueError:
        pass


def _resource_profile(s: AppState, e: dict[str, Any]) -> None:
    rp_id = e.get("Resource Profile Id", 0)
    s.resource_profiles[rp_id] = {
        "executor": e.get("Executor Resource Requests") or {},
        "task": e.get("Task Resource Requests") or {},
    }


# --------------------------------------------------------------------------- executors
def _get_or_create_executor(s: AppState, executor_id: str, add_time: int) -> Executor:
    """A dead executor that registers again becomes a new live entity (same key)."""
    ex = s.executors.get(executor_id)
    if ex is None or not ex.is_active:
        ex = Executor(executor_id, add_time)
        s.executors[executor_id] = ex
        if executor_id in s.executor_order:
            s.executor_order.remove(executor_id)
        s.executor_order.append(executor_id)
    return ex


def _executor_added(s: AppState, e: dict[str, Any]) -> None:
    info = e.get("Executor Info") or {}
    ex = _get_or_create_executor(s, e.get("Executor ID", ""), e.get("Timestamp", 0))
    ex.host = info.get("Host")
    ex.is_active = True
    ex.total_cores = info.get("Total Cores", 0)
    rp_id = info.get("Resource Profile Id", 0) or 0
    rp = s.resource_profiles.get(rp_id)
    cpus = s.default_cpus_per_task
    if rp is not None and "cpus" in rp["task"]:
        cpus = int(rp["task"]["cpus"].get("Amount", 1))
    ex.max_tasks = ex.total_cores // cpus if cpus else 0
    ex.executor_logs = map_from_json(info.get("Log Urls") or {})  # the SHS's order: see scala_order
    resources = info.get("Resources") or {}
    ex.resources = {k: {"name": v.get("name", k), "addresses": list(v.get("addresses", []))}
                    for k, v in resources.items()}
    ex.attributes = map_from_json(info.get("Attributes") or {})
    ex.resource_profile_id = rp_id


def _executor_removed(s: AppState, e: dict[str, Any]) -> None:
    ex = s.live_executor(e.get("Executor ID", ""))
    if ex is None:
        return
    ex.is_active = False
    ex.remove_time = e.get("Timestamp", 0)
    ex.remove_reason = e.get("Removed Reason")
    if any(st.live and (st.info.submission_time or 0) < (ex.remove_time or 0) for st in s.stages.values()):
        s.dead_in_live_stages.add(ex.executor_id)
    retention.cleanup_executors(s)


def _block_manager_added(s: AppState, e: dict[str, Any]) -> None:
    bm = e.get("Block Manager ID") or {}
    ex = _get_or_create_executor(s, bm.get("Executor ID", ""), e.get("Timestamp", 0))
    ex.host_port = f"{bm.get('Host')}:{bm.get('Port')}"
    if "Maximum Onheap Memory" in e and e["Maximum Onheap Memory"] is not None:
        ex.total_on_heap = e["Maximum Onheap Memory"]
        ex.total_off_heap = e.get("Maximum Offheap Memory", 0) or 0
        ex.used_on_heap = 0
        ex.used_off_heap = 0
    ex.is_active = True
    ex.max_memory = e.get("Maximum Memory", 0)


def _misc_process(s: AppState, e: dict[str, Any]) -> None:
    info = e.get("info") or {}
    pid = e.get("processId", "")
    proc = s.processes.get(pid)
    if proc is None:
        proc = s.processes[pid] = Process(pid, e.get("time", 0))
    proc.host_port = info.get("hostPort")
    proc.is_active = True
    proc.total_cores = info.get("cores", 0)
    proc.process_logs = dict(info.get("logUrlInfo") or {})


# --------------------------------------------------------------------------- exclusions
def _executor_excluded(s: AppState, e: dict[str, Any]) -> None:
    ex = s.live_executor(e.get("executorId", ""))
    if ex is not None:
        ex.is_excluded = True


def _executor_unexcluded(s: AppState, e: dict[str, Any]) -> None:
    ex = s.live_executor(e.get("executorId", ""))
    if ex is not None:
        ex.is_excluded = False


def _set_node_excluded(s: AppState, e: dict[str, Any], excluded: bool) -> None:
    host = e.get("hostId")
    for ex in s.executors.values():
        if ex.is_active and ex.hostname == host and ex.executor_id != "driver":
            ex.is_excluded = excluded


def _node_excluded(s: AppState, e: dict[str, Any]) -> None:
    _set_node_excluded(s, e, True)


def _node_unexcluded(s: AppState, e: dict[str, Any]) -> None:
    _set_node_excluded(s, e, False)


def _executor_excluded_for_stage(s: AppState, e: dict[str, Any]) -> None:
    stage = s.live_stage(e.get("stageId", 0), e.get("stageAttemptId", 0))
    executor_id = e.get("executorId", "")
    if stage is not None:
        stage.executor_summary(executor_id).excluded = True
        stage.excluded_executors.add(executor_id)
    ex = s.live_executor(executor_id)
    if ex is not None:
        ex.excluded_in_stages.add(e.get("stageId", 0))


def _node_excluded_for_stage(s: AppState, e: dict[str, Any]) -> None:
    host = e.get("hostId")
    stage = s.live_stage(e.get("stageId", 0), e.get("stageAttemptId", 0))
    if stage is not None:
        for ex in s.executors.values():
            if ex.is_active and ex.host == host and ex.executor_id != "driver":
                stage.executor_summary(ex.executor_id).excluded = True
                stage.excluded_executors.add(ex.executor_id)
    for ex in s.executors.values():
        if ex.is_active and ex.hostname == host and ex.executor_id != "driver":
            ex.excluded_in_stages.add(e.get("stageId", 0))


HANDLERS: dict[str, Handler] = {
    "SparkListenerLogStart": _log_start,
    "SparkListenerApplicationStart": _app_start,
    "SparkListenerApplicationEnd": _app_end,
    "SparkListenerEnvironmentUpdate": _env_update,
    "SparkListenerResourceProfileAdded": _resource_profile,
    "SparkListenerExecutorAdded": _executor_added,
    "SparkListenerExecutorRemoved": _executor_removed,
    "SparkListenerBlockManagerAdded": _block_manager_added,
    "SparkListenerMiscellaneousProcessAdded": _misc_process,
    "SparkListenerExecutorBlacklisted": _executor_excluded,
    "SparkListenerExecutorExcluded": _executor_excluded,
    "SparkListenerExecutorUnblacklisted": _executor_unexcluded,
    "SparkListenerExecutorUnexcluded": _executor_unexcluded,
    "SparkListenerNodeBlacklisted": _node_excluded,
    "SparkListenerNodeExcluded": _node_excluded,
    "SparkListenerNodeUnblacklisted": _node_unexcluded,
    "SparkListenerNodeUnexcluded": _node_unexcluded,
    "SparkListenerExecutorBlacklistedForStage": _executor_excluded_for_stage,
    "SparkListenerExecutorExcludedForStage": _executor_excluded_for_stage,
    "SparkListenerNodeBlacklistedForStage": _node_excluded_for_stage,
    "SparkListenerNodeExcludedForStage": _node_excluded_for_stage,
}
