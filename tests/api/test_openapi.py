"""The OpenAPI description of ``/api/v1`` (``/openapi.json``) is the API, both ways:

* every answer the real SHS 4.0.1 gave (the recorded conformance calls, and Apache's
  ``HistoryServerExpectations``) matches its operation's schema;
* every described path is served by sparkhist over real logs, with answers in schema;
* every path sparkhist serves below ``/api/v1`` is described: the top-level routes are
  listed, and the application subtree is explored from the segments its dispatcher and
  resources compare (read from their source), so a new resource shows up here.
"""

from __future__ import annotations

import ast
import copy
import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from starlette.routing import Route

from sparkhist.api import openapi
from sparkhist.api.v1 import app_resources, dispatch
from support.conformance import APACHE, SPARK401, apache_cases, recorded_calls
from support.server import copy_logs, runtime_for

DOC = openapi.build_document()
DONE = "local-1795972896863"  # finished, single file (SQL, failed job)
ATTEMPTED = ("local-1426533911241", "1")  # an application with named attempts (jobs, stage 0)
RDD_APP = "local-1422981780767"  # has a cached RDD (id 0)
PLACEHOLDER_DATE = "2015-01-01T00:00:00.000GMT"


class Operations:
    """Finds the described operation of a concrete path (literal segments win over templates)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.templates = []
        for path, item in document["paths"].items():
            segments = path.strip("/").split("/")
            pattern = "/".join(f"(?P<{s[1:-1]}>[^/]+)" if s.startswith("{") else re.escape(s) for s in segments)
            literal = sum(not s.startswith("{") for s in segments)
            self.templates.append((re.compile(f"^/{pattern}/?$"), literal, path, item["get"]))

    def find(self, path: str) -> tuple[str, dict[str, Any]] | None:
        """The operation of ``path``; an attempt id is never a resource's name (as its schema says)."""
        matches = [(rx.match(path), literal, template, op) for rx, literal, template, op in self.templates]
        found = [(literal, template, op) for m, literal, template, op in matches
                 if m is not None and m.groupdict().get("attemptId") not in dispatch.APP_RESOURCES]
        if not found:
            return None
        _, template, op = max(found, key=lambda f: f[0])
        return template, op

    def problems(self, path: str, status: int, content_type: str, body: bytes) -> list[str]:
        """Why an answer does not match the description (empty: it does)."""
        found = self.find(path)
        if found is None:
            return [f"{path}: no operation"]
        template, op = found
        declared = op["responses"].get(str(status))
        if declared is None:
            return [f"{template}: status {status} not described"]
        media = content_type.split(";")[0].strip()
        content = declared.get("content", {})
        if media not in content:
            return [f"{template} {status}: media type {media} not described ({sorted(content)})"]
        schema = content[media].get("schema")
        if schema is None or media != "application/json":
            return []
        validator = jsonschema_rs.validator_for({"allOf": [schema], "components": self.document["components"]})
        return [f"{template} {status} at {list(e.instance_path)}: {e.message[:200]}"
                for e in itertools.islice(validator.iter_errors(json.loads(body)), 5)]


OPS = Operations(DOC)


def test_the_document_is_served_and_valid_openapi_3_1(served) -> None:
    _, client = served
    answer = client.get("/openapi.json")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert answer.json() == json.loads(json.dumps(DOC))
    assert DOC["openapi"] == "3.1.0"
    for name, schema in DOC["components"]["schemas"].items():  # each a valid JSON Schema 2020-12
        jsonschema_rs.validator_for({"allOf": [schema], "components": DOC["components"]}), name
    schema = schemathesis.openapi.from_dict(copy.deepcopy(DOC))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(DOC["paths"])
    ids = [item["get"]["operationId"] for item in DOC["paths"].values()]
    assert len(ids) == len(set(ids))


