"""A standing fuzz test: schemathesis drives every operation of ``/openapi.json`` against
sparkhist serving real logs (the bundled samples, plus Apache's logs with named attempts).

* no answer is a server error the description does not document (a 500 only as the SHS's
  Jetty page where the SHS fails too, e.g. ``taskList?length=0``; a 503 only where the SHS
  sends one), and no request raises in the application (the test client re-raises);
* every answer's status, content type and body are those its operation describes.

Two runs: the description as served (random ids, valid and invalid parameters: the error
paths), and the same with the path parameters drawn from the served logs' real ids (valid
parameters: the answers). Examples per operation are few, so it stays within seconds.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from sparkhist.api.openapi import build_document
from sparkhist.config import bundled_samples
from support.conformance import APACHE
from support.server import copy_logs, runtime_for

pytestmark = pytest.mark.slow

#: Apache's logs with named attempts (``local-1426533911241/1``, ``/2``...), small.
ATTEMPT_LOGS = ("local-1426533911241", "local-1426633911242", "local-1430917381535_1", "local-1430917381535_2")
JETTY_500 = "<title>Error 500 Request failed.</title>"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    base = tmp_path_factory.mktemp("fuzz")
    logs = copy_logs(Path(bundled_samples()), base / "logs")
    for name in ATTEMPT_LOGS:
        shutil.copyfile(APACHE / "spark-events" / name, logs / name)
    with runtime_for(logs, base / "store") as (runtime, _client):
        assert len(runtime.index) == 6
        yield runtime


@pytest.fixture(scope="module")
def served_schema(served: Any) -> Any:
    """The description as ``/openapi.json`` serves it."""
    return schemathesis.openapi.from_asgi("/openapi.json", served.app)


def _real_ids(app: Any) -> dict[str, set[str]]:
    """The ids the served logs hold, read from the API itself (plus one unknown of each kind)."""
    from starlette.testclient import TestClient

    ids: dict[str, set[str]] = {"jobId": {"99"}, "stageId": {"99"}, "stageAttemptId": {"0"}, "executorId": {"driver"},
                                "rddId": {"99"}, "executionId": {"99"}, "streamId": {"0"}, "batchId": {"0"},
                                "outputOpId": {"0"}}
    with TestClient(app) as client:
        for listed in client.get("/api/v1/applications").json():
            base = f"/api/v1/applications/{listed['id']}"
            if any("attemptId" in a for a in listed["attempts"]):
                base += "/" + listed["attempts"][0]["attemptId"]
            ids["jobId"] |= {str(j["jobId"]) for j in client.get(f"{base}/jobs").json()}
            stages = client.get(f"{base}/stages").json()
            ids["stageId"] |= {str(st["stageId"]) for st in stages}
            ids["stageAttemptId"] |= {str(st["attemptId"]) for st in stages}
            ids["executorId"] |= {x["id"] for x in client.get(f"{base}/allexecutors").json()}
            ids["rddId"] |= {str(r["id"]) for r in client.get(f"{base}/storage/rdd").json()}
            ids["executionId"] |= {str(x["id"]) for x in client.get(f"{base}/sql").json()}
    return ids


@pytest.fixture(scope="module")
def corpus_schema(served: Any) -> Any:
    """The description with each path parameter drawn from the ids the served logs hold."""
    document = copy.deepcopy(DOCUMENT)
    apps = served.index.sorted_apps()
    values = {name: sorted(found) for name, found in _real_ids(served.app).items()}
    attempted = [a for a in apps if any(t.attempt_id is not None for t in a.attempts)]
    assert attempted
    for path, item in document["paths"].items():
        with_attempt = "{attemptId}" in path
        values["appId"] = sorted(a.id for a in (attempted if with_attempt else apps))
        values["attemptId"] = sorted({str(t.attempt_id) for a in attempted for t in a.attempts})
        parameters = [dict(parameter) for parameter in item["get"].get("parameters", [])]  # shared dicts: copies
        for parameter in parameters:
            if parameter["in"] == "path":
                parameter["schema"] = {"type": "string", "enum": values[parameter["name"]]}
        item["get"]["parameters"] = parameters
    schema = schemathesis.openapi.from_dict(document)
    schema.app = served.app
    return schema


@schemathesis.check
def documented_server_errors_only(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 5xx must be documented for the operation; a 500 must be Jetty's page (the SHS's own
    failure, e.g. ``taskList?length=0``), never the application's own error."""
    if response.status_code < 500:
        return None
    documented = str(response.status_code) in case.operation.responses.status_codes
    if not documented or (response.status_code == 500 and JETTY_500 not in response.text):
        raise AssertionError(f"undocumented server error {response.status_code}: {response.text[:200]!r}")
    return None


CHECKS = [documented_server_errors_only, status_code_conformance, content_type_conformance, response_schema_conformance]
DOCUMENT = build_document()
PATHS = sorted(DOCUMENT["paths"])


def _fuzz(schema: Any, path: str, modes: tuple[GenerationMode, ...], max_examples: int) -> None:
    operation = schema[path]["GET"]
    cases = st.one_of(*(operation.as_strategy(mode) for mode in modes))

    @given(cases)
    @settings(max_examples=max_examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def answer_as_described(case: Any) -> None:
        case.call_and_validate(checks=CHECKS)

    answer_as_described()


@pytest.mark.parametrize("path", PATHS)
def test_random_requests_get_described_answers(served_schema: Any, path: str) -> None:
    _fuzz(served_schema, path, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE), 10)


@pytest.mark.parametrize("path", PATHS)
def test_requests_on_real_ids_get_described_answers(corpus_schema: Any, path: str) -> None:
    _fuzz(corpus_schema, path, (GenerationMode.POSITIVE,), 25)
