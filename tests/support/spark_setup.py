"""The set-up the live comparisons share: Spark present or the test skipped, the real SHS
listing a log directory, and the real SHS beside sparkhist (in process or as a process)."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.both_servers import both_servers, corpus_log_dir
from support.real_shs import RealShs, java_executable, run_real_shs
from support.server import runtime_for


def require_spark() -> None:
    """Skip (not fail) where Java or pyspark is missing, e.g. a laptop without a JDK."""
    if importlib.util.find_spec("pyspark") is None:
        pytest.skip("pyspark is not installed (pip install -e '.[dev]')")
    try:
        java_executable()
    except RuntimeError as missing:
        pytest.skip(f"{missing} (needs Java 17)")


@contextlib.contextmanager
def real_shs_listing(log_dir: Path, apps: int) -> Iterator[RealShs]:
    """The real SHS over ``log_dir``, once it lists ``apps`` applications."""
    with run_real_shs(log_dir) as shs:
        shs.wait_until_listed(apps)
        yield shs


@contextlib.contextmanager
def real_shs_and_runtime(log_dir: Path, apps: int, store_dir: Path,
                         sparkhist_log_dir: Path | str | None = None) -> Iterator[tuple[Any, RealShs]]:
    """(sparkhist's test client, the real SHS), both over ``log_dir`` (sparkhist over
    ``sparkhist_log_dir`` where the same logs are named another way), the SHS listing ``apps``."""
    with real_shs_listing(log_dir, apps) as shs, \
            runtime_for(log_dir if sparkhist_log_dir is None else sparkhist_log_dir, store_dir) as (_runtime, client):
        yield client, shs


def corpus_servers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                   prefix: str) -> Iterator[tuple[str, RealShs, str]]:
    """For a fixture parametrised by corpus name: (corpus, the real SHS, sparkhist's URL), both
    serving the corpus as processes and listing the same apps."""
    require_spark()
    corpus = request.param
    tmp = tmp_path_factory.mktemp(f"{prefix}-{corpus}")
    with both_servers(corpus_log_dir(corpus, tmp), tmp) as (shs, url):
        yield corpus, shs, url