def _fill_blank_dates(payload: Any) -> Any:
    """Apache's expectations blank ``lastUpdated`` (not reproducible); put a date back."""
    if isinstance(payload, dict):
        return {k: PLACEHOLDER_DATE if k == "lastUpdated" and v == "" else _fill_blank_dates(v) for k, v in payload.items()}
    if isinstance(payload, list):
        return [_fill_blank_dates(v) for v in payload]
    return payload


def test_every_answer_of_the_real_shs_matches_the_description() -> None:
    problems = []
    calls = recorded_calls()
    for call in calls:
        body = call.body_file.read_bytes()
        problems += OPS.problems(call.path.split("?")[0], call.status, call.content_type, body)
    cases = apache_cases()
    for case in cases:
        body = json.dumps(_fill_blank_dates(json.loads((APACHE / case["expectation_file"]).read_text())))
        problems += OPS.problems("/" + case["url"].split("?")[0], 200, "application/json", body.encode())
    assert len(calls) > 100 and len(cases) > 50
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------- sparkhist's answers
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    """sparkhist over the SHS 4.0.1 conformance logs and Apache's (named attempts, RDDs, resource profiles)."""
    base = tmp_path_factory.mktemp("openapi")
    logs = copy_logs(SPARK401 / "eventlogs", base / "logs")
    for log in (APACHE / "spark-events").iterdir():
        (logs / log.name).write_bytes(log.read_bytes())
    with runtime_for(logs, base / "store") as (runtime, client):
        yield runtime, client


_VALUES = {"appId": DONE, "jobId": "0", "stageId": "0", "stageAttemptId": "0", "executorId": "driver", "rddId": "0",
           "executionId": "0", "streamId": "0", "batchId": "0", "outputOpId": "0"}
_QUERIES = {
    "stages": ["", "?details=true&withSummaries=true", "?status=failed&details=true&taskStatus=FAILED"],
    "stage": ["", "?withSummaries=true&quantiles=0.1,0.9"], "stageAttempt": ["", "?withSummaries=true"],
    "taskSummary": ["", "?quantiles=0,0.5,1"], "taskList": ["", "?sortBy=-runtime&length=3&status=success"],
    "taskTable": ["", "?search[value]=driver&order[0][dir]=desc"], "sqlExecutions": ["", "?details=false&offset=1&length=1"],
    "applications": ["", "?status=running&limit=3", "?minDate=notadate"],
}


def _instances(template: str) -> Iterator[str]:
    """Concrete paths for ``template`` over the served logs."""
    values = dict(_VALUES)
    if "{attemptId}" in template:
        values["appId"], values["attemptId"] = ATTEMPTED
    elif "/storage/rdd/" in template:
        values["appId"] = RDD_APP
    yield re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)


def _no_route(status: int, content_type: str, text: str, uri: str) -> bool:
    """An answer meaning "no such resource here" (not "no such item of a resource"): Jersey's
    HTML 404, the URI as message (a path falling through), an unknown resource, or the
    first segment read as an attempt that does not exist."""
    return status == 404 and (content_type.startswith("text/html") or text == uri
                              or text.startswith(("unknown resource", "no such app:", "unknown app ")))


def test_every_described_path_is_served_with_answers_in_schema(served) -> None:
    _, client = served
    problems, answered = [], 0
    for template, item in DOC["paths"].items():
        op_id = item["get"]["operationId"].removesuffix("OfAttempt")
        for path in _instances(template):
            for query in _QUERIES.get(op_id, [""]):
                uri = f"/api/v1{path}"
                answer = client.get(uri + query)
                content_type = answer.headers.get("content-type", "")
                problems += OPS.problems(path, answer.status_code, content_type, answer.content)
                if "/streaming/" in template:  # DStreams: the SHS's blanket answer, for every streaming path
                    ok = answer.status_code == 404 and answer.text.startswith("no streaming listener attached")
                else:
                    ok = not _no_route(answer.status_code, content_type, answer.text, uri)
                if not ok:
                    problems.append(f"{template}: not served ({answer.status_code} {answer.text[:80]!r})")
                answered += answer.status_code == 200
    assert not problems, "\n".join(problems)
    assert answered > 40


