"""``AppStatusListener``'s storage side: cached RDDs, their blocks and storage levels.

An RDD is tracked from the first stage that lists it with a valid storage level until it
is unpersisted; block updates move memory and disk usage between its partitions, its
per-executor distributions and the executors (broadcast blocks count on executors only).
A removed executor takes its blocks with it. Every change to an RDD ends like Spark's
``update(rdd)``: with the remaining memory of its distributions' executors
(:func:`_write_rdd`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sparkhist.state.entities import RDD, Executor, RDDDistribution, RDDPartition

if TYPE_CHECKING:
    from sparkhist.state.app_state import AppState, Handler

__all__ = ["HANDLERS"]


def _stage_submitted(s: AppState, e: dict[str, Any]) -> None:
    """The stage's RDDs with a valid storage level start being tracked."""
    si = e.get("Stage Info") or {}
    for rdd in si.get("RDD Info") or []:
        level = rdd.get("Storage Level") or {}
        valid = (level.get("Use Disk") or level.get("Use Memory") or level.get("Use Off Heap")) \
            and (level.get("Replication", 1) or 0) > 0
        rid = rdd.get("RDD ID")
        if valid and type(rid) is int and rid not in s.rdds:  # no id (a damaged log): nothing to track
            s.rdds[rid] = RDD(
                rdd_id=rid, name=rdd.get("Name", ""), num_partitions=rdd.get("Number of Partitions", 0),
                use_disk=bool(level.get("Use Disk")), use_memory=bool(level.get("Use Memory")),
                use_off_heap=bool(level.get("Use Off Heap")), deserialized=bool(level.get("Deserialized")),
                replication=level.get("Replication", 1))


def _executor_removed(s: AppState, e: dict[str, Any]) -> None:
    """The executor's blocks are gone (runs while the executor is still live)."""
    ex = s.live_executor(e.get("Executor ID", ""))
    if ex is None:
        return
    for rdd in s.rdds.values():
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
        _write_rdd(s, rdd)  # onExecutorRemoved ends with update(rdd) for every live RDD


def _unpersist(s: AppState, e: dict[str, Any]) -> None:
    rdd = s.rdds.pop(e.get("RDD ID", -1), None)
    if rdd is None:
        return
    for part in rdd.partitions.values():
        for executor_id in part.executors:
            ex = s.live_executor(executor_id)
            if ex is not None:
                ex.rdd_blocks -= 1
    for executor_id, dist in rdd.distributions.items():
        ex = s.live_executor(executor_id)
        if ex is None:
            continue
        if ex.has_memory_info:
            if rdd.use_off_heap:
                ex.used_off_heap = max(0, ex.used_off_heap - dist.off_heap_used)
            else:
                ex.used_on_heap = max(0, ex.used_on_heap - dist.on_heap_used)
        ex.memory_used = max(0, ex.memory_used - dist.memory_used)
        ex.disk_used = max(0, ex.disk_used - dist.disk_used)


def _write_rdd(s: AppState, rdd: RDD) -> None:
    """What ``update(rdd)`` fixes: each distribution's remaining memory, unless already cached."""
    for executor_id, dist in rdd.distributions.items():
        if dist.remaining is None and (ex := s.executors.get(executor_id)) is not None:
            mem_info = ex.has_memory_info
            dist.remaining = (ex.max_memory - ex.memory_used,
                              ex.total_on_heap - ex.used_on_heap if mem_info else None,
                              ex.total_off_heap - ex.used_off_heap if mem_info else None)


def _block_updated(s: AppState, e: dict[str, Any]) -> None:
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
    ex = s.live_executor(executor_id)
    if block_id.startswith("rdd_"):
        _rdd_block(s, block_id, ex, executor_id, valid, off_heap, mem_delta, disk_delta)
    elif block_id.startswith("broadcast_") and ex is not None:
        _executor_mem_disk(ex, off_heap, mem_delta, disk_delta)


def _executor_mem_disk(ex: Executor, off_heap: bool, mem: int, disk: int) -> None:
    if ex.has_memory_info:
        if off_heap:
            ex.used_off_heap = max(0, ex.used_off_heap + mem)
        else:
            ex.used_on_heap = max(0, ex.used_on_heap + mem)
    ex.memory_used = max(0, ex.memory_used + mem)
    ex.disk_used = max(0, ex.disk_used + disk)


def _rdd_block(s: AppState, block_id: str, ex: Executor | None, executor_id: str, valid: bool,
               off_heap: bool, mem: int, disk: int) -> None:
    try:
        rdd_id = int(block_id.split("_")[1])
    except (IndexError, ValueError):
        return
    if ex is not None:
        _executor_mem_disk(ex, off_heap, mem, disk)
    blocks_delta = 0
    rdd = s.rdds.get(rdd_id)
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
            for other in s.rdds.values():
                if other is not rdd and (other_dist := other.distributions.get(executor_id)) is not None:
                    other_dist.remaining = None
                    _write_rdd(s, other)
        rdd.memory_used = max(0, rdd.memory_used + mem)
        rdd.disk_used = max(0, rdd.disk_used + disk)
        _write_rdd(s, rdd)
    if ex is not None:
        ex.rdd_blocks += blocks_delta


HANDLERS: dict[str, Handler] = {
    "SparkListenerStageSubmitted": _stage_submitted,
    "SparkListenerExecutorRemoved": _executor_removed,
    "SparkListenerUnpersistRDD": _unpersist,
    "SparkListenerBlockUpdated": _block_updated,
}
