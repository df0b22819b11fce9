"""An SQL execution's plan as a figure: the API's ``nodes`` and ``edges`` laid out top-down.

Each operator is a box with its name and its metrics (the API's display strings, the last
line of a ``total (min, med, max ...)`` value); the ``WholeStageCodegen (N)`` nodes become
clusters drawn around their operators (``wholeStageCodegenId``), labelled with their own
metrics. Data flows down: the API's edges go from a child (``fromId``) to its parent.
The template :file:`ui_plan_svg.html` draws the figure; the text is escaped there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sparkhist.ui.graph import Box, Layout, Route, layered

__all__ = ["PlanFigure", "PlanNode", "plan_figure"]

CHAR_W = 6.2  # px per character of the 10.5 px monospace font the figure uses
LINE_H = 14.0
NODE_W = 330.0
_PAD = 6.0
_CLUSTER_PAD = 10.0
_CLUSTER_LABEL = 16.0
_MAX_CHARS = int((NODE_W - 2 * _PAD) / CHAR_W)


def clip(text: str, chars: int = _MAX_CHARS) -> str:
    """``text`` on one line of at most ``chars`` characters (an ellipsis when cut)."""
    one = " ".join(text.split())
    return one if len(one) <= chars else one[: chars - 1] + "\u2026"


def metric_line(metric: dict[str, Any]) -> str:
    """``name: value``, with a multi-line value's last line (the figures, not the header)."""
    value = str(metric.get("value", ""))
    return f"{metric.get('name', '')}: {value.splitlines()[-1] if value.strip() else value}"


@dataclass(frozen=True)
class PlanNode:
    node_id: int
    name: str
    lines: list[str]  # metrics, each one clipped line
    full: str  # the node's name and every metric in full, for its tooltip
    box: Box[int]


@dataclass(frozen=True)
class PlanCluster:
    node_id: int
    name: str
    label: str
    full: str
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class PlanFigure:
    nodes: list[PlanNode]
    clusters: list[PlanCluster]
    layout: Layout[int]
    width: float
    height: float


def _full(node: dict[str, Any]) -> str:
    return "\n".join([str(node.get("nodeName", "")), *(f"{m.get('name', '')}: {m.get('value', '')}"
                                                       for m in node.get("metrics", []))])


def plan_figure(execution: dict[str, Any]) -> PlanFigure | None:
    """The figure of ``execution`` (an ``/api/v1/.../sql/<id>`` record); None without nodes."""
    records = {int(n["nodeId"]): n for n in execution.get("nodes", [])}
    codegen = {k: n for k, n in records.items() if str(n.get("nodeName", "")).startswith("WholeStageCodegen")}
    operators = sorted(k for k in records if k not in codegen)
    if not operators:
        return None
    sizes = {k: (NODE_W, 2 * _PAD + LINE_H * (1 + len(records[k].get("metrics", [])))) for k in operators}
    edges = [(int(e["fromId"]), int(e["toId"])) for e in execution.get("edges", [])]
    layout = layered(operators, sizes, edges, gap_x=2 * _CLUSTER_PAD + 8, gap_y=2 * _CLUSTER_PAD + _CLUSTER_LABEL + 14)
    # Room for the clusters' labels above the top row.
    layout = _shifted(layout, _CLUSTER_PAD + _CLUSTER_LABEL, _CLUSTER_PAD)
    nodes = [PlanNode(k, clip(str(records[k].get("nodeName", "")), _MAX_CHARS - 2),
                      [clip(metric_line(m)) for m in records[k].get("metrics", [])], _full(records[k]),
                      layout.boxes[k]) for k in operators]
    clusters = []
    by_codegen: dict[int, list[Box[int]]] = {}
    for k in operators:
        cg = records[k].get("wholeStageCodegenId")
        if isinstance(cg, int):
            by_codegen.setdefault(cg, []).append(layout.boxes[k])
    for cid, cluster in sorted(codegen.items()):
        name = str(cluster.get("nodeName", ""))
        cg_id = _codegen_id(name)
        members = by_codegen.get(cg_id, []) if cg_id is not None else []
        if not members:
            continue
        left = min(b.x for b in members) - _CLUSTER_PAD
        top = min(b.y for b in members) - _CLUSTER_PAD - _CLUSTER_LABEL
        right = max(b.x + b.w for b in members) + _CLUSTER_PAD
        bottom = max(b.y + b.h for b in members) + _CLUSTER_PAD
        label = " ".join([name, *(metric_line(m).split(": ", 1)[1] for m in cluster.get("metrics", [])[:1])])
        clusters.append(PlanCluster(cid, name, clip(label, int((right - left) / CHAR_W) - 1), _full(cluster),
                                    left, top, right - left, bottom - top))
    return PlanFigure(nodes, clusters, layout, layout.width, layout.height)


def _codegen_id(name: str) -> int | None:
    """``WholeStageCodegen (3)`` -> 3."""
    inside = name[name.find("(") + 1: name.rfind(")")] if "(" in name else ""
    return int(inside) if inside.isdigit() else None


def _shifted(layout: Layout[int], dy: float, dx: float) -> Layout[int]:
    boxes = {k: Box(k, b.x + dx, b.y + dy, b.w, b.h) for k, b in layout.boxes.items()}
    routes = [Route(r.source, r.target, tuple((x + dx, y + dy) for x, y in r.points)) for r in layout.routes]
    return Layout(boxes, routes, layout.width + 2 * dx, layout.height + dy + _CLUSTER_PAD)
