"""The state of one application attempt, fed one event at a time.

``AppState.apply(event)`` is Spark's ``AppStatusListener`` + ``SQLAppStatusListener`` in
replay mode: it keeps the mutable accumulators of :mod:`sparkhist.state.entities` and
:mod:`sparkhist.state.sql`, and enforces the app's own retention limits
(``spark.ui.retained*``, read from its ``SparkListenerEnvironmentUpdate``). Unknown events
are ignored. ``finish()`` does what Spark's final store flush does (aggregate the SQL
metrics of executions still running). The object is plain picklable data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sparkhist.state import events as ev
from sparkhist.state.entities import (
    RDD,
    Executor,
    Job,
    M,
    N_METRICS,
    Process,
    RDDDistribution,
    RDDPartition,
    Speculation,
    Stage,
    Task,
    add_metrics,
    update_peaks,
)
from sparkhist.state.sql import SQLExecution, StageMetrics, aggregate_metrics, build_plan_graph

_SQL = "org.apache.spark.sql.execution.ui."
_JVM_GC_TIME, _IN_BYTES_READ = M["jvmGcTime"], M["in.bytesRead"]
_SR_LOCAL_BYTES_READ, _SR_REMOTE_BYTES_READ = M["sr.localBytesRead"], M["sr.remoteBytesRead"]
_SW_BYTES_WRITTEN = M["sw.bytesWritten"]
_STR_ONLY = frozenset((str,))


def _retain_remove_count(size: int, retained: int) -> int:
    """``calculateNumberToRemove``: at least a tenth of the limit, to reduce friction."""
    return max(retained // 10, size - retained) if size > retained else 0


@dataclass
class AppState:
    app_id: str | None = None
    app_name: str = ""
    attempt_id: str | None = None
    start_time: int = -1
    end_time: int = -1
    spark_user: str = ""
    spark_version: str = ""
    completed: bool = False
    # Environment (raw lists as logged) and resource profiles.
    runtime: dict[str, str | None] = field(default_factory=dict)
    env: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    has_env: bool = False
    resource_profiles: dict[int, dict[str, Any]] = field(default_factory=dict)
    default_cpus_per_task: int = 1
    # Retention limits.
    retained_jobs: int = 1000
    retained_stages: int = 1000
    retained_tasks: int = 100000
    retained_dead_executors: int = 100
    retained_executions: int = 1000
    # Entities.
    jobs: dict[int, Job] = field(default_factory=dict)
    stages: dict[tuple[int, int], Stage] = field(default_factory=dict)
    tasks: dict[int, Task] = field(default_factory=dict)
    executors: dict[str, Executor] = field(default_factory=dict)
    executor_order: list[str] = field(default_factory=list)
    rdds: dict[int, RDD] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)
    executions: dict[int, SQLExecution] = field(default_factory=dict)
    stage_metrics: dict[int, StageMetrics] = field(default_factory=dict)
    streaming: bool = False
    last_update_time: int | None = None
    # Bookkeeping mirrors of Spark's "live" maps.
    live_jobs: set[int] = field(default_factory=set)
    dead_in_live_stages: set[str] = field(default_factory=set)

    # ----------------------------------------------------------------- dispatch
    def apply(self, event: dict[str, Any]) -> None:
        """Update the state with one parsed event (unknown events are ignored)."""
        name = event.get("Event")
        handler = _HANDLERS.get(name) if type(name) is str else None
        if handler is not None:  # the usual case: a scheduler event named without its package
            handler(self, event)
            return
        if not isinstance(name, str):
            return
        if name.startswith(_SQL):
            name = name[len(_SQL):]
        elif name.startswith("org.apache.spark.scheduler."):
            name = name[len("org.apache.spark.scheduler."):]
        handler = _HANDLERS.get(name)
        if handler is not None:
            handler(self, event)
        elif "Streaming" in name and "Query" not in name:
            self.streaming = True

    def finish(self, last_update_time: int | None = None) -> None:
        """The final flush: aggregate the metrics of SQL executions still running."""
        if last_update_time is not None:
            self.last_update_time = last_update_time
        for execution in self.executions.values():
            if execution.live:
                execution.metric_values = aggregate_metrics(execution, self.stage_metrics)

    # ----------------------------------------------------------------- application
    def _log_start(self, e: dict[str, Any]) -> None:
        self.spark_version = e.get("Spark Version", "")

    def _app_start(self, e: dict[str, Any]) -> None:
        self.app_id = e.get("App ID")
        self.app_name = e.get("App Name", "")
        self.attempt_id = e.get("App Attempt ID")
        self.start_time = e.get("Timestamp", -1)
        self.spark_user = e.get("User", "")
        logs = e.get("Driver Logs")
        if logs is not None:
            driver = self.executors.get("driver")
            if driver is not None and driver.is_active:
                driver.executor_logs = dict(logs)
                driver.attributes = dict(e.get("Driver Attributes") or {})

    def _app_end(self, e: dict[str, Any]) -> None:
        self.end_time = e.get("Timestamp", -1)
        self.completed = True

    def _env_update(self, e: dict[str, Any]) -> None:
        jvm = e.get("JVM Information") or {}
        self.runtime = {"javaVersion": jvm.get("Java Version"), "javaHome": jvm.get("Java Home"),
                        "scalaVersion": jvm.get("Scala Version")}
        for key in ("Spark Properties", "Hadoop Properties", "System Properties",
                    "Metrics Properties", "Classpath Entries"):
            value = e.get(key) or {}
            if (isinstance(value, dict) and set(map(type, value)) <= _STR_ONLY
                    and set(map(type, value.values())) <= _STR_ONLY):
                self.env[key] = list(value.items())  # already (str, str): the usual case
                continue
            pairs = list(value.items()) if isinstance(value, dict) else [tuple(p) for p in value]
            self.env[key] = [(str(k), str(v)) for k, v in pairs]
        self.has_env = True
        props = dict(self.env.get("Spark Properties", []))
        try:
            self.default_cpus_per_task = int(props.get("spark.task.cpus", self.default_cpus_per_task))
        except ValueError:
            pass
        for attr, key in (("retained_jobs", "spark.ui.retainedJobs"),
                          ("retained_stages", "spark.ui.retainedStages"),
                          ("retained_tasks", "spark.ui.retainedTasks"),
                          ("retained_dead_executors", "spark.ui.retainedDeadExecutors"),
                          ("retained_executions", "spark.sql.ui.retainedExecutions")):
            if key in props:
                try:
                    setattr(self, attr, int(props[key]))
                except ValueError:
                    pass

    def _resource_profile(self, e: dict[str, Any]) -> None:
        rp_id = e.get("Resource Profile Id", 0)
        self.resource_profiles[rp_id] = {
            "executor": e.get("Executor Resource Requests") or {},
            "task": e.get("Task Resource Requests") or {},
        }

    # ----------------------------------------------------------------- executors
    def _get_or_create_executor(self, executor_id: str, add_time: int) -> Executor:
        """A dead executor that registers again becomes a new live entity (same key)."""
        ex = self.executors.get(executor_id)
        if ex is None or not ex.is_active:
            ex = Executor(executor_id, add_time)
            self.executors[executor_id] = ex
            if executor_id in self.executor_order:
                self.executor_order.remove(executor_id)
            self.executor_order.append(executor_id)
        return ex

    def _live_executor_ids(self) -> set[str]:
        return {k for k, v in self.executors.items() if v.is_active}

    def _live(self, executor_id: str) -> Executor | None:
        ex = self.executors.get(executor_id)
        return ex if ex is not None and ex.is_active else None

    def _executor_added(self, e: dict[str, Any]) -> None:
        info = e.get("Executor Info") or {}
        ex = self._get_or_create_executor(e.get("Executor ID", ""), e.get("Timestamp", 0))
        ex.host = info.get("Host")
        ex.is_active = True
        ex.total_cores = info.get("Total Cores", 0)
        rp_id = info.get("Resource Profile Id", 0) or 0
        rp = self.resource_profiles.get(rp_id)
        cpus = self.default_cpus_per_task
        if rp is not None and "cpus" in rp["task"]:
            cpus = int(rp["task"]["cpus"].get("Amount", 1))
        ex.max_tasks = ex.total_cores // cpus if cpus else 0
        ex.executor_logs = dict(info.get("Log Urls") or {})
        resources = info.get("Resources") or {}
        ex.resources = {k: {"name": v.get("name", k), "addresses": list(v.get("addresses", []))}
                        for k, v in resources.items()}
        ex.attributes = dict(info.get("Attributes") or {})
        ex.resource_profile_id = rp_id

    def _executor_removed(self, e: dict[str, Any]) -> None:
        ex = self._live(e.get("Executor ID", ""))
        if ex is None:
            return
        ex.is_active = False
        ex.remove_time = e.get("Timestamp", 0)
        ex.remove_reason = e.get("Removed Reason")
        for rdd in self.rdds.values():
            rdd.distributions.pop(ex.executor_id, None)
            for part in list(rdd.partitions.values()):
                if ex.executor_id not in part.executors:
                    continue
                n = len(part.executors)
                if n == 1:
                    del rdd.partitions[part.block_name]
                    rdd.memory_used = max(0, rdd.memory_used - part.memory_used)
                    rdd.disk_used = max(0, rdd.disk_used - part.disk_used)
                else:
                    rdd.memory_used = max(0, rdd.memory_used - part.memory_used // n)
                    rdd.disk_used = max(0, rdd.disk_used - part.disk_used // n)
                    part.memory_used = max(0, part.memory_used - part.memory_used // n)
                    part.disk_used = max(0, part.disk_used - part.disk_used // n)
                    part.executors = [x for x in part.executors if x != ex.executor_id]
            self._write_rdd(rdd)  # onExecutorRemoved ends with update(rdd) for every live RDD
        if any(s.live and (s.info.submission_time or 0) < (ex.remove_time or 0)
               for s in self.stages.values()):
            self.dead_in_live_stages.add(ex.executor_id)
        self._cleanup_executors()

    def _cleanup_executors(self) -> None:
        dead = [x for x in self.executor_order if not self.executors[x].is_active]
        if len(dead) <= self.retained_dead_executors:
            return
        count = _retain_remove_count(len(dead), self.retained_dead_executors)
        for executor_id in sorted(dead)[:count]:
            del self.executors[executor_id]
            self.executor_order.remove(executor_id)

    def _block_manager_added(self, e: dict[str, Any]) -> None:
        bm = e.get("Block Manager ID") or {}
        ex = self._get_or_create_executor(bm.get("Executor ID", ""), e.get("Timestamp", 0))
        ex.host_port = f"{bm.get('Host')}:{bm.get('Port')}"
        if "Maximum Onheap Memory" in e and e["Maximum Onheap Memory"] is not None:
            ex.total_on_heap = e["Maximum Onheap Memory"]
            ex.total_off_heap = e.get("Maximum Offheap Memory", 0) or 0
            ex.used_on_heap = 0
            ex.used_off_heap = 0
        ex.is_active = True
        ex.max_memory = e.get("Maximum Memory", 0)

    def _set_excluded(self, ex: Executor, excluded: bool) -> None:
        ex.is_excluded = excluded

    def _executor_excluded(self, e: dict[str, Any]) -> None:
        ex = self._live(e.get("executorId", ""))
        if ex is not None:
            self._set_excluded(ex, True)

    def _executor_unexcluded(self, e: dict[str, Any]) -> None:
        ex = self._live(e.get("executorId", ""))
        if ex is not None:
            self._set_excluded(ex, False)

    def _node_excluded(self, e: dict[str, Any], excluded: bool) -> None:
        host = e.get("hostId")
        for ex in self.executors.values():
            if ex.is_active and ex.hostname == host and ex.executor_id != "driver":
                self._set_excluded(ex, excluded)

    def _executor_excluded_for_stage(self, e: dict[str, Any]) -> None:
        stage = self._live_stage(e.get("stageId", 0), e.get("stageAttemptId", 0))
        executor_id = e.get("executorId", "")
        if stage is not None:
            stage.executor_summary(executor_id).excluded = True
            stage.excluded_executors.add(executor_id)
        ex = self._live(executor_id)
        if ex is not None:
            ex.excluded_in_stages.add(e.get("stageId", 0))

    def _node_excluded_for_stage(self, e: dict[str, Any]) -> None:
        host = e.get("hostId")
        stage = self._live_stage(e.get("stageId", 0), e.get("stageAttemptId", 0))
        if stage is not None:
            for ex in self.executors.values():
                if ex.is_active and ex.host == host and ex.executor_id != "driver":
                    stage.executor_summary(ex.executor_id).excluded = True
                    stage.excluded_executors.add(ex.executor_id)
        for ex in self.executors.values():
            if ex.is_active and ex.hostname == host and ex.executor_id != "driver":
                ex.excluded_in_stages.add(e.get("stageId", 0))

    def _misc_process(self, e: dict[str, Any]) -> None:
        info = e.get("info") or {}
        pid = e.get("processId", "")
        proc = self.processes.get(pid)
        if proc is None:
            proc = self.processes[pid] = Process(pid, e.get("time", 0))
        proc.host_port = info.get("hostPort")
        proc.is_active = True
        proc.total_cores = info.get("cores", 0)
        proc.process_logs = dict(info.get("logUrlInfo") or {})

    # ----------------------------------------------------------------- jobs and stages
    def _live_stage(self, stage_id: int, attempt: int) -> Stage | None:
        st = self.stages.get((stage_id, attempt))
        return st if st is not None and st.live else None

    def _get_or_create_stage(self, si: dict[str, Any]) -> Stage:
        info = ev.stage_info(si)
        key = (info.stage_id, info.attempt_id)
        st = self.stages.get(key)
        if st is None or not st.live:
            st = Stage(info)
            self.stages[key] = st
        else:
            st.info = info
        return st

    def _job_start(self, e: dict[str, Any]) -> None:
        props = e.get("Properties") or {}
        infos = e.get("Stage Infos") or []
        num_tasks = sum(si.get("Number of Tasks", 0) for si in infos if si.get("Completion Time") is None)
        last = max(infos, key=lambda si: si.get("Stage ID", 0)) if infos else None
        sql_id = props.get("spark.sql.execution.id")
        tags_text = props.get("spark.job.tags")
        tags = sorted({t for t in tags_text.split(",") if t}) if tags_text else []
        job_id = e.get("Job ID", 0)
        time = e.get("Submission Time")
        job = Job(
            job_id=job_id,
            name=last.get("Stage Name", "") if last else "",
            description=props.get("spark.job.description"),
            submission_time=time if time is not None and time > 0 else None,
            stage_ids=list(e.get("Stage IDs") or [si.get("Stage ID") for si in infos]),
            job_group=props.get("spark.jobGroup.id"),
            job_tags=tags,
            num_tasks=num_tasks,
            sql_execution_id=int(sql_id) if sql_id is not None else None,
        )
        self.jobs[job_id] = job
        self.live_jobs.add(job_id)
        for si in infos:
            st = self._get_or_create_stage(si)
            st.job_ids.add(job_id)
        if sql_id is not None:
            self._sql_job_start(int(sql_id), job_id, e.get("Stage IDs") or [], infos)

    def _job_end(self, e: dict[str, Any]) -> None:
        job_id = e.get("Job ID", 0)
        if job_id not in self.live_jobs:
            return
        self.live_jobs.discard(job_id)
        job = self.jobs[job_id]
        for key, st in self.stages.items():
            if st.live and key[0] in job.stage_ids and st.status == "PENDING":
                st.status = "SKIPPED"
                job.skipped_stages.add(key[0])
                job.skipped_tasks += st.info.num_tasks
                st.live = False
        result = (e.get("Job Result") or {}).get("Result", "JobSucceeded")
        job.status = "SUCCEEDED" if result == "JobSucceeded" else "FAILED"
        time = e.get("Completion Time")
        job.completion_time = time if time is not None and time > 0 else None
        self._cleanup_jobs()
        self._cleanup_stages()
        for execution in self.executions.values():
            if execution.live and job_id in execution.jobs:
                execution.jobs[job_id] = "SUCCEEDED" if result == "JobSucceeded" else "FAILED"
                execution.end_events += 1
                self._sql_maybe_close(execution)

    def _stage_jobs(self, st: Stage) -> list[Job]:
        return [self.jobs[j] for j in st.job_ids if j in self.jobs]

    def _stage_submitted(self, e: dict[str, Any]) -> None:
        si = e.get("Stage Info") or {}
        props = e.get("Properties") or {}
        st = self._get_or_create_stage(si)
        st.status = "ACTIVE"
        st.scheduling_pool = props.get("spark.scheduler.pool", "default")
        st.job_ids = {j for j in self.live_jobs if st.info.stage_id in self.jobs[j].stage_ids}
        st.description = props.get("spark.job.description")
        for job in self._stage_jobs(st):
            job.completed_stages.discard(st.info.stage_id)
            job.active_stages += 1
        for rdd in si.get("RDD Info") or []:
            level = rdd.get("Storage Level") or {}
            valid = (level.get("Use Disk") or level.get("Use Memory") or level.get("Use Off Heap")) \
                and (level.get("Replication", 1) or 0) > 0
            rid = rdd.get("RDD ID")
            if valid and rid not in self.rdds:
                self.rdds[rid] = RDD(
                    rdd_id=rid, name=rdd.get("Name", ""), num_partitions=rdd.get("Number of Partitions", 0),
                    use_disk=bool(level.get("Use Disk")), use_memory=bool(level.get("Use Memory")),
                    use_off_heap=bool(level.get("Use Off Heap")), deserialized=bool(level.get("Deserialized")),
                    replication=level.get("Replication", 1))
        sm = self.stage_metrics.get(st.info.stage_id)
        if sm is not None and self._is_sql_stage(st.info.stage_id) and sm.attempt_id != st.info.attempt_id:
            self.stage_metrics[st.info.stage_id] = StageMetrics(
                st.info.stage_id, st.info.attempt_id, sm.num_tasks, sm.execution_id)

    def _stage_completed(self, e: dict[str, Any]) -> None:
        si = e.get("Stage Info") or {}
        key = (si.get("Stage ID", 0), si.get("Stage Attempt ID", 0) or 0)
        st = self._live_stage(*key)
        if st is not None:
            st.info = ev.stage_info(si)
            if st.info.failure_reason is not None:
                st.status = "FAILED"
            elif st.info.submission_time is not None:
                st.status = "COMPLETE"
            else:
                st.status = "SKIPPED"
            for job in self._stage_jobs(st):
                if st.status == "COMPLETE":
                    job.completed_stages.add(key[0])
                elif st.status == "SKIPPED":
                    job.skipped_stages.add(key[0])
                    job.skipped_tasks += st.info.num_tasks
                else:
                    job.failed_stages += 1
                job.active_stages -= 1
            for executor_id in st.excluded_executors:
                ex = self._live(executor_id)
                if ex is not None:
                    ex.excluded_in_stages.discard(key[0])
            if st.active_tasks == 0:
                st.live = False
                self._cleanup_stages()
        self.dead_in_live_stages = {
            x for x in self.dead_in_live_stages
            if any(s.live and (s.info.submission_time or 0) < (self.executors[x].remove_time or 0)
                   for s in self.stages.values()) and x in self.executors}

    def _cleanup_jobs(self) -> None:
        done = [j for j in self.jobs.values() if j.status not in ("RUNNING", "UNKNOWN")]
        count = _retain_remove_count(len(self.jobs), self.retained_jobs)
        if count <= 0:
            return
        done.sort(key=lambda j: (j.completion_time if j.completion_time is not None else -1, j.job_id))
        for job in done[:count]:
            del self.jobs[job.job_id]

    def _cleanup_stages(self) -> None:
        count = _retain_remove_count(len(self.stages), self.retained_stages)
        if count <= 0:
            return
        candidates = [s for s in self.stages.values() if s.status not in ("ACTIVE", "PENDING")]
        candidates.sort(key=lambda s: (s.info.completion_time if s.info.completion_time is not None else -1,
                                       s.info.stage_id, s.info.attempt_id))
        for st in candidates[:count]:
            del self.stages[(st.info.stage_id, st.info.attempt_id)]
            for tid in st.task_ids:
                self.tasks.pop(tid, None)

    # ----------------------------------------------------------------- tasks
    def _task_start(self, e: dict[str, Any]) -> None:
        ti = e.get("Task Info") or {}
        tg = ti.get
        stage_id, attempt = e.get("Stage ID", 0), e.get("Stage Attempt ID", 0) or 0
        partition_id = tg("Partition ID")
        task = Task(
            tg("Task ID", 0), tg("Index", 0), tg("Attempt", 0),
            partition_id if partition_id is not None else -1,
            tg("Launch Time", 0), tg("Executor ID", ""), tg("Host", ""), tg("Locality", ""),
            bool(tg("Speculative", False)), stage_id, attempt,
            accumulables=ev.accumulables(tg("Accumulables")))
        task_id, executor_id = task.task_id, task.executor_id
        self.tasks[task_id] = task
        st = self._live_stage(stage_id, attempt)
        if st is not None:
            if task.speculative:
                if st.speculation is None:
                    st.speculation = Speculation()
                st.speculation.num_active += 1
                st.speculation.num_tasks += 1
            st.active_tasks += 1
            if st.first_launch_time is None or task.launch_time < st.first_launch_time:
                st.first_launch_time = task.launch_time
            per_executor = st.active_per_executor
            per_executor[executor_id] = per_executor.get(executor_id, 0) + 1
            jobs = self.jobs
            for job_id in st.job_ids:
                job = jobs.get(job_id)
                if job is not None:
                    job.active_tasks += 1
            st.task_ids.append(task_id)
            if len(st.task_ids) > self.retained_tasks:
                self._cleanup_tasks(st)
        ex = self.executors.get(executor_id)
        if ex is not None and ex.is_active:
            ex.active_tasks += 1
            ex.total_tasks += 1
        sm = self.stage_metrics.get(stage_id)
        if sm is not None and sm.attempt_id == attempt:
            sm.task_indices[task_id] = task.index

    def _cleanup_tasks(self, st: Stage) -> None:
        count = _retain_remove_count(len(st.task_ids), self.retained_tasks)
        ended = [self.tasks[t] for t in st.task_ids if t in self.tasks and self.tasks[t].finished]
        ended.sort(key=lambda t: (t.finish_time, t.task_id))
        drop = {t.task_id for t in ended[:count]}
        for tid in drop:
            del self.tasks[tid]
        st.task_ids = [t for t in st.task_ids if t not in drop]

    def _task_getting_result(self, e: dict[str, Any]) -> None:
        ti = e.get("Task Info") or {}
        task = self.tasks.get(ti.get("Task ID", -1))
        if task is not None and not task.finished:
            task.getting_result_time = ti.get("Getting Result Time", 0) or 0

    def _task_end(self, e: dict[str, Any]) -> None:
        # The hottest handler (one call per task): lookups are bound to locals.
        ti = e.get("Task Info")
        if ti is None:
            return
        tg = ti.get
        stage_id, attempt = e.get("Stage ID", 0), e.get("Stage Attempt ID", 0) or 0
        kind, message = ev.end_reason(e.get("Task End Reason"))
        task_id = tg("Task ID", 0)
        task = self.tasks.get(task_id)
        # JsonProtocol.taskMetricsFromJson(null) is TaskMetrics.empty (4.0.1): a TaskEnd logged
        # without "Task Metrics" (FetchFailed, ExecutorLostFailure, ...) replays as all zeros.
        new_metrics = ev.task_metrics(e.get("Task Metrics")) or [0] * N_METRICS
        delta: list[int] | None = None
        finish = tg("Finish Time", 0) or 0
        launch = tg("Launch Time", 0)
        duration = finish - launch if finish != 0 else 0
        if task is not None and not task.finished:
            task.launch_time = launch
            task.getting_result_time = tg("Getting Result Time", 0) or 0
            task.finish_time = finish
            task.failed = bool(tg("Failed", False))
            task.killed = bool(tg("Killed", False))
            task.executor_id = tg("Executor ID", task.executor_id)
            task.host = tg("Host", task.host)
            task.locality = tg("Locality", task.locality)
            task.speculative = bool(tg("Speculative", task.speculative))
            partition_id = tg("Partition ID")
            if partition_id is not None:
                task.partition_id = partition_id
            task.accumulables = ev.accumulables(tg("Accumulables"))
            task.error_message = message
            delta = new_metrics if task.metrics is None else add_metrics(new_metrics, task.metrics, -1)
            task.metrics = new_metrics
        completed = 1 if kind == "Success" else 0
        killed = 1 if kind in ("TaskKilled", "TaskCommitDenied") else 0
        failed = 1 - completed - killed
        active = 0 if kind == "Resubmitted" else 1
        executor_id = tg("Executor ID", "")
        index = tg("Index", 0)
        peaks = ev.executor_metrics(e.get("Task Executor Metrics"))
        st = self._live_stage(stage_id, attempt)
        if st is not None:
            if delta is not None:
                st.metrics = add_metrics(st.metrics, delta)
            st.active_tasks -= active
            st.completed_tasks += completed
            if completed:
                st.completed_indices.add(index)
            st.failed_tasks += failed
            st.killed_tasks += killed
            if killed:
                st.killed_summary[message or ""] = st.killed_summary.get(message or "", 0) + 1
            per_executor = st.active_per_executor
            per_executor[executor_id] = per_executor.get(executor_id, 0) - active
            update_peaks(st.peaks, peaks)
            esum = st.executor_summary(executor_id)
            update_peaks(esum.peaks, peaks)
            remove = st.active_tasks == 0 and st.status in ("COMPLETE", "FAILED")
            jobs = self.jobs
            for job_id in st.job_ids:
                job = jobs.get(job_id)
                if job is None:
                    continue
                job.active_tasks -= active
                job.completed_tasks += completed
                if completed:
                    job.completed_indices.add((stage_id << 32) | index)
                job.failed_tasks += failed
                job.killed_tasks += killed
                if killed:
                    job.killed_summary[message or ""] = job.killed_summary.get(message or "", 0) + 1
            esum.task_time += duration
            esum.succeeded_tasks += completed
            esum.failed_tasks += failed
            esum.killed_tasks += killed
            if delta is not None:
                esum.metrics = add_metrics(esum.metrics, delta)
            if st.speculation is not None and bool(tg("Speculative", False)):
                st.speculation.num_active -= 1
                st.speculation.num_completed += completed
                st.speculation.num_failed += failed
                st.speculation.num_killed += killed
            if remove:
                st.live = False
                self._cleanup_stages()
        ex = self.executors.get(executor_id)
        if ex is not None and ex.is_active:
            ex.active_tasks -= active
            ex.completed_tasks += completed
            ex.failed_tasks += failed
            ex.total_duration += duration
            update_peaks(ex.peaks, peaks)
            if kind != "Resubmitted":
                ex.total_gc_time += new_metrics[_JVM_GC_TIME]
                ex.total_input_bytes += new_metrics[_IN_BYTES_READ]
                ex.total_shuffle_read += new_metrics[_SR_LOCAL_BYTES_READ] + new_metrics[_SR_REMOTE_BYTES_READ]
                ex.total_shuffle_write += new_metrics[_SW_BYTES_WRITTEN]
        sm = self.stage_metrics.get(stage_id)
        if sm is not None and sm.attempt_id == attempt and self._is_sql_stage(stage_id):
            successful = finish != 0 and not tg("Failed", False) and not tg("Killed", False)
            self._sql_task_accumulables(sm, task_id, index, tg("Accumulables"), successful)

    def _stage_executor_metrics(self, e: dict[str, Any]) -> None:
        peaks = ev.executor_metrics(e.get("Executor Metrics"))
        executor_id = e.get("Executor ID", "")
        ex = self.executors.get(executor_id)
        if ex is not None and (ex.is_active or executor_id in self.dead_in_live_stages):
            update_peaks(ex.peaks, peaks)
        st = self._live_stage(e.get("Stage ID", 0), e.get("Stage Attempt ID", 0) or 0)
        if st is not None:
            update_peaks(st.peaks, peaks)
            update_peaks(st.executor_summary(executor_id).peaks, peaks)

    # ----------------------------------------------------------------- storage
    def _unpersist(self, e: dict[str, Any]) -> None:
        rdd = self.rdds.pop(e.get("RDD ID", -1), None)
        if rdd is None:
            return
        for part in rdd.partitions.values():
            for executor_id in part.executors:
                ex = self._live(executor_id)
                if ex is not None:
                    ex.rdd_blocks -= 1
        for executor_id, dist in rdd.distributions.items():
            ex = self._live(executor_id)
            if ex is None:
                continue
            if ex.has_memory_info:
                if rdd.use_off_heap:
                    ex.used_off_heap = max(0, ex.used_off_heap - dist.off_heap_used)
                else:
                    ex.used_on_heap = max(0, ex.used_on_heap - dist.on_heap_used)
            ex.memory_used = max(0, ex.memory_used - dist.memory_used)
            ex.disk_used = max(0, ex.disk_used - dist.disk_used)

    def _write_rdd(self, rdd: RDD) -> None:
        """What ``update(rdd)`` fixes: each distribution's remaining memory, unless already cached."""
        for executor_id, dist in rdd.distributions.items():
            if dist.remaining is None and (ex := self.executors.get(executor_id)) is not None:
                mem_info = ex.has_memory_info
                dist.remaining = (ex.max_memory - ex.memory_used,
                                  ex.total_on_heap - ex.used_on_heap if mem_info else None,
                                  ex.total_off_heap - ex.used_off_heap if mem_info else None)

    def _block_updated(self, e: dict[str, Any]) -> None:
        info = e.get("Block Updated Info") or {}
        block_id = str(info.get("Block ID", ""))
        bm = info.get("Block Manager ID") or {}
        executor_id = bm.get("Executor ID", "")
        level = info.get("Storage Level") or {}
        use_disk, use_memory = bool(level.get("Use Disk")), bool(level.get("Use Memory"))
        off_heap = bool(level.get("Use Off Heap"))
        valid = (use_disk or use_memory or off_heap) and (level.get("Replication", 1) or 0) > 0
        disk_delta = (info.get("Disk Size", 0) or 0) * (1 if use_disk else -1)
        mem_delta = (info.get("Memory Size", 0) or 0) * (1 if use_memory else -1)
        ex = self._live(executor_id)
        if block_id.startswith("rdd_"):
            self._rdd_block(block_id, ex, executor_id, valid, off_heap, mem_delta, disk_delta)
        elif block_id.startswith("broadcast_") and ex is not None:
            self._executor_mem_disk(ex, off_heap, mem_delta, disk_delta)

    def _executor_mem_disk(self, ex: Executor, off_heap: bool, mem: int, disk: int) -> None:
        if ex.has_memory_info:
            if off_heap:
                ex.used_off_heap = max(0, ex.used_off_heap + mem)
            else:
                ex.used_on_heap = max(0, ex.used_on_heap + mem)
        ex.memory_used = max(0, ex.memory_used + mem)
        ex.disk_used = max(0, ex.disk_used + disk)

    def _rdd_block(self, block_id: str, ex: Executor | None, executor_id: str, valid: bool,
                   off_heap: bool, mem: int, disk: int) -> None:
        try:
            rdd_id = int(block_id.split("_")[1])
        except (IndexError, ValueError):
            return
        if ex is not None:
            self._executor_mem_disk(ex, off_heap, mem, disk)
        blocks_delta = 0
        rdd = self.rdds.get(rdd_id)
        if rdd is not None:
            part = rdd.partitions.get(block_id)
            if part is None:
                part = rdd.partitions[block_id] = RDDPartition(block_id)
            if valid:
                if executor_id in part.executors:
                    executors = part.executors
                else:
                    blocks_delta = 1
                    executors = part.executors + [executor_id]
            else:
                blocks_delta = -1
                executors = [x for x in part.executors if x != executor_id]
            if executors:
                part.executors = executors
                part.memory_used = max(0, part.memory_used + mem)
                part.disk_used = max(0, part.disk_used + disk)
            else:
                del rdd.partitions[block_id]
            if ex is not None:
                if ex.rdd_blocks + blocks_delta > 0:
                    dist = rdd.distributions.get(executor_id)
                    if dist is None:
                        dist = rdd.distributions[executor_id] = RDDDistribution()
                    dist.memory_used = max(0, dist.memory_used + mem)
                    dist.disk_used = max(0, dist.disk_used + disk)
                    if ex.has_memory_info:
                        if off_heap:
                            dist.off_heap_used = max(0, dist.off_heap_used + mem)
                        else:
                            dist.on_heap_used = max(0, dist.on_heap_used + mem)
                    dist.remaining = None
                else:
                    rdd.distributions.pop(executor_id, None)
                # updateRDDBlock: "trigger an update on other RDDs so that the free memory
                # information is updated" -- only theirs on this executor, and only now.
                for other in self.rdds.values():
                    if other is not rdd and (other_dist := other.distributions.get(executor_id)) is not None:
                        other_dist.remaining = None
                        self._write_rdd(other)
            rdd.memory_used = max(0, rdd.memory_used + mem)
            rdd.disk_used = max(0, rdd.disk_used + disk)
            self._write_rdd(rdd)
        if ex is not None:
            ex.rdd_blocks += blocks_delta

    # ----------------------------------------------------------------- SQL
    def _is_sql_stage(self, stage_id: int) -> bool:
        return any(x.live and stage_id in x.stages for x in self.executions.values())

    def _execution(self, execution_id: int) -> SQLExecution:
        execution = self.executions.get(execution_id)
        if execution is None or not execution.live:
            if execution is None:
                execution = self.executions[execution_id] = SQLExecution(execution_id)
            else:
                execution.live = True  # a later job of a finished execution re-opens it
        return execution

    def _sql_job_start(self, execution_id: int, job_id: int, stage_ids: list[int],
                       infos: list[dict[str, Any]]) -> None:
        execution = self.executions.get(execution_id)
        if execution is not None and not execution.live:
            execution.live = True
            execution.end_events = len(execution.jobs) + 1
        execution = self._execution(execution_id)
        if execution.metric_types:
            for si in infos:
                sid = si.get("Stage ID", 0)
                self.stage_metrics[sid] = StageMetrics(sid, 0, si.get("Number of Tasks", 0), execution_id)
        execution.jobs[job_id] = "RUNNING"
        for sid in stage_ids:
            if sid not in execution.stages:
                execution.stages.append(sid)
        self._sql_maybe_close(execution)

    def _sql_task_accumulables(self, sm: StageMetrics, task_id: int, index: int,
                               items: list[dict[str, Any]] | None, finished: bool) -> None:
        """``SQLAppStatusListener.onTaskEnd`` for ``sm``'s attempt: the task's value of each
        SQL metric (:func:`~sparkhist.state.events.sql_accum_updates`, decoding only the
        accumulables of the execution's metrics)."""
        sm.task_indices[task_id] = index
        if index in sm.completed:
            return
        execution = self.executions.get(sm.execution_id)
        types = execution.metric_types if execution is not None else {}
        if types and items:
            all_values, max_values, num_tasks = sm.values, sm.max_values, sm.num_tasks
            for acc in items:
                update = acc.get("Update")
                if update is None:
                    continue
                try:
                    acc_id = acc["ID"]
                    if type(acc_id) is not int:
                        acc_id = int(acc_id)
                    mtype = types.get(acc_id)
                    if mtype is None:
                        continue
                    value = update if type(update) is int else int(update)
                except (KeyError, TypeError, ValueError):
                    continue
                values = all_values.get(acc_id)
                if values is None:
                    values = all_values[acc_id] = [0] * num_tasks
                if 0 <= index < len(values):
                    values[index] = value
                if mtype != "sum":
                    current = max_values.get(acc_id)
                    if current is None:
                        max_values[acc_id] = [value, task_id]
                    elif value > current[0]:
                        current[0], current[1] = value, task_id
        if finished:
            sm.completed.add(index)

    def _sql_execution_start(self, e: dict[str, Any]) -> None:
        execution = self._execution(e.get("executionId", 0))
        execution.root_execution_id = e.get("rootExecutionId")
        execution.description = e.get("description", "") or ""
        execution.details = e.get("details", "") or ""
        execution.plan_description = e.get("physicalPlanDescription", "") or ""
        self._sql_set_plan(execution, e.get("sparkPlanInfo") or {})
        execution.submission_time = e.get("time", -1)
        self._sql_maybe_close(execution)

    def _sql_set_plan(self, execution: SQLExecution, plan: dict[str, Any]) -> None:
        execution.graph = build_plan_graph(plan)
        for node in execution.graph.all_nodes():
            for _name, acc_id, mtype in node.metrics:
                execution.metric_types[acc_id] = mtype

    def _sql_adaptive_update(self, e: dict[str, Any]) -> None:
        execution = self._execution(e.get("executionId", 0))
        execution.plan_description = e.get("physicalPlanDescription", "") or ""
        self._sql_set_plan(execution, e.get("sparkPlanInfo") or {})
        self._sql_maybe_close(execution)

    def _sql_adaptive_metrics(self, e: dict[str, Any]) -> None:
        execution = self._execution(e.get("executionId", 0))
        for m in e.get("sqlPlanMetrics") or []:
            execution.metric_types[int(m.get("accumulatorId", 0))] = m.get("metricType", "sum")
        self._sql_maybe_close(execution)

    def _sql_execution_end(self, e: dict[str, Any]) -> None:
        execution = self.executions.get(e.get("executionId", -1))
        if execution is None or not execution.live:
            return
        execution.completion_time = e.get("time", 0)
        execution.error_message = e.get("errorMessage")
        execution.metric_values = aggregate_metrics(execution, self.stage_metrics)
        self._sql_remove_stale(execution)
        execution.end_events += 1
        self._sql_maybe_close(execution)
        self._cleanup_executions()

    def _sql_remove_stale(self, execution: SQLExecution) -> None:
        active = {s for x in self.executions.values() if x.live and x is not execution for s in x.stages}
        for sid in [s for s in self.stage_metrics if s not in active]:
            del self.stage_metrics[sid]

    def _sql_maybe_close(self, execution: SQLExecution) -> None:
        if execution.end_events >= len(execution.jobs) + 1:
            self._sql_remove_stale(execution)
            execution.live = False

    def _sql_driver_updates(self, e: dict[str, Any]) -> None:
        execution = self.executions.get(e.get("executionId", -1))
        if execution is None or not execution.live:
            return
        for pair in e.get("accumUpdates") or []:
            execution.driver_updates.append((int(pair[0]), int(pair[1])))

    def _cleanup_executions(self) -> None:
        count = len(self.executions) - self.retained_executions
        if count <= 0:
            return
        done = sorted((x for x in self.executions.values() if x.completion_time is not None),
                      key=lambda x: (x.completion_time, x.execution_id))
        for execution in done[:count]:
            del self.executions[execution.execution_id]


