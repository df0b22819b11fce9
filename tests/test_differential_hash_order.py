"""Scala hash orders in SQL answers: sparkhist against the real SHS 4.3.0, live (issue 13).

Over ``support/hash_order_corpus.py``'s logs (executions of 5, 8, 13 and 20 jobs, failed and
running jobs beside succeeded ones, stages whose task maxima tie, 5 to 12 modified
configurations) every ``/sql`` answer of both servers must be equal, JSON object keys in the
same order too (``modifiedConfigs`` is a map: its order is the point). The corpus test checks
the logs hold those cases and that the SHS's answers do show hash orders, so the comparison
could fail.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.differential import Comparison
from support.hash_order_corpus import COLLIDING, CONFIG_COUNTS, JOB_COUNTS, ensure_hash_order_corpus, load_manifest
from support.real_shs import RealShs
from support.spark_setup import real_shs_and_runtime, require_spark

pytestmark = [pytest.mark.spark, pytest.mark.slow]

PER_SQL = ["", "?details=false", "?planDescription=false", "?details=false&planDescription=false"]
LISTS = ["/sql", "/sql?details=false", "/sql?planDescription=false", "/sql?offset=1&length=3"]


@pytest.fixture(scope="module")
def hash_corpus() -> Path:
    require_spark()
    return ensure_hash_order_corpus()


@pytest.fixture(scope="module")
def hash_manifest(hash_corpus: Path) -> list[dict[str, Any]]:
    return load_manifest(hash_corpus)


@pytest.fixture(scope="module")
def hash_both(hash_corpus: Path, hash_manifest: list[dict[str, Any]],
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, RealShs]]:
    with real_shs_and_runtime(hash_corpus, len(hash_manifest), tmp_path_factory.mktemp("hash-diff-store")) as both:
        yield both


def _template(path: str) -> str:
    path = re.sub(r"(local-\d+|app-\d+-\d+)", "{app}", path)
    return re.sub(r"/sql/\d+", "/sql/{q}", path)


def _paths(shs: RealShs, manifest: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    paths: list[tuple[str, bool]] = []
    for entry in manifest:
        base, running = f"/applications/{entry['app_id']}", entry["state"] != "finished"
        paths += [(base + q, running) for q in LISTS]
        for execution in shs.get(base + "/sql?details=false&planDescription=false").json():
            paths += [(f"{base}/sql/{execution['id']}{q}", running) for q in PER_SQL]
    return paths


def _key_order(value: Any, where: str = "") -> Iterator[tuple[str, list[str]]]:
    """Every JSON object's keys in order, by where the object is (dict equality ignores order)."""
    if isinstance(value, dict):
        yield where, list(value)
        for key, item in value.items():
            yield from _key_order(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _key_order(item, f"{where}[{i}]")


def _executions(manifest: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    (entry,) = [e for e in manifest if e["name"] == name]
    executions: list[dict[str, Any]] = entry["executions"]
    return executions


def test_hash_corpus_exercises_what_it_claims(hash_manifest: list[dict[str, Any]]) -> None:
    assert {e["name"]: e["state"] for e in hash_manifest} == {
        "hash-jobs": "finished", "hash-jobs-reordered": "finished", "hash-running": "in-progress"}
    done = _executions(hash_manifest, "hash-jobs")
    job_counts = {len(x["jobs"]) for x in done}
    assert set(JOB_COUNTS) <= job_counts, job_counts
    statuses = [sorted(set(x["jobs"].values())) for x in done if len(x["jobs"]) > 4]
    assert ["FAILED", "SUCCEEDED"] in statuses, "no execution of 5+ jobs with failed and succeeded ones"
    assert any(len(x["stages"]) > 4 and x["hash_decided_ties"] for x in done), \
        "no tie between stages that their hash order decides"
    assert set(CONFIG_COUNTS) <= {x["modified_configs"] for x in done}
    running = _executions(hash_manifest, "hash-running")
    mixed = [x for x in running if len(x["jobs"]) > 4 and {"RUNNING", "SUCCEEDED"} <= set(x["jobs"].values())]
    assert mixed, "no execution with running and succeeded jobs"


def test_the_real_shs_shows_hash_orders(hash_both, hash_manifest) -> None:
    """What the comparison below is about is really in the SHS's answers."""
    _client, shs = hash_both
    (done,) = [e["app_id"] for e in hash_manifest if e["name"] == "hash-jobs"]
    executions = shs.get(f"/applications/{done}/sql?details=false").json()
    unsorted = [x["successJobIds"] for x in executions if x["successJobIds"] != sorted(x["successJobIds"])]
    assert unsorted, "every successJobIds list is sorted: no hash order to compare"
    orders = [list(x["modifiedConfigs"]) for x in executions if COLLIDING[0] in x["modifiedConfigs"]]
    assert len(orders) == len(CONFIG_COUNTS)
    # the same log with each modifiedConfigs reversed: the SHS answers the same (hash) order, not the log's
    (reordered,) = [e["app_id"] for e in hash_manifest if e["name"] == "hash-jobs-reordered"]
    executions = shs.get(f"/applications/{reordered}/sql?details=false").json()
    reordered_orders = [list(x["modifiedConfigs"]) for x in executions if COLLIDING[0] in x["modifiedConfigs"]]
    assert all(mine != list(reversed(log)) for mine, log in zip(reordered_orders, orders, strict=True))
    assert [[k for k in order if k not in COLLIDING] for order in reordered_orders] == [
        [k for k in order if k not in COLLIDING] for order in orders]
    # names with one hash share a collision node, which keeps the log's order
    assert [[k for k in order if k in COLLIDING] for order in orders] == [list(COLLIDING)] * len(orders)
    assert [[k for k in order if k in COLLIDING] for order in reordered_orders] == [
        list(reversed(COLLIDING))] * len(orders)


def test_every_sql_answer_matches_the_real_shs(hash_both, hash_manifest) -> None:
    client, shs = hash_both
    paths = _paths(shs, hash_manifest)
    comparison = Comparison(_template, {}).run(paths, client, shs)
    comparison.report()
    assert comparison.mismatches == {}
    orders = {}
    for path, _running in paths:
        theirs = shs.get(path).json()
        ours = client.get("/api/v1" + path).json()
        if dict(_key_order(ours)) != dict(_key_order(theirs)):
            orders[path] = [(w, k, dict(_key_order(ours)).get(w)) for w, k in _key_order(theirs)
                            if dict(_key_order(ours)).get(w) != k][:3]
    assert orders == {}
