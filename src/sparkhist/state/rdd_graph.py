"""The RDD operation graphs of stages and jobs: Spark's ``RDDOperationGraph``.

``AppStatusListener.onJobStart`` builds each of the job's stages' graph from the
``StageInfo`` the event carries and stores it by stage id (a later job holding the same
stage writes it again); stage retention drops it with the stage's last attempt. Here
:func:`record` keeps, per stage id, only what ``makeOperationGraph`` reads of each RDD
(id, name, parent ids, scope JSON, callsite, storage level, barrier and determinism
flags), raw: the graph is built when a page asks for it (:func:`stage_graph`,
:func:`job_graphs`), so indexing pays one tuple per RDD of a ``JobStart``.

:func:`make_operation_graph` and :func:`dot_file` follow ``RDDOperationGraph`` (4.2.0)
rule for rule, quirks included: a scope chain attaches its inner cluster to its parent
once per RDD (the dot then repeats that subgraph); cluster names get ``\\n`` escaped;
``(barrier mode)`` and `` (skipped)`` are added to names when read back, as
``RDDOperationClusterWrapper`` and ``AppStatusStore.operationGraphForJob`` do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from sparkhist.config import retention_limits

if TYPE_CHECKING:
    from sparkhist.state.app_state import AppState, Handler

__all__ = ["HANDLERS", "Cluster", "Edge", "Node", "OperationGraph", "RDDRecord", "StageRDDs", "dot_file", "job_graphs",
           "make_operation_graph", "record", "stage_graph"]

STAGE_CLUSTER_PREFIX = "stage_"


class RDDRecord(NamedTuple):
    """What ``makeOperationGraph`` reads of one ``RDDInfo``."""

    rdd_id: int
    name: str
    parent_ids: tuple[int, ...]
    scope: str | None  # the RDDOperationScope's JSON, as logged
    callsite: str
    cached: bool  # storage level is not NONE
    barrier: bool
    deterministic_level: str  # DETERMINATE, UNORDERED or INDETERMINATE


class StageRDDs(NamedTuple):
    """A stage's RDDs as its last ``JobStart`` listed them, and that stage info's attempt."""

    attempt_id: int
    rdds: tuple[RDDRecord, ...]


def _cached(level: dict[str, Any] | None) -> bool:
    """``storageLevel != StorageLevel.NONE`` (no disk, memory or off-heap, serialized, 1 replica)."""
    if not level:
        return False
    return bool(level.get("Use Disk") or level.get("Use Memory") or level.get("Use Off Heap")
                or level.get("Deserialized") or level.get("Replication", 1) != 1)


def rdd_record(rdd: dict[str, Any]) -> RDDRecord:
    g = rdd.get
    scope = g("Scope")
    return RDDRecord(
        int(g("RDD ID", 0)), g("Name") or "", tuple(int(p) for p in g("Parent IDs") or ()),
        scope if isinstance(scope, str) else None, g("Callsite") or "", _cached(g("Storage Level")),
        bool(g("Barrier", False)), g("DeterministicLevel") or "DETERMINATE")


def record(state: AppState, infos: list[dict[str, Any]]) -> None:
    """A ``JobStart``'s stage infos: each stage's RDDs, replacing what an earlier job recorded."""
    state.rdd_graphs.update({si.get("Stage ID", 0): StageRDDs(si.get("Stage Attempt ID", 0) or 0,
                                                              tuple(map(rdd_record, si.get("RDD Info") or ())))
                             for si in infos})


def _job_start(state: AppState, event: dict[str, Any]) -> None:
    record(state, event.get("Stage Infos") or [])


HANDLERS: dict[str, Handler] = {"SparkListenerJobStart": _job_start}


def forget_stage(state: AppState, stage_id: int) -> None:
    """Stage retention removed a stage attempt: the graph goes with the stage's last attempt."""
    if stage_id in state.rdd_graphs and not any(key[0] == stage_id for key in state.stages):
        del state.rdd_graphs[stage_id]


# --------------------------------------------------------------------------- the graph
@dataclass(frozen=True, slots=True)
class Node:
    rdd_id: int
    name: str
    cached: bool
    barrier: bool
    callsite: str
    deterministic_level: str

    @property
    def flags(self) -> str:
        """`` [Cached] [Barrier] [Indeterminate]``, as the node's dot label shows them."""
        level = {"INDETERMINATE": " [Indeterminate]", "UNORDERED": " [Unordered]"}.get(self.deterministic_level, "")
        return (" [Cached]" if self.cached else "") + (" [Barrier]" if self.barrier else "") + level