def _compared_segments() -> set[str]:
    """The words the dispatcher and the resources compare path segments (``head``, ``tail[i]``,
    ``rest[i]``) with, read from their source, plus the dispatcher's resource names and shapes."""
    words = set(dispatch.APP_RESOURCES)
    words |= {w for shapes in dispatch._DIRECT_SHAPES.values() for shape in shapes for w in shape}
    for module in (dispatch, app_resources):
        for node in ast.walk(ast.parse(Path(module.__file__).read_text())):
            if not isinstance(node, ast.Compare):
                continue
            sides = (node.left, *node.comparators)
            on_path = any(isinstance(n, ast.Name) and n.id in ("head", "tail", "rest") for side in sides for n in ast.walk(side))
            if on_path:
                words |= {c.value for side in sides for c in ast.walk(side)
                          if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    return {w for w in words if re.fullmatch(r"[A-Za-z]+", w)}


def _fits_a_described_prefix(segments: list[str], templates: list[list[str]], ids: set[str]) -> bool:
    """Whether ``segments`` begin some described template (a ``{param}`` slot takes a real id only)."""
    return any(len(t) >= len(segments) and all(
        (slot.startswith("{") and word in ids) or slot == word for slot, word in zip(t, segments, strict=False))
        for t in templates)


def test_every_served_path_is_described(served) -> None:
    """Below an application (and one of its attempts), paths of up to four segments made of the
    compared words and real ids: each one served must match a described template. A path is
    grown while it is served or begins a described one."""
    _, client = served
    ids = {"0", "driver"}
    words = sorted(_compared_segments() | ids)
    assert {"jobs", "stages", "taskList", "taskSummary", "rdd", "threads", "sql"} <= set(words), words
    undescribed, tried = [], 0
    for base, base_template in ((f"/applications/{DONE}", "/applications/{appId}"),
                                (f"/applications/{ATTEMPTED[0]}/{ATTEMPTED[1]}", "/applications/{appId}/{attemptId}")):
        templates = [t[len(base_template):].strip("/").split("/") for t in DOC["paths"] if t.startswith(base_template + "/")]
        frontier: list[list[str]] = [[]]
        for _depth in range(4):
            grown = []
            for tail in frontier:
                for word in words:
                    segments = [*tail, word]
                    path = "/".join((base, *segments))
                    uri = "/api/v1" + path
                    answer = client.get(uri)
                    tried += 1
                    content_type = answer.headers.get("content-type", "")
                    routed = not _no_route(answer.status_code, content_type, answer.text, uri)
                    if "/streaming" in path:  # the SHS's blanket 404 below streaming: see the test above
                        routed = False
                    found = OPS.find(path)
                    if routed and (found is None or not found[0].startswith(base_template)):
                        undescribed.append(f"{path}: {answer.status_code} {answer.text[:60]!r}")
                    if routed or _fits_a_described_prefix(segments, templates, ids):
                        grown.append(segments)
            frontier = grown
    assert not undescribed, "\n".join(undescribed)
    assert tried > 300


def test_the_api_routes_are_the_described_ones(served) -> None:
    """The application's routes below ``/api/v1``: each is a described path, an alias of
    one, the application subtree (explored above) or the catch-all 404."""
    runtime, _ = served
    routes = {r.path for r in runtime.app.routes if isinstance(r, Route) and r.path.startswith("/api/v1")}
    described = {f"/api/v1{p}" for p in DOC["paths"] if "{" not in p}
    aliases = {"/api/v1/version/"}  # the SHS accepts trailing slashes
    subtree_and_catch_all = {"/api/v1/applications/{rest:path}", "/api/v1/{rest:path}"}
    assert routes == described | aliases | subtree_and_catch_all
