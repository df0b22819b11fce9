"""The design's recovery objectives, one test per row, each measuring the real figure.

| row | objective                           | measured here                                               |
|-----|-------------------------------------|-------------------------------------------------------------|
| a   | restart < 30 s                      | build_runtime start -> complete /api/v1/applications (200 logs), no log opened |
| b   | memory pressure < 10 s              | longest stretch of the state cache over its budget during a burst, and after it |
| c   | corruption rebuilt < 5 min          | snapshot damaged -> the application answers correctly again |
| d   | network partition: degraded, serving | log dir gone -> degraded and serving; back -> ok (time to recover) |
| e   | NameNode failover < 30 s            | tests/hdfs/test_runtime_offline.py (needs the HDFS cluster fixture) |

Small data here; ``bench/recovery_table.py`` measures the same at a realistic size.
Each test prints ``OBJECTIVE <row> measured=...`` and fails when the promise is broken.
The measurements themselves are the functions of ``bench/recovery_table.py`` (imported
from there), so the tests and the realistic-size table measure exactly the same thing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from recovery_table import (
    OBJECTIVES,
    measure_corruption,
    measure_memory_pressure,
    measure_partition,
    measure_restart,
)
from support.conformance import SPARK401

pytestmark = pytest.mark.slow

TEMPLATES = SPARK401 / "eventlogs"


def _report(row: str, figure: float, **extra: object) -> None:
    objective = OBJECTIVES[row]
    details = " ".join(f"{k}={v}" for k, v in extra.items())
    print(f"\nOBJECTIVE {row} {objective.name}: measured={figure:.3f}s limit={objective.limit:.0f}s {details}")


def test_a_restart_under_30_seconds(tmp_path: Path) -> None:
    result = measure_restart(TEMPLATES, tmp_path, apps=200)
    _report("a", result.seconds, apps=result.details["apps"], opened=result.details["opened"],
            recovery=f"{result.details['recovery_seconds']:.3f}s")
    assert result.details["apps"] == 200, "the answer lists every application"
    assert result.details["opened"] == 0, "a restart never opens a log"
    assert result.passed, f"restart took {result.seconds:.1f}s (objective < {OBJECTIVES['a'].limit:.0f}s)"


def test_b_memory_pressure_under_10_seconds(tmp_path: Path) -> None:
    result = measure_memory_pressure(TEMPLATES, tmp_path, apps=4, tasks=5_000, rounds=2)
    _report("b", result.seconds, **{k: v for k, v in result.details.items()})
    assert result.details["final_bytes"] <= result.details["budget"], "the cache ends under its budget"
    assert result.details["memory_evictions"] > 0, "the budget was really tight"
    assert result.passed, f"over budget for {result.seconds:.1f}s (objective < {OBJECTIVES['b'].limit:.0f}s)"


def test_c_corruption_rebuilt_under_5_minutes(tmp_path: Path) -> None:
    result = measure_corruption(TEMPLATES, tmp_path)
    _report("c", result.seconds, **result.details)
    assert result.details["identical"], "the rebuilt answers equal the undamaged ones"
    assert result.details["quarantined"] >= 1
    assert result.passed, f"rebuilt in {result.seconds:.1f}s (objective < {OBJECTIVES['c'].limit:.0f}s)"


def test_d_partition_degraded_but_serving(tmp_path: Path) -> None:
    result = measure_partition(TEMPLATES, tmp_path)
    _report("d", result.seconds, **result.details)
    assert result.details["degraded"], "health says degraded/offline during the partition"
    assert result.details["served"], "every API answer served (unchanged) during the partition"
    assert result.details["ok_after"], "health back to ok"
    assert result.passed, f"recovered in {result.seconds:.1f}s (objective < {OBJECTIVES['d'].limit:.0f}s)"
