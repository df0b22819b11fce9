"""The "DAG Visualization" of job and stage pages, over the UI corpus (bundled samples and
every conformance log), served by a real runtime from its snapshots.

Without JavaScript: every job and stage page draws, in its SVG, exactly the RDDs, scope
clusters and stage frames of the state's graphs (which ``tests/state/test_rdd_graph.py``
proves equal to the real SHS's), every RDD inside its stage's frame and its scopes' boxes,
no two RDD boxes of a stage overlapping, skipped stages greyed, cached RDDs marked, the
edges between stages drawn, each stage frame linked to its page. In headless Chromium
(under a CSP without 'unsafe-inline'): the section opens, the SVG shows the nodes, no
console error, no failed request.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from sparkhist.server import Runtime
from sparkhist.state import rdd_graph
from support.ui_corpus import ParsedPage, ui_server
from ui.test_browser import _served, _visit, browser  # noqa: F401  (the Chromium fixture)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, TestClient]]:
    with ui_server(tmp_path_factory.mktemp("dag")) as pair:
        yield pair


def _attempts(runtime: Runtime) -> Iterator[tuple[Any, Any, str]]:
    for app_id in sorted(a["id"] for a in TestClient(runtime.app).get("/api/v1/applications").json()):
        app = runtime.index.get(app_id)
        assert app is not None
        for attempt in app.attempts:
            base = f"/history/{quote(app.id, safe='')}/" + (f"{quote(attempt.attempt_id, safe='')}/"
                                                             if attempt.attempt_id else "")
            yield app, attempt, base


_NUM = r"(-?[\d.]+)"


def _boxes(html: str, cls: str, key: str) -> dict[str, list[tuple[float, float, float, float]]]:
    """``key`` attribute -> the rectangles (x, y, w, h) of the ``<g class="<cls> ...">`` groups."""
    out: dict[str, list[tuple[float, float, float, float]]] = {}
    pattern = (rf'<g class="{cls}([^"]*)" {key}="([^"]+)"[^>]*><title>[^<]*</title>\s*'
               rf'<rect x="{_NUM}" y="{_NUM}" width="{_NUM}" height="{_NUM}"')
    for m in re.finditer(pattern, html):
        out.setdefault(m[2], []).append((float(m[3]), float(m[4]), float(m[5]), float(m[6])))
    return out


def _classes(html: str, cls: str, key: str) -> dict[str, set[str]]:
    return {m[2]: set(m[1].split()) for m in re.finditer(rf'<g class="{cls}([^"]*)" {key}="([^"]+)"', html)}


def _inside(inner: tuple[float, float, float, float], outer: tuple[float, float, float, float]) -> bool:
    x, y, w, h = inner
    ox, oy, ow, oh = outer
    return ox <= x and oy <= y and x + w <= ox + ow + 0.01 and y + h <= oy + oh + 0.01


def _check_page(html: str, graphs: list[rdd_graph.OperationGraph], where: str, for_job: bool) -> int:
    page = ParsedPage(html)
    assert page.problems == [], (where, page.problems[:3])
    nodes = _boxes(html, "dag-node", "data-rdd-id")
    clusters = _boxes(html, "dag-cluster", "data-cluster-id")
    node_classes = _classes(html, "dag-node", "data-rdd-id")
    cluster_classes = _classes(html, "dag-cluster", "data-cluster-id")
    expected_nodes = {str(n.rdd_id): n for g in graphs for c in g.root.walk() for n in c.nodes}
    assert set(nodes) == set(expected_nodes), where
    assert all(len(v) == 1 for v in nodes.values()), where  # each RDD drawn once
    expected_clusters = {c.cluster_id for g in graphs for c in g.root.walk()}
    # A stage without RDDs still has its frame; a scope without drawn RDDs has none.
    drawn = {c.cluster_id for g in graphs for c in g.root.walk()
             if c is g.root or any(n for d in c.walk() for n in d.nodes)}
    assert set(clusters) == drawn and drawn <= expected_clusters, where
    for g in graphs:
        frame = clusters[g.root.cluster_id][0]
        assert ("skipped" in cluster_classes[g.root.cluster_id]) == g.skipped, where
        own = [str(n.rdd_id) for c in g.root.walk() for n in c.nodes]
        for rid in own:
            assert _inside(nodes[rid][0], frame), (where, rid)
            assert ("cached" in node_classes[rid]) == expected_nodes[rid].cached, (where, rid)
            assert ("in-skipped" in node_classes[rid]) == g.skipped, (where, rid)
        for c in g.root.walk()[1:]:
            for n in (n for d in c.walk() for n in d.nodes):
                assert any(_inside(nodes[str(n.rdd_id)][0], box) for box in clusters[c.cluster_id]), (where, c.name)
        boxes = sorted(nodes[rid][0] for rid in set(own))
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                overlap = a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]
                assert not overlap, (where, a, b)
    if for_job:
        ids = {str(n.rdd_id) for g in graphs for c in g.root.walk() for n in c.nodes}
        crossing = sum(1 for g in graphs for a, b in g.incoming if str(a) in ids and str(b) in ids)
        assert html.count('class="edge cross-stage"') == crossing, where
        links = re.findall(r'<a href="([^"]+)" class="dag-stage-link">', html)
        assert len(links) == len(graphs), where
    else:
        assert "dag-stage-link" not in html, where
    return len(nodes)


def _dag_page(client: TestClient, path: str, params: dict[str, int], kind: str, empty: bool, where: str) -> str:
    """A job's or stage's page, with its DAG section, which says so where there is nothing to draw."""
    html = client.get(path, params=params).text
    assert f'id="{kind}-dag-viz"' in html, where
    if empty:
        assert f"No DAG visualization information to display for {kind}" in html, where
    return html


def test_every_job_and_stage_page_draws_the_states_graphs(served: tuple[Runtime, TestClient]) -> None:
    runtime, client = served
    pages = drawn = skipped = cached = crossing = 0
    for app, attempt, base in _attempts(runtime):
        state = runtime.states.get(app, attempt).state
        for job_id in sorted(state.jobs):
            graphs = rdd_graph.job_graphs(state, job_id)
            where = f"{base} job {job_id}"
            html = _dag_page(client, f"{base}jobs/job/", {"id": job_id}, "job", graphs is None, where)
            if graphs is None:
                continue
            drawn += _check_page(html, graphs, where, True)
            skipped += sum(g.skipped for g in graphs)
            crossing += html.count('class="edge cross-stage"')
            pages += 1
        for stage_id, attempt_id in sorted(state.stages):
            graph = rdd_graph.stage_graph(state, stage_id)
            where = f"{base} stage {stage_id}.{attempt_id}"
            html = _dag_page(client, f"{base}stages/stage/", {"id": stage_id, "attempt": attempt_id}, "stage",
                             graph is None, where)
            if graph is None:
                continue
            drawn += _check_page(html, [graph], where, False)
            cached += len(graph.root.cached_nodes())
            pages += 1
    # The corpus exercises what the figure claims to draw.
    assert pages >= 100 and drawn >= 500, (pages, drawn)
    assert skipped > 0 and cached > 0 and crossing > 0, (skipped, cached, crossing)


def test_dag_in_chromium(served: tuple[Runtime, TestClient], browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    runtime, client = served
    with _served(runtime.app) as url:
        checked = 0
        for app, attempt, base in _attempts(runtime):
            state = runtime.states.get(app, attempt).state
            job_id = max(state.jobs, key=lambda j: len(state.jobs[j].stage_ids), default=None)
            if job_id is None:
                continue
            graphs = rdd_graph.job_graphs(state, job_id)
            if not graphs or checked >= 12:
                continue
            _visit(browser, f"{url}{base}jobs/job/?id={job_id}")
            browser.find_element(By.CSS_SELECTOR, "#job-dag-viz > summary").click()
            shown = browser.execute_script(
                "return Array.from(document.querySelectorAll('#dag-graph g.dag-node'))"
                ".filter(g => g.getBoundingClientRect().width > 0).map(g => g.dataset.rddId)")
            assert sorted(shown) == sorted({str(n.rdd_id) for g in graphs for c in g.root.walk() for n in c.nodes})
            names = browser.execute_script(
                "return Array.from(document.querySelectorAll('#dag-graph .dag-cluster .cluster-name'))"
                ".map(t => t.textContent)")
            assert all(any(name.startswith(f"Stage {g.stage_id}") for name in names) for g in graphs)
            errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
            assert errors == []
            checked += 1
        assert checked >= 5, checked