@dataclass(eq=False, slots=True)
class Cluster:
    cluster_id: str
    name: str
    barrier: bool = False
    nodes: list[Node] = field(default_factory=list)
    clusters: list[Cluster] = field(default_factory=list)

    def walk(self) -> list[Cluster]:
        """This cluster and every cluster inside it, depth first (repeats included)."""
        out = [self]
        for child in self.clusters:
            out.extend(child.walk())
        return out

    def cached_nodes(self) -> list[Node]:
        return [n for c in self.walk() for n in c.nodes if n.cached]

    def barrier_clusters(self) -> list[Cluster]:
        """``getBarrierClusters``: the barrier clusters below this one (not itself)."""
        out = [c for c in self.clusters if c.barrier]
        for child in self.clusters:
            out.extend(child.barrier_clusters())
        return out

    def indeterminate_nodes(self) -> list[Node]:
        return [n for c in self.walk() for n in c.nodes if n.deterministic_level == "INDETERMINATE"]


Edge = tuple[int, int]  # (parent RDD id, child RDD id)


@dataclass(slots=True)
class OperationGraph:
    stage_id: int
    edges: list[Edge]  # both ends in this stage
    outgoing: list[Edge]
    incoming: list[Edge]  # from an RDD of another stage
    root: Cluster

    @property
    def skipped(self) -> bool:
        return "skipped" in self.root.name


def _scopes(scope_json: str) -> list[tuple[str, str]]:
    """``RDDOperationScope.fromJson(..).getAllScopes``: (id, name), outermost first."""
    chain: list[tuple[str, str]] = []
    try:
        scope: Any = orjson.loads(scope_json)
    except orjson.JSONDecodeError:
        return chain
    while isinstance(scope, dict):
        chain.append((str(scope.get("id", "")), str(scope.get("name", ""))))
        scope = scope.get("parent")
    chain.reverse()
    return chain


def make_operation_graph(stage_id: int, stage: StageRDDs, retained_roots: int | None = None) -> OperationGraph:
    """``makeOperationGraph`` then the wrapper's round trip (``toRDDOperationCluster``):
    ``retained_roots`` is ``spark.ui.dagGraph.retainedRootRDDs`` (None: unlimited, the default)."""
    edges: list[Edge] = []
    nodes: dict[int, Node] = {}
    clusters: dict[str, Cluster] = {}
    name = f"Stage {stage_id}" + ("" if stage.attempt_id == 0 else f" (attempt {stage.attempt_id})")
    root = Cluster(STAGE_CLUSTER_PREFIX + str(stage_id), name)
    root_count = 0
    added: set[int] = set()
    dropped: set[int] = set()
    for rdd in sorted(stage.rdds, key=lambda r: r.rdd_id):
        parents = rdd.parent_ids
        if not parents:
            root_count += 1
            allowed = retained_roots is None or root_count <= retained_roots
        else:
            allowed = any(p in added or p not in dropped for p in parents)
        if allowed:
            added.add(rdd.rdd_id)
            edges.extend((p, rdd.rdd_id) for p in parents if p not in dropped)
        else:
            dropped.add(rdd.rdd_id)
        node = nodes.get(rdd.rdd_id)
        if node is None:
            node = nodes[rdd.rdd_id] = Node(rdd.rdd_id, rdd.name, rdd.cached, rdd.barrier, rdd.callsite,
                                            rdd.deterministic_level)
        chain = _scopes(rdd.scope) if rdd.scope is not None else []
        if not chain:
            if allowed:
                root.nodes.append(node)
            continue
        scoped = []
        for scope_id, scope_name in chain:
            cluster = clusters.get(scope_id)
            if cluster is None:
                cluster = clusters[scope_id] = Cluster(scope_id, scope_name.replace("\n", "\\n"))
            scoped.append(cluster)
        for parent, child in zip(scoped, scoped[1:], strict=False):
            parent.clusters.append(child)  # once per RDD, as Spark does
        if not any(c is scoped[0] for c in root.clusters):
            root.clusters.append(scoped[0])
        if allowed:
            scoped[-1].nodes.append(node)
    internal, outgoing, incoming = [], [], []
    for a, b in edges:
        if a in nodes and b in nodes:
            internal.append((a, b))
        elif a in nodes:
            outgoing.append((a, b))
        elif b in nodes:
            incoming.append((a, b))
    return OperationGraph(stage_id, internal, outgoing, incoming, _read_back(root, {}))


