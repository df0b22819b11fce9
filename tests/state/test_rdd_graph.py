"""Every stage's and job's RDD operation graph equals the real SHS 4.3.0's.

The SHS embeds each graph of a job or stage page in hidden elements (``UIUtils.showDagViz``):
a ``stage-metadata`` element per stage (its id, whether it was skipped) holding the dot
text of ``RDDOperationGraph.makeDotFile``, the incoming and outgoing cross-stage edges,
and the cached, barrier and indeterminate RDDs. The real SHS serves the generated corpus,
the rich corpus and the conformance logs; each job and stage page of each application is
fetched from it, its dot text parsed into nodes (id, label), edges and clusters (id, name,
parent, member nodes), and compared with what :mod:`sparkhist.state.rdd_graph` builds from
the state of the same log. The dot text itself must be identical too.
"""

from __future__ import annotations

import io
import re
import shutil
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from sparkhist.state import rdd_graph
from sparkhist.state.app_state import AppState
from support.real_shs import RealShs, run_real_shs

pytestmark = [pytest.mark.spark, pytest.mark.slow]

CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance"


# --------------------------------------------------------------------------- the SHS's page
@dataclass
class StageMeta:
    """One ``stage-metadata`` element of a page."""

    stage_id: str
    skipped: str
    dot: str = ""
    incoming: list[str] = field(default_factory=list)
    outgoing: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    barrier: list[str] = field(default_factory=list)
    indeterminate: list[str] = field(default_factory=list)


_FIELDS = {"dot-file": "dot", "incoming-edge": "incoming", "outgoing-edge": "outgoing", "cached-rdd": "cached",
           "barrier-rdd": "barrier", "indeterminate-rdd": "indeterminate"}


class DagMetadata(HTMLParser):
    """The ``dag-viz-metadata`` of a page: its ``stage-metadata`` elements, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found = False  # the page has a dag-viz-metadata element
        self.stages: list[StageMeta] = []
        self._field: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id") == "dag-viz-metadata":
            self.found = True
        cls = a.get("class") or ""
        if "stage-metadata" in cls.split():
            self.stages.append(StageMeta(a.get("stage-id") or "", a.get("skipped") or ""))
        elif cls in _FIELDS and self.stages:
            self._field, self._text = _FIELDS[cls], []

    def handle_data(self, data: str) -> None:
        if self._field is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._field is not None and tag == "div":
            text, meta = "".join(self._text), self.stages[-1]
            if self._field == "dot":
                meta.dot = text
            else:
                getattr(meta, self._field).append(text)
            self._field = None


def page_metadata(html: str) -> DagMetadata:
    parser = DagMetadata()
    parser.feed(html)
    parser.close()
    return parser


# --------------------------------------------------------------------------- dot text
_SUBGRAPH = re.compile(r"^\s*subgraph (\S+) \{$")
_ATTR = re.compile(r'^\s*(id|isCluster|label)="((?:[^"\\]|\\.)*)";$')
_NODE = re.compile(r'^\s*(\d+) \[id="node_(\d+)" labelType="html" label="((?:[^"\\]|\\.)*)"\];$')
_EDGE = re.compile(r"^\s*(\d+)->(\d+);$")


@dataclass
class Dot:
    graph_id: str
    nodes: dict[str, str]  # id -> label
    edges: list[tuple[str, str]]
    clusters: list[tuple[str, str, str | None, tuple[str, ...]]]  # id, label, parent id, member node ids


def parse_dot(text: str) -> Dot:
    """The dot subset ``makeDotFile`` writes; any other line fails the test."""
    lines = text.split("\n")
    assert lines[0] == "digraph G {" and lines[-1] == "}", text
    graph_id = ""
    nodes: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    clusters: list[tuple[str, str, str | None, tuple[str, ...]]] = []
    stack: list[list[Any]] = []  # [id, label, parent, members]
    for line in lines[1:-1]:
        if m := _SUBGRAPH.match(line):
            stack.append([m[1], None, stack[-1][0] if stack else None, []])
        elif m := _ATTR.match(line):
            if not stack:
                assert m[1] == "id", line
                graph_id = m[2]
            elif m[1] == "id":
                assert m[2] == stack[-1][0], line
            elif m[1] == "label":
                stack[-1][1] = m[2]
            else:
                assert m[2] == "true", line
        elif m := _NODE.match(line):
            assert m[1] == m[2], line
            nodes[m[1]] = m[3]
            stack[-1][3].append(m[1])
        elif m := _EDGE.match(line):
            edges.append((m[1], m[2]))
        elif line.strip() == "}":
            cid, label, parent, members = stack.pop()
            clusters.append((cid, label, parent, tuple(members)))
        else:
            raise AssertionError(f"unexpected dot line {line!r} in\n{text}")
    assert not stack, text
    return Dot(graph_id, nodes, edges, clusters)


def ours(graph: rdd_graph.OperationGraph) -> StageMeta:
    """What ``showDagViz`` writes for ``graph``, from sparkhist's graph."""
    return StageMeta(
        graph.root.cluster_id.replace("stage_", ""), str(graph.skipped).lower(), rdd_graph.dot_file(graph),
        [f"{a},{b}" for a, b in graph.incoming], [f"{a},{b}" for a, b in graph.outgoing],
        [str(n.rdd_id) for n in graph.root.cached_nodes()], [c.cluster_id for c in graph.root.barrier_clusters()],
        [str(n.rdd_id) for n in graph.root.indeterminate_nodes()])


