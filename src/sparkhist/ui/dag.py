"""The "DAG Visualization" of a job or stage page: its RDD operation graphs as a figure.

The graphs are the state's (:mod:`sparkhist.state.rdd_graph`, what the SHS stores as
``RDDOperationGraphWrapper``), asked for through the same dispatch as the API's records
(:func:`with_dag_records`: a resource only the UI reaches, the SHS's ``/api/v1`` has none).
Each stage is laid out on its own by :func:`sparkhist.ui.graph.layered` (its RDDs as boxes
labelled ``name [id]`` with the SHS's flags, the callsite beside, the full text as the
tooltip) and framed by its cluster; the operation scopes are nested boxes around their
RDDs, named. A job's stages stand side by side, the edges between them (a stage's
incoming edges from another stage's RDD) drawn as curves; skipped stages are greyed,
cached RDDs filled, barrier clusters and indeterminate RDDs marked. Pure geometry: the
template :file:`ui_dag.html` draws it as SVG (every string escaped there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sparkhist.state import rdd_graph
from sparkhist.state.rdd_graph import Cluster, Node, OperationGraph
from sparkhist.ui.graph import Box, Layout, layered

__all__ = ["DAG_RESOURCE", "DagFigure", "dag_figure", "with_dag_records"]

#: The records path of a page's graphs: ``[*DAG_RESOURCE, "job" | "stage", id]`` (below ``stages``,
#: so the dispatch's attempt rules apply; answered by :func:`with_dag_records` alone).
DAG_RESOURCE = ("stages", "rddOperationGraph")

CHAR_W = 6.2  # px per character of the figure's 10.5 px monospace font
NODE_H = 34.0
_MIN_W, _MAX_CHARS = 90.0, 40
_PAD = 8.0  # inside a cluster, around what it holds
_LABEL = 15.0  # a cluster's name line
_STAGE_GAP = 36.0


def with_dag_records(handle: Callable[..., Any]) -> Callable[..., Any]:
    """``handle`` (the API's per-application resources) plus the DAG records: for
    ``[*DAG_RESOURCE, "job", id]`` the job's graphs (None when the SHS shows no DAG), for
    ``[*DAG_RESOURCE, "stage", id]`` the stage's (an empty list when it has none)."""

    def handle_with_dags(state: Any, rest: list[str], query: Any, **kwargs: Any) -> Any:
        if len(rest) == 4 and tuple(rest[:2]) == DAG_RESOURCE and rest[3].isdigit():
            if rest[2] == "job":
                return rdd_graph.job_graphs(state, int(rest[3]))
            graph = rdd_graph.stage_graph(state, int(rest[3]))
            return [] if graph is None else [graph]
        return handle(state, rest, query, **kwargs)

    return handle_with_dags


def clip(text: str, chars: int = _MAX_CHARS) -> str:
    one = " ".join(text.split())
    return one if len(one) <= chars else one[: chars - 1] + "\u2026"


@dataclass(frozen=True)
class DagNode:
    rdd_id: int
    label: str  # name [id] and flags, clipped
    callsite: str  # clipped
    title: str  # the full label and callsite, the tooltip
    cached: bool
    barrier: bool
    indeterminate: bool
    skipped: bool  # in a skipped stage
    box: Box[int]


@dataclass(frozen=True)
class DagCluster:
    cluster_id: str
    label: str
    title: str
    kind: str  # "stage", "skipped" (a skipped stage) or "scope"
    barrier: bool
    skipped: bool  # a skipped stage or a scope inside one
    x: float
    y: float
    w: float
    h: float
    href: str | None = None  # a stage's page


@dataclass(frozen=True)
class DagFigure:
    clusters: list[DagCluster]  # outer before inner: drawn in this order
    nodes: list[DagNode]
    edges: list[str]  # SVG path data, inside a stage
    cross_edges: list[str]  # between stages
    width: float
    height: float


def _label(node: Node) -> str:
    return f"{node.name} [{node.rdd_id}]{node.flags}"


def _members(cluster: Cluster, seen: set[int]) -> list[Node]:
    out = []
    for c in cluster.walk():
        for n in c.nodes:
            if n.rdd_id not in seen:
                seen.add(n.rdd_id)
                out.append(n)
    return out


def _depth(cluster: Cluster) -> int:
    return 1 + max((_depth(c) for c in dict.fromkeys(cluster.clusters)), default=0)


@dataclass
class _Placed:
    graph: OperationGraph
    layout: Layout[int]
    nodes: list[Node]
    depth: int


def _place(graph: OperationGraph) -> _Placed:
    nodes = _members(graph.root, set())
    depth = _depth(graph.root)
    sizes = {n.rdd_id: (max(_MIN_W, CHAR_W * (max(len(clip(_label(n))), len(clip(n.callsite))) + 2)), NODE_H)
             for n in nodes}
    frame = depth * (_PAD + _LABEL)
    layout = layered([n.rdd_id for n in nodes], sizes, graph.edges, gap_x=2 * _PAD * depth, gap_y=frame + 12)
    return _Placed(graph, layout, nodes, depth)


def _cluster_boxes(cluster: Cluster, boxes: dict[int, Box[int]], dx: float, dy: float, depth: int,
                   out: list[tuple[Cluster, tuple[float, float, float, float], int]], seen: set[int]) -> \
        tuple[float, float, float, float] | None:
    """The rectangle (left, top, right, bottom) of ``cluster`` around its nodes and inner
    clusters; appended to ``out`` (outer first) with its nesting depth. A cluster repeated
    in the graph (Spark attaches a scope once per RDD) is drawn once."""
    if id(cluster) in seen:
        return None
    seen.add(id(cluster))
    at = len(out)
    rects = [(boxes[n.rdd_id].x + dx, boxes[n.rdd_id].y + dy, boxes[n.rdd_id].x + dx + boxes[n.rdd_id].w,
              boxes[n.rdd_id].y + dy + boxes[n.rdd_id].h) for n in cluster.nodes if n.rdd_id in boxes]
    for child in cluster.clusters:
        rect = _cluster_boxes(child, boxes, dx, dy, depth + 1, out, seen)
        if rect is not None:
            rects.append(rect)
    if not rects:
        return None
    left = min(r[0] for r in rects) - _PAD
    top = min(r[1] for r in rects) - _PAD - _LABEL
    right = max(r[2] for r in rects) + _PAD
    bottom = max(r[3] for r in rects) + _PAD
    out.insert(at, (cluster, (left, top, right, bottom), depth))
    return left, top, right, bottom


def dag_figure(graphs: list[OperationGraph] | None, stage_href: Callable[[int, int], str] | None = None) \
        -> DagFigure | None:
    """The figure of a page's graphs (its stages side by side), None when there is nothing
    to draw; ``stage_href(stage id, attempt)`` links each stage's frame to its page."""
    if not graphs:
        return None
    clusters: list[DagCluster] = []
    nodes: list[DagNode] = []
    edges: list[str] = []
    where: dict[int, Box[int]] = {}  # every node's box in the figure, for the cross-stage edges
    x = 0.0
    height = 0.0
    for placed in map(_place, graphs):
        graph = placed.graph
        frame = placed.depth * (_PAD + _LABEL)
        dx, dy = x + placed.depth * _PAD, frame
        boxes = placed.layout.boxes
        found: list[tuple[Cluster, tuple[float, float, float, float], int]] = []
        if not _cluster_boxes(graph.root, boxes, dx, dy, 0, found, set()):
            # A stage without RDDs still shows its frame.
            found = [(graph.root, (x, 0.0, x + 120.0, 2 * _PAD + _LABEL + 10), 0)]
        right = x
        for cluster, (left, top, r, bottom), depth in found:
            stage = depth == 0
            kind = ("skipped" if graph.skipped else "stage") if stage else "scope"
            href = None
            if stage and stage_href is not None:
                href = stage_href(graph.stage_id, _attempt(cluster.name))
            name = cluster.name.replace("\\n", " ").replace("\n", " ")
            clusters.append(DagCluster(cluster.cluster_id, clip(name, max(4, int((r - left) / CHAR_W) - 1)),
                                       name, kind, cluster.barrier, graph.skipped, left, top, r - left, bottom - top,
                                       href))
            right = max(right, r)
            height = max(height, bottom)
        for n in placed.nodes:
            b = boxes[n.rdd_id]
            box = Box(n.rdd_id, b.x + dx, b.y + dy, b.w, b.h)
            where[n.rdd_id] = box
            nodes.append(DagNode(n.rdd_id, clip(_label(n)), clip(n.callsite), f"{_label(n)}\n{n.callsite}", n.cached,
                                 n.barrier, n.deterministic_level == "INDETERMINATE", graph.skipped, box))
        for route in placed.layout.routes:
            pts = [(px + dx, py + dy) for px, py in route.points]
            edges.append("M" + " L".join(f"{px:.1f},{py:.1f}" for px, py in pts))
        x = right + _STAGE_GAP
    cross: list[str] = []
    for graph in graphs:
        for source, target in graph.incoming:
            if source in where and target in where:
                s, t = where[source], where[target]
                sx, sy, tx, ty = s.x + s.w, s.y + s.h / 2, t.x, t.y + t.h / 2
                if tx <= sx:  # drawn right to left: from the source's bottom to the target's top
                    sx, sy, tx, ty = s.cx, s.y + s.h, t.cx, t.y
                bend = max(30.0, abs(tx - sx) / 2)
                cross.append(f"M{sx:.1f},{sy:.1f} C{sx + bend:.1f},{sy:.1f} {tx - bend:.1f},{ty:.1f} {tx:.1f},{ty:.1f}")
    return DagFigure(clusters, nodes, edges, cross, max(x - _STAGE_GAP, 0.0) + 2 * _PAD, height + 2 * _PAD)


def _attempt(stage_name: str) -> int:
    """``Stage 3 (attempt 1)`` -> 1, as the SHS's script links a stage's frame."""
    marker = "(attempt "
    at = stage_name.find(marker)
    if at < 0:
        return 0
    digits = stage_name[at + len(marker):].split(")", 1)[0]
    return int(digits) if digits.isdigit() else 0