def _read_back(cluster: Cluster, done: dict[int, Cluster]) -> Cluster:
    """``RDDOperationClusterWrapper.toRDDOperationCluster``: a cluster holding a barrier RDD is
    a barrier cluster named ``<name>\\n(barrier mode)`` (a repeated child is read back once)."""
    kept = done.get(id(cluster))
    if kept is not None:
        return kept
    barrier = any(n.barrier for n in cluster.nodes)
    out = done[id(cluster)] = Cluster(cluster.cluster_id, cluster.name + "\n(barrier mode)" if barrier else cluster.name,
                                      barrier, list(cluster.nodes))
    out.clusters = [_read_back(c, done) for c in cluster.clusters]
    return out


def stage_graph(state: AppState, stage_id: int) -> OperationGraph | None:
    """``operationGraphForStage``, None when no job recorded the stage (or retention dropped it)."""
    stage = state.rdd_graphs.get(stage_id)
    # The server's spark.ui.dagGraph.retainedRootRDDs (part of the parse variant the state was read with).
    roots = retention_limits().root_rdds
    return None if stage is None else make_operation_graph(stage_id, stage, None if roots >= 2**31 - 1 else roots)


def job_graphs(state: AppState, job_id: int) -> list[OperationGraph] | None:
    """``operationGraphForJob``: the job's stages' graphs by stage id, skipped ones named so;
    None when the job or one of its stages' graphs is gone (the SHS shows no DAG then)."""
    job = state.jobs.get(job_id)
    if job is None:
        return None
    graphs = []
    for stage_id in sorted(job.stage_ids):
        graph = stage_graph(state, stage_id)
        if graph is None:
            return None
        if stage_id in job.skipped_stages and "skipped" not in graph.root.name:
            graph.root.name += " (skipped)"
        graphs.append(graph)
    return graphs


# --------------------------------------------------------------------------- dot text
def escape_java(text: str) -> str:
    """commons-text ``StringEscapeUtils.escapeJava``."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif 32 <= code < 0x7F:
            out.append(ch)
        elif ch in _CONTROL:
            out.append(_CONTROL[ch])
        elif code > 0xFFFF:
            high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
            out.append(f"\\u{high:04X}\\u{low:04X}")
        else:
            out.append(f"\\u{code:04X}")
    return "".join(out)


_CONTROL = {"\b": "\\b", "\n": "\\n", "\t": "\\t", "\f": "\\f", "\r": "\\r"}


def escape_xml(text: str) -> str:
    """``scala.xml.Utility.escape``: ``< > & "`` as entities, other control characters
    but newline, return and tab dropped."""
    out = []
    for ch in text:
        if ch in _XML:
            out.append(_XML[ch])
        elif ch >= " " or ch in "\n\r\t":
            out.append(ch)
    return "".join(out)


_XML = {"<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;"}


def dot_node(node: Node) -> str:
    label = escape_java(f"{node.name} [{node.rdd_id}]{node.flags}<br>{escape_xml(node.callsite)}")
    return f'{node.rdd_id} [id="node_{node.rdd_id}" labelType="html" label="{label}"]'


def _dot_subgraph(out: list[str], cluster: Cluster, indent: str, prefix: str) -> None:
    cid = prefix + cluster.cluster_id
    out.append(f'{indent}subgraph {cid} {{\n{indent}  id="{cid}";\n{indent}  isCluster="true";\n'
               f'{indent}  label="{escape_java(cluster.name)}";\n')
    for node in cluster.nodes:
        out.append(f"{indent}  {dot_node(node)};\n")
    for child in cluster.clusters:
        _dot_subgraph(out, child, indent + "  ", "cluster_")
    out.append(f"{indent}}}\n")


def dot_file(graph: OperationGraph) -> str:
    """``makeDotFile``: the text the SHS puts in a page's ``dot-file`` element."""
    out = ["digraph G {\n", f'  id="graph_{graph.root.cluster_id.replace(STAGE_CLUSTER_PREFIX, "")}";\n']
    _dot_subgraph(out, graph.root, "  ", "graph_")
    out.extend(f"  {a}->{b};\n" for a, b in graph.edges)
    out.append("}")
    return "".join(out)