def assert_same(theirs: list[StageMeta], mine: list[StageMeta], where: str) -> int:
    """Nodes, edges, clusters and flags equal; returns the number of nodes compared."""
    assert [m.stage_id for m in mine] == [t.stage_id for t in theirs], where
    count = 0
    for t, m in zip(theirs, mine, strict=True):
        here = f"{where} stage {t.stage_id}"
        dt, dm = parse_dot(t.dot), parse_dot(m.dot)
        assert dm.graph_id == dt.graph_id, here
        assert dm.nodes == dt.nodes, here
        assert dm.edges == dt.edges, here
        assert dm.clusters == dt.clusters, here
        assert (m.skipped, m.incoming, m.outgoing) == (t.skipped, t.incoming, t.outgoing), here
        assert (m.cached, m.barrier, m.indeterminate) == (t.cached, t.barrier, t.indeterminate), here
        assert m.dot == t.dot, here
        count += len(dt.nodes)
    return count


# --------------------------------------------------------------------------- the logs
def _state(path: Path) -> AppState:
    from sparkhist.reader import layout
    from sparkhist.reader.stream import read_lines
    from sparkhist.source.local import LocalSource

    source = LocalSource(str(path.parent))
    entry = source.stat(str(path))
    log = layout.rolling_log(entry, source.list(str(path))) if entry.is_dir else layout.single_file_log(entry)
    state = AppState()
    lines = read_lines(source, log)
    try:
        for line, _ in lines:
            if line.strip():
                state.apply(orjson.loads(line))
    finally:
        lines.close()
    state.finish()
    return state


@pytest.fixture(scope="module")
def logs(spark_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory with every log: the generated and rich corpora and the conformance logs."""
    from support.rich_corpus import ensure_rich_corpus

    out = tmp_path_factory.mktemp("dag-logs")
    sources = [spark_corpus, ensure_rich_corpus(), CONFORMANCE / "spark-4.0.1" / "eventlogs",
               CONFORMANCE / "apache-spark" / "spark-events"]
    for directory in sources:
        for item in sorted(directory.iterdir()):
            target = out / item.name
            if target.exists():
                continue
            if item.is_dir():
                shutil.copytree(item, target)
            else:
                shutil.copy2(item, target)
    return out


@pytest.fixture(scope="module")
def shs(logs: Path) -> Iterator[RealShs]:
    with run_real_shs(logs) as real:
        yield real


def _log_of(shs: RealShs, logs: Path, api: str) -> Path:
    """The log of an attempt: the first entry of the SHS's ``/logs`` zip names it."""
    with zipfile.ZipFile(io.BytesIO(shs.get(f"{api}/logs").content)) as z:
        name = z.namelist()[0].split("/")[0]
    return logs / name


def test_every_dag_equals_the_real_shs(shs: RealShs, logs: Path) -> None:
    shs.wait_until_listed(len(list(logs.iterdir())) // 2)
    time.sleep(3)  # the SHS lists logs in batches: one more scan round
    apps = shs.get("applications").json()
    pages = nodes = compared_apps = skipped_stages = 0
    for app in apps:
        for attempt in app["attempts"]:
            attempt_id = attempt.get("attemptId")
            api = f"applications/{quote(app['id'])}" + (f"/{quote(attempt_id)}" if attempt_id else "")
            path = _log_of(shs, logs, api)
            state = _state(path)
            jobs = shs.get(f"{api}/jobs").json()
            stages = shs.get(f"{api}/stages").json()
            base = f"{shs.base_url}/history/{quote(app['id'])}/" + (f"{quote(attempt_id)}/" if attempt_id else "")
            compared_apps += 1
            for job in jobs:
                html = shs.client.get(f"{base}jobs/job/", params={"id": job["jobId"]}).text
                theirs = page_metadata(html)
                graphs = rdd_graph.job_graphs(state, job["jobId"])
                where = f"{path.name} job {job['jobId']}"
                if not theirs.found:
                    assert "No DAG visualization information" in html, where
                    assert graphs is None, where
                    continue
                assert graphs is not None, where
                nodes += assert_same(theirs.stages, [ours(g) for g in graphs], where)
                skipped_stages += sum(g.skipped for g in graphs)
                pages += 1
            for stage in stages:
                html = shs.client.get(f"{base}stages/stage/",
                                      params={"id": stage["stageId"], "attempt": stage["attemptId"]}).text
                theirs = page_metadata(html)
                where = f"{path.name} stage {stage['stageId']}.{stage['attemptId']}"
                started = sum(stage[k] for k in ("numActiveTasks", "numCompleteTasks", "numFailedTasks",
                                                 "numKilledTasks"))
                assert theirs.found == (started > 0), where  # the SHS shows no DAG before a task started
                if not started:
                    continue
                graph = rdd_graph.stage_graph(state, stage["stageId"])
                nodes += assert_same(theirs.stages, [ours(graph)] if graph is not None else [], where)
                pages += 1
    # The comparison covered what it claims: many apps, pages and RDDs, skipped stages.
    assert compared_apps >= 30, compared_apps
    assert pages >= 200 and nodes >= 1000, (pages, nodes)
    assert skipped_stages > 0
