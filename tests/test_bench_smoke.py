"""Smoke test of the benchmark harness: ``bench/run.py --quick`` runs to the end.

Only that it completes (every phase measured: exit status 0) and prints its table is
asserted, never a figure: timings on a shared CI machine are noise, and a benchmark
must not make CI flaky. Needs Java and pyspark (the real SHS runs); the first run
also generates a small real Spark log (cached under ``~/.cache/sparkhist/``).
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

from support.spark_setup import require_spark

pytestmark = [pytest.mark.spark, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(900)
def test_quick_benchmark_completes_and_prints_the_table(tmp_path: Path) -> None:
    require_spark()
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "run.py"), "--quick", "--no-record", "--work", str(tmp_path)],
        capture_output=True, text=True, timeout=840, cwd=REPO_ROOT,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    assert f"sparkhist vs SHS {importlib.metadata.version('pyspark')}" in done.stdout, output[-6000:]
    for metric in ("Cold start", "Restart with warm store", "Full replay of the big log", "Peak RSS", "p99"):
        assert metric in done.stdout, f"no {metric!r} row:\n{done.stdout[-6000:]}"
    assert not list(tmp_path.iterdir()), "the run left files in its work directory"