_HANDLERS: dict[str, Any] = {
    "SparkListenerLogStart": AppState._log_start,
    "SparkListenerApplicationStart": AppState._app_start,
    "SparkListenerApplicationEnd": AppState._app_end,
    "SparkListenerEnvironmentUpdate": AppState._env_update,
    "SparkListenerResourceProfileAdded": AppState._resource_profile,
    "SparkListenerExecutorAdded": AppState._executor_added,
    "SparkListenerExecutorRemoved": AppState._executor_removed,
    "SparkListenerBlockManagerAdded": AppState._block_manager_added,
    "SparkListenerExecutorBlacklisted": AppState._executor_excluded,
    "SparkListenerExecutorExcluded": AppState._executor_excluded,
    "SparkListenerExecutorUnblacklisted": AppState._executor_unexcluded,
    "SparkListenerExecutorUnexcluded": AppState._executor_unexcluded,
    "SparkListenerNodeBlacklisted": lambda s, e: s._node_excluded(e, True),
    "SparkListenerNodeExcluded": lambda s, e: s._node_excluded(e, True),
    "SparkListenerNodeUnblacklisted": lambda s, e: s._node_excluded(e, False),
    "SparkListenerNodeUnexcluded": lambda s, e: s._node_excluded(e, False),
    "SparkListenerExecutorBlacklistedForStage": AppState._executor_excluded_for_stage,
    "SparkListenerExecutorExcludedForStage": AppState._executor_excluded_for_stage,
    "SparkListenerNodeBlacklistedForStage": AppState._node_excluded_for_stage,
    "SparkListenerNodeExcludedForStage": AppState._node_excluded_for_stage,
    "SparkListenerMiscellaneousProcessAdded": AppState._misc_process,
    "SparkListenerJobStart": AppState._job_start,
    "SparkListenerJobEnd": AppState._job_end,
    "SparkListenerStageSubmitted": AppState._stage_submitted,
    "SparkListenerStageCompleted": AppState._stage_completed,
    "SparkListenerTaskStart": AppState._task_start,
    "SparkListenerTaskGettingResult": AppState._task_getting_result,
    "SparkListenerTaskEnd": AppState._task_end,
    "SparkListenerStageExecutorMetrics": AppState._stage_executor_metrics,
    "SparkListenerUnpersistRDD": AppState._unpersist,
    "SparkListenerBlockUpdated": AppState._block_updated,
    "SparkListenerSQLExecutionStart": AppState._sql_execution_start,
    "SparkListenerSQLAdaptiveExecutionUpdate": AppState._sql_adaptive_update,
    "SparkListenerSQLAdaptiveSQLMetricUpdates": AppState._sql_adaptive_metrics,
    "SparkListenerSQLExecutionEnd": AppState._sql_execution_end,
    "SparkListenerDriverAccumUpdates": AppState._sql_driver_updates,
}
