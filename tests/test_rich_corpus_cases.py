"""The rich corpus holds every case issue 13 asks the differential tests to exercise.

``tests/test_differential_rich.py`` asks the real SHS 4.3.0 and sparkhist every endpoint of
every app of ``support/rich_corpus.py`` (every job, stage attempt, SQL execution, executor):
that compares these cases only if the logs hold them. Each log's census (events by type,
task ends by reason, ``ExitCode``s, nested executions, failed tasks that had read shuffle
blocks) is measured from the log itself when the corpus is generated (its manifest).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from support.real_shs import java_executable
from support.rich_corpus import ensure_rich_corpus, load_manifest

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="module")
def rich_manifest() -> list[dict[str, Any]]:
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -e '.[dev]')")
    try:
        java_executable()
    except RuntimeError as missing:
        pytest.skip(f"{missing} (needs Java 17)")
    corpus: Path = ensure_rich_corpus()
    return load_manifest(corpus)


def missing_cases(logs: list[dict[str, Any]]) -> list[str]:
    """The cases the logs were meant to hold but do not."""
    by_name = {entry["name"]: entry for entry in logs}
    sql, cluster, rdd = by_name["rich-sql"], by_name["rich-cluster"], by_name["rich-rdd-killed"]
    wanted = {
        "executor metrics updates of the driver (rich-sql, rich-cluster)": all(
            app["events"].get("SparkListenerExecutorMetricsUpdate", 0) >= 2 for app in (sql, cluster)),
        "per-stage executor metrics (rich-sql, rich-cluster)": all(
            app["events"].get("SparkListenerStageExecutorMetrics", 0) >= 1 for app in (sql, cluster)),
        "stage executor metrics of several executors per stage (rich-cluster)": cluster["events"].get(
            "SparkListenerStageExecutorMetrics", 0) > cluster["events"].get("SparkListenerStageCompleted", 0),
        "exit code 3 (rich-cluster)": cluster["exit_codes"] == [3],
        "exit code 0 of a plain stop (rich-sql)": sql["exit_codes"] == [0],
        "nested executions (rich-sql)": len(sql["nested_executions"]) >= 2,
        "a failing SQL query (rich-sql)": bool(sql["observed"].get("failing_sql")),
        "a failing command with a nested query (rich-sql)": bool(sql["observed"].get("failing_insert")),
        "failed tasks that read shuffle data (rich-cluster, rich-rdd-killed)":
            cluster["failed_shuffle_reads"] >= 1 and rdd["failed_shuffle_reads"] >= 1,
        "a fetch failure (rich-cluster)": cluster["task_end_reasons"].get("FetchFailed", 0) >= 1,
    }
    return [case for case, held in wanted.items() if not held]


def test_the_rich_corpus_holds_every_case(rich_manifest: list[dict[str, Any]]) -> None:
    assert missing_cases(rich_manifest) == []


def test_the_census_can_tell_a_case_is_missing(rich_manifest: list[dict[str, Any]]) -> None:
    """Each log without one of its cases is reported (the check is not vacuous)."""
    import copy

    logs = copy.deepcopy(rich_manifest)
    cluster = next(e for e in logs if e["name"] == "rich-cluster")
    cluster["exit_codes"], cluster["failed_shuffle_reads"] = [0], 0
    sql = next(e for e in logs if e["name"] == "rich-sql")
    sql["nested_executions"] = []
    assert missing_cases(logs) == ["exit code 3 (rich-cluster)", "nested executions (rich-sql)",
                                   "failed tasks that read shuffle data (rich-cluster, rich-rdd-killed)"]
