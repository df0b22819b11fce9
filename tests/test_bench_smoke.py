"""Smoke test of the benchmark harness: ``bench/run.py --quick`` runs to the end.

Only that it completes (every phase measured: exit status 0) and prints its table is
asserted, never a figure: timings on a shared CI machine are noise, and a benchmark
must not make CI flaky. Needs Java and pyspark (the real SHS runs); the first run
also generates a small real Spark log (cached under ``~/.cache/sparkhist/``).
"""

from __future__ import annotations

import importlib.metadata

import pytest

from support.bench_smoke import QUICK_RUN, start_quick_run
from support.spark_setup import require_spark

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.mark.timeout(900)
def test_quick_benchmark_completes_and_prints_the_table(request: pytest.FixtureRequest) -> None:
    require_spark()
    run = request.config.stash.get(QUICK_RUN, None) or start_quick_run()  # started at collection (conftest.py)
    try:
        returncode, stdout, stderr = run.result(timeout=840)
        output = stdout + stderr
        assert returncode == 0, output[-6000:]
        assert f"sparkhist vs SHS {importlib.metadata.version('pyspark')}" in stdout, output[-6000:]
        for metric in ("Cold start", "Restart with warm store", "Full replay of the big log", "Peak RSS", "p99"):
            assert metric in stdout, f"no {metric!r} row:\n{stdout[-6000:]}"
        assert not list(run.work.iterdir()), "the run left files in its work directory"
    finally:
        run.stop()
