"""Failure scenario 3: memory pressure, measured as peak RSS of real processes.

* Indexing a huge log (one stage of 200,000 tasks, ~1 GB) stays bounded: the log is
  streamed, and Spark's own retention (``spark.ui.retainedTasks``, 100,000) caps what
  the state keeps, exactly as the SHS would show it.
* Serving many large applications under a tight state-cache budget: the cache is
  held to its budget; the process peak is the budget plus what one request has in
  flight (one task section being loaded and its pickled bytes) and the allocator's
  slack, within 10 % of the budget. ``/stages`` loads no task at all.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sparkhist.devtools.big import write_big_log
from sparkhist.devtools.scale import load_template
from support.conformance import SPARK401

MB = 1 << 20
_PROBE = r'''
import json, resource, sys
from sparkhist.config import load_settings
from sparkhist.server import build_runtime
from starlette.testclient import TestClient
log_dir, store, mode, budget = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
runtime = build_runtime(load_settings({"log_dir": log_dir, "store_dir": store, "memory_budget": budget}, environ={}))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
out = {"base": base}
if mode == "scan":
    report = runtime.scanner.scan_once()
    out["indexed"] = report.indexed
else:
    client = TestClient(runtime.app)
    for _ in range(2):
        for app in runtime.index.sorted_apps():
            stages = client.get(f"/api/v1/applications/{app.id}/stages")
            assert stages.status_code == 200, stages.text
            out.setdefault("tasks", {})[app.id] = sum(s["numCompleteTasks"] for s in stages.json())
            if mode == "serve-tasks":  # and pages over every stage's tasks: their chunks go through the cache
                for s in stages.json():
                    for offset in range(0, s["numTasks"], 1024):
                        page = client.get(f"/api/v1/applications/{app.id}/stages/{s['stageId']}/{s['attemptId']}"
                                          f"/taskList?offset={offset}")
                        assert page.status_code == 200, page.text
    out["section_loads"] = runtime.states.section_loads
    out["cached"] = runtime.states.cached_bytes
    out["evictions"] = runtime.states.evictions
    out["largest"] = max(runtime.states._last_size.values())
out["peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(out))
'''


def _probe(logs: Path, store: Path, mode: str, budget: int) -> dict:
    done = subprocess.run([sys.executable, "-c", _PROBE, str(logs), str(store), mode, str(budget)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_huge_log_indexes_within_the_default_budget(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    template = load_template(SPARK401 / "eventlogs" / "local-1795972896863")
    path = write_big_log(template, logs, "local-4000000000001", 200_000)
    budget = 512 * MB
    scan = _probe(logs, tmp_path / "store", "scan", budget)
    grown = scan["peak"] - scan["base"]
    print(f"\nindexing a {path.stat().st_size / MB:.0f} MiB log of 200,000 tasks: peak RSS +{grown / MB:.0f} MiB "
          f"(baseline {scan['base'] / MB:.0f} MiB)")
    assert scan["indexed"] == 1
    assert grown <= 1.1 * budget
    assert grown < path.stat().st_size / 3, "the log must be streamed, not held"
    served = _probe(logs, tmp_path / "store", "serve", budget)
    # Spark's retention: the stage counts every task, the state keeps at most 100,000 of them.
    assert served["tasks"] == {"local-4000000000001": 200_000}


@pytest.mark.slow
def test_many_large_apps_under_a_tight_budget(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    template = load_template(SPARK401 / "eventlogs" / "local-1795972896863")
    for i in range(9):
        write_big_log(template, logs, f"local-50000000000{i:02d}"[:19], 20_000)
    _probe(logs, tmp_path / "store", "scan", 512 * MB)
    budget = 128 * MB
    summaries = _probe(logs, tmp_path / "store", "serve", budget)
    assert summaries["section_loads"] == 0  # /stages needs no task
    assert summaries["peak"] - summaries["base"] < 0.25 * budget
    served = _probe(logs, tmp_path / "store", "serve-tasks", budget)
    grown = served["peak"] - served["base"]
    print(f"\n9 apps of 20,000 tasks under a {budget / MB:.0f} MiB budget: /stages peak RSS "
          f"+{(summaries['peak'] - summaries['base']) / MB:.0f} MiB; with taskList: cache {served['cached'] / MB:.0f} MiB, "
          f"peak RSS +{grown / MB:.0f} MiB, {served['evictions']} evictions, largest entry {served['largest'] / MB:.0f} MiB")
    assert served["cached"] <= budget
    assert served["evictions"].get("memory", 0) >= 9
    assert served["section_loads"] >= 18
    assert grown <= 1.1 * budget
