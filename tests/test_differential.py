"""Differential test: sparkhist and the real SHS 4.0.1, same logs, same requests.

The corpus is written by real Spark (every codec, single files and rolling
directories, finished and killed mid-run). The real ``HistoryServer`` from the
pyspark jars serves it on one side, sparkhist (a scanned store, HTTP through the
whole server) on the other; every endpoint and query variant is requested from both
and compared: status, content type, and the body as parsed JSON (text for errors).

Only the differences in :data:`ALLOWED` are tolerated, each with its reason.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from support.differential import APP_LIST_QUERIES, PER_APP, PER_STAGE, Comparison, as_configured
from support.server import runtime_for

pytestmark = [pytest.mark.spark, pytest.mark.slow]

# path pattern -> why sparkhist differs from the real SHS there
ALLOWED: dict[str, str] = {}


def _template(path: str) -> str:
    return re.sub(r"local-\d+", "{app}", re.sub(r"/stages/\d+", "/stages/{s}", path))


@pytest.fixture(scope="module")
def both(spark_corpus: Path, real_shs_on_corpus, tmp_path_factory):
    with runtime_for(as_configured(spark_corpus), tmp_path_factory.mktemp("diff-store")) as (runtime, client):
        yield runtime, client, real_shs_on_corpus


def test_every_endpoint_matches_the_real_shs(both, corpus_manifest) -> None:
    runtime, client, shs = both
    running = {e["app_id"] for e in corpus_manifest if e["state"] != "finished"}
    paths: list[tuple[str, bool]] = [("/version", False)]
    paths += [("/applications" + q, False) for q in APP_LIST_QUERIES]
    paths += [("/applications/nope-app", False), ("/applications/nope-app/jobs", False), ("/foobar", False)]
    for entry in corpus_manifest:
        app = entry["app_id"]
        base = f"/applications/{app}"
        paths += [(base + p, app in running) for p in PER_APP]
        paths += [(base + "/logs", False)]
        stages = shs.get(base + "/stages").json()
        for stage in {s["stageId"] for s in stages}:
            paths += [(f"{base}/stages/{stage}{p}", app in running) for p in PER_STAGE]
        for job in {j["jobId"] for j in shs.get(base + "/jobs").json()}:
            paths.append((f"{base}/jobs/{job}", app in running))

    comparison = Comparison(_template, ALLOWED).run(paths, client, shs)
    comparison.report()
    assert comparison.mismatches == {}
