"""Mutable accumulators for one application: Spark's ``LiveEntity`` family, as plain data.

The listeners (:mod:`sparkhist.state.app_state` and the ``*_listener`` modules it merges)
mutate these while replaying; the API renders them on request. Everything here is a slotted
dataclass of ints, strings, lists and dicts, so a whole application state pickles compactly
and contains no callables, locks or files.

Task metrics are a flat list of :data:`N_METRICS` ints (the exploded ``v1.TaskMetrics``,
in :data:`METRIC_NAMES` order), because tasks are the bulk of the state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import add as _add
from operator import attrgetter
from operator import gt as _gt
from operator import sub as _sub
from typing import Any

# Exploded v1.TaskMetrics, in the order TaskMetrics' JSON nests them.
METRIC_NAMES: tuple[str, ...] = (
    "executorDeserializeTime", "executorDeserializeCpuTime", "executorRunTime", "executorCpuTime",
    "resultSize", "jvmGcTime", "resultSerializationTime", "memoryBytesSpilled", "diskBytesSpilled",
    "peakExecutionMemory",
    "in.bytesRead", "in.recordsRead",
    "out.bytesWritten", "out.recordsWritten",
    "sr.remoteBlocksFetched", "sr.localBlocksFetched", "sr.fetchWaitTime", "sr.remoteBytesRead",
    "sr.remoteBytesReadToDisk", "sr.localBytesRead", "sr.recordsRead", "sr.remoteReqsDuration",
    "push.corruptMergedBlockChunks", "push.mergedFetchFallbackCount",
    "push.remoteMergedBlocksFetched", "push.localMergedBlocksFetched",
    "push.remoteMergedChunksFetched", "push.localMergedChunksFetched",
    "push.remoteMergedBytesRead", "push.localMergedBytesRead", "push.remoteMergedReqsDuration",
    "sw.bytesWritten", "sw.writeTime", "sw.recordsWritten",
)
N_METRICS = len(METRIC_NAMES)
M = {name: i for i, name in enumerate(METRIC_NAMES)}

# Executor metric names in emission order (ExecutorMetricType, Spark 4.0.1).
EXECUTOR_METRIC_NAMES: tuple[str, ...] = (
    "JVMHeapMemory", "JVMOffHeapMemory", "OnHeapExecutionMemory", "OffHeapExecutionMemory",
    "OnHeapStorageMemory", "OffHeapStorageMemory", "OnHeapUnifiedMemory", "OffHeapUnifiedMemory",
    "DirectPoolMemory", "MappedPoolMemory", "ProcessTreeJVMVMemory", "ProcessTreeJVMRSSMemory",
    "ProcessTreePythonVMemory", "ProcessTreePythonRSSMemory", "ProcessTreeOtherVMemory",
    "ProcessTreeOtherRSSMemory", "MinorGCCount", "MinorGCTime", "MajorGCCount", "MajorGCTime",
    "TotalGCTime", "ConcurrentGCCount", "ConcurrentGCTime",
)


def zero_metrics() -> list[int]:
    return [0] * N_METRICS


def add_metrics(a: list[int], b: list[int], mult: int = 1) -> list[int]:
    """A new list: ``a + b * mult`` element-wise (up to the shorter of the two)."""
    if mult == 1:
        return list(map(_add, a, b))
    if mult == -1:
        return list(map(_sub, a, b))
    return [x + y * mult for x, y in zip(a, b, strict=False)]


def new_peaks() -> list[int]:
    """An unset ``ExecutorMetrics``: slot 0 is -1 until a first update (``isSet``)."""
    peaks = [0] * len(EXECUTOR_METRIC_NAMES)
    peaks[0] = -1
    return peaks


def update_peaks(peaks: list[int], values: list[int] | None) -> bool:
    """``compareAndUpdatePeakValues``: keep the per-metric maximum; True if anything grew."""
    if values is None:
        return False
    if not any(map(_gt, values, peaks)):  # the common case: nothing new
        return False
    for i, v in enumerate(values):
        if v > peaks[i]:
            peaks[i] = v
    return True


class IdSet(set[str]):
    """A set of ids (strings) that pickles in sorted order. A plain set of strings pickles in
    its hash order, which ``PYTHONHASHSEED`` changes from one process to the next: with this,
    a snapshot's bytes are a function of the log whichever process builds it."""

    __slots__ = ()

    def __reduce__(self) -> tuple[type[IdSet], tuple[list[str]]]:
        return IdSet, (sorted(self),)


