"""Failure scenario 3 (memory pressure): cached states are held to a byte budget.

The budget is only as good as the size estimate, so the estimate is checked against
what tracemalloc sees when a real state is loaded.
"""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import pytest

from sparkhist.store.states import estimate_state_bytes
from support.conformance import SPARK401
from support.server import copy_logs, runtime_for


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("mem")
    logs = copy_logs(SPARK401 / "eventlogs", base / "logs")
    with runtime_for(logs, base / "store"):
        pass
    return logs, base / "store"


def test_estimate_matches_measured_memory(built) -> None:
    logs, store = built
    from sparkhist.store.snapshots import SnapshotStore

    snapshots = SnapshotStore(str(store))
    ratios = []
    for log in sorted(logs.iterdir()):
        gc.collect()
        tracemalloc.start()
        snapshot = snapshots.read(str(log))
        measured, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        estimate = estimate_state_bytes(snapshot.state, snapshot.pickled_bytes)
        ratios.append(estimate / measured)
    # every estimate within 35 % of the measured footprint
    assert all(0.65 <= r <= 1.35 for r in ratios), ratios


def test_cache_stays_under_its_budget(built) -> None:
    logs, store = built
    with runtime_for(logs, store, scan=False) as (runtime, client):
        states = runtime.states
        apps = runtime.index.sorted_apps()
        first = client.get(f"/api/v1/applications/{apps[0].id}/jobs")
        assert first.status_code == 200
        one = states.cached_bytes
        states.memory_budget = 3 * one
        answers = {}
        for _ in range(2):
            for app in apps:
                response = client.get(f"/api/v1/applications/{app.id}/stages")
                assert response.status_code == 200
                answers.setdefault(app.id, response.json())
                assert response.json() == answers[app.id]  # evicted and reloaded: same answer
                assert states.cached_bytes <= states.memory_budget + one
        assert states.evictions.get("memory", 0) >= len(apps)
        assert states.cached_entries <= 4
        details = client.get("/health/details").json()["memory"]
        assert details["cacheBudgetBytes"] == states.memory_budget and details["cacheBytes"] == states.cached_bytes


def test_estimate_holds_for_task_heavy_states(tmp_path: Path) -> None:
    """Tasks dominate big applications; the estimate must hold there too."""
    import pickle

    import orjson

    from sparkhist.devtools.big import write_big_log
    from sparkhist.devtools.scale import load_template
    from sparkhist.state.app_state import AppState

    template = load_template(SPARK401 / "eventlogs" / "local-1795972896863")
    for tasks in (2_000, 20_000):
        path = write_big_log(template, tmp_path, f"local-30000000{tasks:05d}", tasks)
        state = AppState()
        with open(path, "rb") as f:
            for line in f:
                state.apply(orjson.loads(line))
        state.finish()
        raw = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        del state
        gc.collect()
        tracemalloc.start()
        loaded = pickle.loads(raw)
        measured, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        estimate = estimate_state_bytes(loaded, len(raw))
        assert 0.8 <= estimate / measured <= 1.2, (tasks, estimate, measured)
