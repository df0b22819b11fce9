"""A small layered layout for directed graphs drawn top-down (SQL plans, stage DAGs).

Sugiyama's steps, kept short: layers by longest path from the sources, a dummy point on
every layer a long edge crosses, a few barycenter sweeps to order each layer, then x
positions pulled toward the neighbours' centres without overlapping. Pure geometry: the
pages give box sizes and edges, the templates draw the result as SVG.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Box", "Layout", "Route", "layered"]

K = TypeVar("K", bound=Hashable)

_SWEEPS = 6
_MARGIN = 8.0


@dataclass(frozen=True)
class Box(Generic[K]):
    key: K
    x: float  # left
    y: float  # top
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2


@dataclass(frozen=True)
class Route(Generic[K]):
    source: K
    target: K
    points: tuple[tuple[float, float], ...]  # from the source's bottom to the target's top

    @property
    def path(self) -> str:
        """The route as an SVG path's ``d`` (numbers only)."""
        (x0, y0), *rest = self.points
        return f"M{x0:.1f},{y0:.1f}" + "".join(f" L{x:.1f},{y:.1f}" for x, y in rest)


@dataclass(frozen=True)
class Layout(Generic[K]):
    boxes: dict[K, Box[K]]
    routes: list[Route[K]]
    width: float
    height: float


class _Dummy:
    """A point where a long edge crosses a layer."""

    __slots__ = ()


def layered(keys: Sequence[K], sizes: Mapping[K, tuple[float, float]], edges: Sequence[tuple[K, K]],
            gap_x: float = 24.0, gap_y: float = 36.0) -> Layout[K]:
    """``keys`` laid out top-down (sources on top), each a ``sizes[key]`` (width, height) box;
    ``edges`` (source, target) with an unknown end or closing a cycle are left out."""
    known = set(keys)
    order_hint: dict[object, int] = {k: i for i, k in enumerate(keys)}
    succ: dict[K, list[K]] = {k: [] for k in keys}
    kept: list[tuple[K, K]] = []
    for a, b in dict.fromkeys(edges):
        if a in known and b in known and a != b:
            succ[a].append(b)
            kept.append((a, b))
    kept = _acyclic(keys, succ, kept)
    pred: dict[K, list[K]] = {k: [] for k in keys}
    succ = {k: [] for k in keys}
    for a, b in kept:
        succ[a].append(b)
        pred[b].append(a)

    layer = _longest_path_layers(keys, succ, pred)
    depth = max(layer.values(), default=-1) + 1

    # Nodes of the layered graph: the keys and one dummy per crossed layer of a long edge.
    node_layer: dict[object, int] = {k: v for k, v in layer.items()}
    up: dict[object, list[object]] = {k: [] for k in keys}
    down: dict[object, list[object]] = {k: [] for k in keys}
    chains: list[tuple[K, K, list[object]]] = []
    for a, b in kept:
        chain: list[object] = [a]
        for lyr in range(layer[a] + 1, layer[b]):
            dummy = _Dummy()
            node_layer[dummy] = lyr
            up[dummy], down[dummy] = [], []
            chain.append(dummy)
        chain.append(b)
        for u, v in zip(chain, chain[1:], strict=False):
            down[u].append(v)
            up[v].append(u)
        chains.append((a, b, chain[1:-1]))

    layers: list[list[object]] = [[] for _ in range(depth)]
    for node in sorted(node_layer, key=lambda n: (node_layer[n], order_hint.get(n, len(order_hint)))):
        layers[node_layer[node]].append(node)
    _order(layers, up, down)

    def width(n: object) -> float:
        return sizes[n][0] if n in known else 0.0

    xs = _positions(layers, up, down, width, gap_x)
    tops: list[float] = []
    y = _MARGIN
    heights = [max((sizes[n][1] for n in lyr if n in known), default=0.0) for lyr in layers]
    for h in heights:
        tops.append(y)
        y += h + gap_y
    boxes: dict[K, Box[K]] = {}
    for k in keys:
        w, h = sizes[k]
        lyr = layer[k]
        boxes[k] = Box(k, xs[k], tops[lyr] + (heights[lyr] - h) / 2, w, h)
    routes: list[Route[K]] = []
    for a, b, dummies in chains:
        pts = [(boxes[a].cx, boxes[a].y + boxes[a].h)]
        for d in dummies:
            lyr = node_layer[d]
            pts.append((xs[d], tops[lyr]))
            pts.append((xs[d], tops[lyr] + heights[lyr]))
        pts.append((boxes[b].cx, boxes[b].y))
        routes.append(Route(a, b, tuple(pts)))
    right = max((b.x + b.w for b in boxes.values()), default=0.0)
    return Layout(boxes, routes, right + _MARGIN, max(y - gap_y + _MARGIN, 2 * _MARGIN))