@dataclass(slots=True)
class Task:
    task_id: int
    index: int
    attempt: int
    partition_id: int
    launch_time: int
    executor_id: str
    host: str
    locality: str
    speculative: bool
    stage_id: int
    stage_attempt: int
    getting_result_time: int = 0
    finish_time: int = 0
    failed: bool = False
    killed: bool = False
    accumulables: list[tuple[int, str | None, str | None, str | None]] = field(default_factory=list)
    error_message: str | None = None
    # None until metrics are reported (Spark stores -1s: ``hasMetrics`` false).
    metrics: list[int] | None = None

    @property
    def finished(self) -> bool:
        return self.finish_time != 0

    @property
    def successful(self) -> bool:
        return self.finished and not self.failed and not self.killed

    @property
    def status(self) -> str:
        if not self.finished:
            return "GET RESULT" if self.getting_result_time != 0 else "RUNNING"
        if self.failed:
            return "FAILED"
        if self.killed:
            return "KILLED"
        return "SUCCESS"

    def __reduce__(self) -> tuple[type[Task], tuple[Any, ...]]:
        # Pickled as ``Task(*fields)``: tasks are most of a snapshot, and this writes and reads
        # in half the time of the default (a dict of slots per task, which older pickles hold:
        # both load).
        return Task, _task_fields(self)


_task_fields = attrgetter(*Task.__dataclass_fields__)


@dataclass(slots=True)
class Job:
    job_id: int
    name: str
    description: str | None
    submission_time: int | None
    stage_ids: list[int]
    job_group: str | None
    job_tags: list[str]
    num_tasks: int
    sql_execution_id: int | None
    active_tasks: int = 0
    completed_tasks: int = 0
    failed_tasks: int = 0
    killed_tasks: int = 0
    completed_indices: set[int] = field(default_factory=set)
    killed_summary: dict[str, int] = field(default_factory=dict)
    skipped_tasks: int = 0
    skipped_stages: set[int] = field(default_factory=set)
    status: str = "RUNNING"
    completion_time: int | None = None
    completed_stages: set[int] = field(default_factory=set)
    active_stages: int = 0
    failed_stages: int = 0


@dataclass(slots=True)
class ExecutorStageSummary:
    task_time: int = 0
    succeeded_tasks: int = 0
    failed_tasks: int = 0
    killed_tasks: int = 0
    excluded: bool = False
    metrics: list[int] = field(default_factory=zero_metrics)
    peaks: list[int] = field(default_factory=new_peaks)


@dataclass(slots=True)
class StageInfo:
    """The parts of Spark's ``StageInfo`` the API shows (refreshed by every stage event)."""

    stage_id: int
    attempt_id: int
    name: str
    num_tasks: int
    rdd_ids: list[int]
    details: str
    submission_time: int | None
    completion_time: int | None
    failure_reason: str | None
    accumulables: list[tuple[int, str | None, str | None, str | None]]
    resource_profile_id: int
    is_shuffle_push_enabled: bool
    shuffle_mergers_count: int


@dataclass(slots=True)
class Speculation:
    num_tasks: int = 0
    num_active: int = 0
    num_completed: int = 0
    num_failed: int = 0
    num_killed: int = 0


