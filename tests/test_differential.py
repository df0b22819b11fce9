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

from support.differential import Comparison, as_configured, corpus_paths
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
    paths = corpus_paths(shs, corpus_manifest)
    comparison = Comparison(_template, ALLOWED).run(paths, client, shs)
    comparison.report()
    assert comparison.mismatches == {}
