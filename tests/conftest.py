"""Session fixtures shared by all tests: real Spark parts and the conformance data.

``tests/`` is on ``sys.path`` (pytest's rootdir conftest insertion), so helpers
live in the ``support`` namespace package: ``from support.corpus import ...``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.corpus import ensure_corpus, load_manifest
from support.real_shs import RealShs, java_executable, run_real_shs

#: The repository root, wherever CI cloned it; ``shared/`` sits beside it.
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """With ``SPARKHIST_NO_SKIPS=1`` (CI sets it) a skip is a failure: a machine that
    lacks Java, Maven or pyspark must not pass by running less."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("SPARKHIST_NO_SKIPS") == "1" and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, and SPARKHIST_NO_SKIPS=1 forbids it: {report.longrepr}"


def _require_spark() -> None:
    """Skip (not fail) where Java or pyspark is missing, e.g. a laptop without a JDK."""
    if importlib.util.find_spec("pyspark") is None:
        pytest.skip("pyspark is not installed (pip install -e '.[dev]')")
    try:
        java_executable()
    except RuntimeError as missing:
        pytest.skip(f"{missing} (needs Java 17)")


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    """``<repo>/../shared/conformance``: recorded answers of the stock SHS 4.0.1."""
    path = REPO_ROOT.parent / "shared" / "conformance"
    if not path.is_dir():
        pytest.fail(f"conformance data not found at {path}: shared/ must be checked out beside the repo")
    return path


@pytest.fixture(scope="session")
def spark_corpus() -> Path:
    """Directory of real pyspark 4.0.1 event logs (cached; first run takes minutes). Read-only."""
    _require_spark()
    return ensure_corpus()


@pytest.fixture(scope="session")
def corpus_manifest(spark_corpus: Path) -> list[dict[str, Any]]:
    """One entry per log in ``spark_corpus``: path, app_id, name, codec, layout, state, files, bytes."""
    return load_manifest(spark_corpus)


@pytest.fixture(scope="session")
def real_shs_on_corpus(spark_corpus: Path, corpus_manifest: list[dict[str, Any]]) -> Iterator[RealShs]:
    """The stock SHS serving ``spark_corpus``, started once and waited on until every app is listed."""
    with run_real_shs(spark_corpus) as shs:
        shs.wait_until_listed(len(corpus_manifest))
        yield shs