@dataclass(slots=True)
class Stage:
    info: StageInfo
    status: str = "PENDING"
    job_ids: set[int] = field(default_factory=set)
    description: str | None = None
    scheduling_pool: str = "default"
    active_tasks: int = 0
    completed_tasks: int = 0
    failed_tasks: int = 0
    killed_tasks: int = 0
    completed_indices: set[int] = field(default_factory=set)
    killed_summary: dict[str, int] = field(default_factory=dict)
    first_launch_time: int | None = None
    metrics: list[int] = field(default_factory=zero_metrics)
    executor_summaries: dict[str, ExecutorStageSummary] = field(default_factory=dict)
    active_per_executor: dict[str, int] = field(default_factory=dict)
    excluded_executors: set[str] = field(default_factory=IdSet)
    peaks: list[int] = field(default_factory=new_peaks)
    speculation: Speculation | None = None
    # Task ids of this attempt, in arrival order (retention trims the oldest finished ones).
    task_ids: list[int] = field(default_factory=list)
    live: bool = True
    # Tasks Spark's ``savedTasks`` no longer counts though they are kept: a task clean-up asked to
    # drop more than the ended tasks it found (retention.cleanup_tasks). Last: older pickles lack it.
    unsaved_tasks: int = 0

    def executor_summary(self, executor_id: str) -> ExecutorStageSummary:
        summary = self.executor_summaries.get(executor_id)
        if summary is None:
            summary = self.executor_summaries[executor_id] = ExecutorStageSummary()
        return summary


@dataclass(slots=True)
class Executor:
    executor_id: str
    add_time: int
    host_port: str | None = None
    host: str | None = None
    is_active: bool = True
    total_cores: int = 0
    remove_time: int | None = None
    remove_reason: str | None = None
    rdd_blocks: int = 0
    memory_used: int = 0
    disk_used: int = 0
    max_tasks: int = 0
    max_memory: int = 0
    total_tasks: int = 0
    active_tasks: int = 0
    completed_tasks: int = 0
    failed_tasks: int = 0
    total_duration: int = 0
    total_gc_time: int = 0
    total_input_bytes: int = 0
    total_shuffle_read: int = 0
    total_shuffle_write: int = 0
    is_excluded: bool = False
    excluded_in_stages: set[int] = field(default_factory=set)
    executor_logs: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    total_on_heap: int = -1
    total_off_heap: int = 0
    used_on_heap: int = 0
    used_off_heap: int = 0
    resource_profile_id: int = 0
    peaks: list[int] = field(default_factory=new_peaks)

    @property
    def has_memory_info(self) -> bool:
        return self.total_on_heap >= 0

    @property
    def hostname(self) -> str:
        if self.host is not None:
            return self.host
        hp = self.host_port or ""
        return hp.rsplit(":", 1)[0] if ":" in hp else hp


@dataclass(slots=True)
class RDDPartition:
    block_name: str
    executors: list[str] = field(default_factory=list)
    memory_used: int = 0
    disk_used: int = 0


@dataclass(slots=True)
class RDDDistribution:
    memory_used: int = 0
    disk_used: int = 0
    on_heap_used: int = 0
    off_heap_used: int = 0
    #: (memoryRemaining, onHeapMemoryRemaining, offHeapMemoryRemaining) as of the last time the
    #: SHS wrote the RDD (LiveRDDDistribution.lastUpdate); None: computed when served.
    remaining: tuple[int, int | None, int | None] | None = None


@dataclass(slots=True)
class RDD:
    rdd_id: int
    name: str
    num_partitions: int
    use_disk: bool
    use_memory: bool
    use_off_heap: bool
    deserialized: bool
    replication: int
    memory_used: int = 0
    disk_used: int = 0
    partitions: dict[str, RDDPartition] = field(default_factory=dict)
    distributions: dict[str, RDDDistribution] = field(default_factory=dict)


@dataclass(slots=True)
class Process:
    process_id: str
    add_time: int
    host_port: str | None = None
    is_active: bool = True
    total_cores: int = 0
    process_logs: dict[str, str] = field(default_factory=dict)
