"""SQL executions: Spark's ``SQLAppStatusListener`` + ``SparkPlanGraph`` + ``SQLMetrics``.

An execution collects its plan graph (rebuilt on every adaptive update), the SQL metrics
of its nodes, per-stage task values of those metrics and driver-side updates. When it ends
(or when the log ends while it runs) the values are aggregated once into the display
strings the SHS shows (``"200,000"``, ``"total (min, med, max (stageId: taskId))\\n..."``),
exactly as ``SQLMetrics.stringValue`` formats them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

import orjson

from sparkhist.state.scala_order import int_order


@dataclass(slots=True)
class PlanNode:
    node_id: int
    name: str
    metrics: list[tuple[str, int, str]]  # (name, accumulatorId, metricType)
    cluster_nodes: list[PlanNode] | None = None  # set for WholeStageCodegen clusters
    desc: str | None = None  # the plan node's ``simpleString`` (SparkPlanGraphNode.desc)


@dataclass(slots=True)
class PlanGraph:
    nodes: list[PlanNode] = field(default_factory=list)
    edges: list[tuple[int, int]] = field(default_factory=list)

    def all_nodes(self) -> list[PlanNode]:
        out: list[PlanNode] = []
        for node in self.nodes:
            if node.cluster_nodes is not None:
                out.extend(node.cluster_nodes)
            out.append(node)
        return out


def build_plan_graph(plan: dict[str, Any]) -> PlanGraph:
    """``SparkPlanGraph.apply``: number the nodes depth-first, fold codegen stages into clusters."""
    graph = PlanGraph()
    counter = [0]
    exchanges: dict[bytes, PlanNode] = {}

    keys: dict[int, bytes] = {}  # id(info) -> key(info): a subtree is keyed once per build

    def key(info: dict[str, Any]) -> bytes:
        k = keys.get(id(info))
        if k is None:
            k = keys[id(info)] = orjson.dumps(info, option=orjson.OPT_SORT_KEYS)
        return k

    def metrics_of(info: dict[str, Any]) -> list[tuple[str, int, str]]:
        metrics = info.get("metrics")
        if not metrics:
            return []
        out = []
        for m in metrics:
            g = m.get
            acc_id = g("accumulatorId", 0)
            out.append((g("name", ""), acc_id if type(acc_id) is int else int(acc_id), g("metricType", "sum")))
        return out

    def build(info: dict[str, Any], parent: PlanNode | None, cluster: PlanNode | None) -> None:
        name = info.get("nodeName", "")
        children = info.get("children") or []
        if name.startswith("WholeStageCodegen"):
            node = PlanNode(counter[0], name, metrics_of(info), [], _desc(info))
            counter[0] += 1
            graph.nodes.append(node)
            build(children[0], parent, node)
        elif name == "InputAdapter":
            build(children[0], parent, None)
        elif name in ("BroadcastQueryStage", "ShuffleQueryStage", "TableCacheQueryStage",
                      "ResultQueryStage"):
            k = key(children[0]) if children else b""
            if k in exchanges and parent is not None:
                graph.edges.append((exchanges[k].node_id, parent.node_id))
            elif children:
                build(children[0], parent, None)
        elif name == "Subquery" and cluster is not None:
            build(info, parent, None)
        elif name == "Subquery" and key(info) in exchanges and parent is not None:
            graph.edges.append((exchanges[key(info)].node_id, parent.node_id))
        elif name == "ReusedSubquery":
            build(children[0], parent, cluster)
        elif name == "ReusedExchange" and children and key(children[0]) in exchanges and parent is not None:
            graph.edges.append((exchanges[key(children[0])].node_id, parent.node_id))
        else:
            node = PlanNode(counter[0], name, metrics_of(info), desc=_desc(info))
            counter[0] += 1
            if cluster is None:
                graph.nodes.append(node)
            else:
                assert cluster.cluster_nodes is not None
                cluster.cluster_nodes.append(node)
            if "Exchange" in name or name == "Subquery":
                exchanges[key(info)] = node
            if parent is not None:
                graph.edges.append((node.node_id, parent.node_id))
            for child in children:
                build(child, node, cluster)

    build(plan, None, None)
    return graph


def _desc(info: dict[str, Any]) -> str | None:
    desc = info.get("simpleString")
    return desc if isinstance(desc, str) else None


@dataclass(slots=True)
class StageMetrics:
    """``LiveStageMetrics``: per task index, the last value of each tracked accumulator."""

    stage_id: int
    attempt_id: int
    num_tasks: int
    execution_id: int
    task_indices: dict[int, int] = field(default_factory=dict)
    completed: set[int] = field(default_factory=set)
    values: dict[int, list[int]] = field(default_factory=dict)
    max_values: dict[int, list[int]] = field(default_factory=dict)  # id -> [value, taskId]


@dataclass(slots=True)
class SQLExecution:
    execution_id: int
    root_execution_id: int | None = None  # None: no start event (0 then, as Spark's unset Long)
    query_id: str | None = None  # the start event's UUID, as ``UUID.toString`` writes it
    modified_configs: dict[str, str] | None = None  # None: no start event (null, left out)
    description: str = ""
    details: str = ""
    plan_description: str = ""
    submission_time: int = -1
    completion_time: int | None = None
    error_message: str | None = None
    graph: PlanGraph = field(default_factory=PlanGraph)
    metric_types: dict[int, str] = field(default_factory=dict)
    jobs: dict[int, str] = field(default_factory=dict)
    stages: list[int] = field(default_factory=list)
    driver_updates: list[tuple[int, int]] = field(default_factory=list)  # a Seq: repeats kept
    metric_values: dict[int, str] | None = None
    end_events: int = 0
    live: bool = True

    @property
    def status(self) -> str:
        if self.completion_time is None:
            return "RUNNING"
        return "FAILED" if self.error_message else "COMPLETED"


# --- SQLMetrics.stringValue --------------------------------------------------------------

def _java_float_format(value: float, digits: int) -> str:
    """``"%.Nf".formatLocal(US, floatValue)``: HALF_UP on the value's shortest decimal form."""
    return str(Decimal(repr(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def _f32(x: float) -> float:
    import struct
    value: float = struct.unpack("f", struct.pack("f", x))[0]
    return value


@lru_cache(maxsize=4096, typed=True)  # pure, and the same sizes recur across tasks and executions
def bytes_to_string(size: int) -> str:
    """``Utils.bytesToString``."""
    units = [(1 << 60, "EiB"), (1 << 50, "PiB"), (1 << 40, "TiB"), (1 << 30, "GiB"),
             (1 << 20, "MiB"), (1 << 10, "KiB")]
    if size >= (1 << 11) * (1 << 60):
        return f"{size} B"
    for base, unit in units:
        if size >= 2 * base:
            value = Decimal(size) / Decimal(base)
            return f"{value.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)} {unit}"
    return f"{Decimal(size).quantize(Decimal('0.1'))} B"


@lru_cache(maxsize=4096, typed=True)  # pure, and the same durations recur across tasks and executions
def ms_duration_to_string(ms: int) -> str:
    """``Utils.msDurationToString`` (float arithmetic like the JVM's)."""
    second, minute, hour = 1000, 60_000, 3_600_000
    if ms < second:
        return f"{ms} ms"
    if ms < minute:
        return _java_float_format(_f32(_f32(float(ms)) / second), 1) + " s"
    if ms < hour:
        return _java_float_format(_f32(_f32(float(ms)) / minute), 1) + " m"
    return _java_float_format(_f32(_f32(float(ms)) / hour), 2) + " h"


def _ns_duration_to_string(ns: int) -> str:
    return ms_duration_to_string(ns // 1_000_000)


def _average_format(value: int) -> str:
    d = (Decimal(value) / Decimal(10)).quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN)
    text = f"{d:,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


_SUFFIX = "(min, med, max (stageId: taskId))"


def string_value(metric_type: str, values: list[int], max_metrics: list[int] | None) -> str:
    task_info = ("(driver)" if not max_metrics
                 else f"(stage {max_metrics[1]}.{max_metrics[2]}: task {max_metrics[3]})")
    if metric_type == "sum":
        return f"{sum(values):,}"
    if metric_type == "average":
        valid = sorted(v for v in values if v > 0)
        if len(valid) <= 1:
            return _average_format(valid[0] if valid else 0)
        lo, med, hi = (_average_format(valid[0]), _average_format(valid[len(valid) // 2]),
                       _average_format(valid[-1]))
        return f"{_SUFFIX}:\n({lo}, {med}, {hi} {task_info})"
    fmt: Callable[[int], str]
    if metric_type == "size":
        fmt = bytes_to_string
    elif metric_type == "timing":
        fmt = ms_duration_to_string
    elif metric_type == "nsTiming":
        fmt = _ns_duration_to_string
    else:
        return "N/A"  # v2 custom metrics: their classes are not on the history server
    valid = sorted(v for v in values if v >= 0)
    if len(valid) <= 1:
        return fmt(valid[0] if valid else 0)
    return (f"total {_SUFFIX}\n{fmt(sum(valid))} ({fmt(valid[0])}, "
            f"{fmt(valid[len(valid) // 2])}, {fmt(valid[-1])} {task_info})")


def aggregate_metrics(execution: SQLExecution, stage_metrics: dict[int, StageMetrics]) -> dict[int, str]:
    """``SQLAppStatusListener.aggregateMetrics``: task values + driver values → strings."""
    types = execution.metric_types
    # ``exec.stages.toSeq``: a Scala immutable Set[Int]; on equal maxima the first stage in its order wins
    live = [stage_metrics[s] for s in int_order(execution.stages) if s in stage_metrics]
    max_all: dict[int, list[int]] = {}
    for sm in live:
        for acc_id, (value, task_id) in sm.max_values.items():
            if acc_id not in types:
                continue
            current = max_all.get(acc_id)
            if current is None:
                max_all[acc_id] = [value, sm.stage_id, sm.attempt_id, task_id]
            elif value > current[0]:
                max_all[acc_id] = [value, sm.stage_id, sm.attempt_id, task_id]
    all_values: dict[int, list[int]] = {}
    for sm in live:
        for acc_id, values in sm.values.items():
            if acc_id in types:
                all_values.setdefault(acc_id, []).extend(values)
    for acc_id, value in execution.driver_updates:
        if acc_id in types:
            all_values.setdefault(acc_id, []).append(value)
            if acc_id in max_all and value > max_all[acc_id][0]:
                del max_all[acc_id]
    return {acc_id: string_value(types[acc_id], values, max_all.get(acc_id))
            for acc_id, values in all_values.items()}