def _acyclic(keys: Sequence[K], succ: dict[K, list[K]], edges: list[tuple[K, K]]) -> list[tuple[K, K]]:
    """``edges`` without the back edges of a depth-first search (iterative: plans can be deep)."""
    state: dict[K, int] = {}
    back: set[tuple[K, K]] = set()
    for root in keys:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(succ[root]))]
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                back.add((node, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
    return [e for e in edges if e not in back]


def _longest_path_layers(keys: Sequence[K], succ: dict[K, list[K]], pred: dict[K, list[K]]) -> dict[K, int]:
    indegree = {k: len(pred[k]) for k in keys}
    ready = [k for k in keys if indegree[k] == 0]
    layer = dict.fromkeys(keys, 0)
    while ready:
        k = ready.pop()
        for n in succ[k]:
            layer[n] = max(layer[n], layer[k] + 1)
            indegree[n] -= 1
            if indegree[n] == 0:
                ready.append(n)
    return layer


def _order(layers: list[list[object]], up: dict[object, list[object]], down: dict[object, list[object]]) -> None:
    """Barycenter sweeps, down then up, each layer sorted by its neighbours' mean position."""
    for sweep in range(_SWEEPS):
        downward = sweep % 2 == 0
        rng = range(1, len(layers)) if downward else range(len(layers) - 2, -1, -1)
        for i in rng:
            fixed = layers[i - 1] if downward else layers[i + 1]
            pos = {n: j for j, n in enumerate(fixed)}
            near = up if downward else down

            def center(n: object, j: int, near: dict[object, list[object]] = near,
                       pos: dict[object, int] = pos) -> float:
                found = [pos[m] for m in near[n] if m in pos]
                return sum(found) / len(found) if found else float(j)

            keyed = [(center(n, j), j, n) for j, n in enumerate(layers[i])]
            keyed.sort(key=lambda t: (t[0], t[1]))
            layers[i] = [n for _, _, n in keyed]


def _positions(layers: list[list[object]], up: dict[object, list[object]], down: dict[object, list[object]],
               w: Callable[[object], float], gap: float) -> dict[object, float]:
    """Left edges of the keys and centres of the dummies: packed, then pulled toward the
    neighbours' centres in a few passes, keeping each layer's order and gaps."""
    x: dict[object, float] = {}
    for lyr in layers:
        at = _MARGIN
        for n in lyr:
            x[n] = at + w(n) / 2  # centres while placing
            at += w(n) + gap
    for sweep in range(_SWEEPS):
        downward = sweep % 2 == 0
        rng = range(1, len(layers)) if downward else range(len(layers) - 2, -1, -1)
        for i in rng:
            near = up if downward else down
            lyr = layers[i]
            want = []
            for n in lyr:
                found = [x[m] for m in near[n]]
                want.append(sum(found) / len(found) if found else x[n])
            placed = _fit(want, [w(n) for n in lyr], gap)
            for n, c in zip(lyr, placed, strict=True):
                x[n] = c
    low = min((x[n] - w(n) / 2 for lyr in layers for n in lyr), default=_MARGIN)
    shift = _MARGIN - low
    return {n: (x[n] + shift - w(n) / 2) if w(n) else x[n] + shift for lyr in layers for n in lyr}


def _fit(want: list[float], widths: list[float], gap: float) -> list[float]:
    """Centres as close to ``want`` as the order and the gaps allow: pushed right, then the
    whole run shifted back by its mean overshoot (a cheap stand-in for a least-squares fit)."""
    out: list[float] = []
    for i, c in enumerate(want):
        if out:
            least = out[-1] + widths[i - 1] / 2 + gap + widths[i] / 2
            c = max(c, least)
        out.append(c)
    if out:
        shift = sum(o - c for o, c in zip(out, want, strict=True)) / len(out)
        out = [o - shift for o in out]
    return out
