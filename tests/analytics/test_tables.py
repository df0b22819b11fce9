"""Issue 19: every figure of the analytics tables equals the API's for the same entity.

Real logs (the Spark 4.0.1 conformance logs in every codec, finished and in progress,
and the Apache SHS suite's logs) are indexed into a temporary store by the real scan;
the tables are read with the real DuckDB engine and compared with ``/api/v1`` answers
from the same runtime.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from tests.support.server import copy_logs, runtime_for

from sparkhist.analytics.query import Engine
from sparkhist.analytics.tables import TABLES

CONFORMANCE = Path("/work/shared/conformance")


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Engine]]:
    root = tmp_path_factory.mktemp("analytics")
    logs = copy_logs(CONFORMANCE / "spark-4.0.1" / "eventlogs", root / "logs")
    for entry in (CONFORMANCE / "apache-spark" / "spark-events").iterdir():
        target = logs / entry.name
        if not target.exists():
            copy_logs(entry, target) if entry.is_dir() else target.write_bytes(entry.read_bytes())
    (root / "store" / "analytics").mkdir(parents=True)  # the tables on, as SPARKHIST_ANALYTICS_TABLES=true makes them
    with runtime_for(logs, root / "store") as (_runtime, client):
        engine = Engine(str(root / "store"), max_rows=1_000_000)
        try:
            yield client, engine
        finally:
            engine.close()


def _rows(engine: Engine, table: str) -> list[dict[str, Any]]:
    result = engine.run(f"SELECT * FROM {table}")
    assert not result.damaged
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


def _ms(date: str) -> int:
    return int(datetime.strptime(date[:-3] + "+0000", "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() * 1000)


_NANOS = {"executorCpuTime", "shuffleWriteTime"}


def _same_figures(row: dict[str, Any], record: dict[str, Any], skip: set[str] = frozenset()) -> int:  # type: ignore[assignment]
    """Every column with a same-named field in the API record holds its value; returns how many were compared."""
    compared = 0
    for column, value in row.items():
        key = _camel(column)
        if column in skip or column in ("app_id", "attempt_id") or key not in record or isinstance(record[key], (list, dict)):
            continue
        expected = record[key]
        if isinstance(expected, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+GMT", expected):
            expected = _ms(expected)
        elif key in _NANOS:
            expected = expected / 1_000_000
        assert value == expected, (column, value, expected)
        compared += 1
    return compared


def _base(app_id: str, attempt_id: str | None) -> str:
    return f"/api/v1/applications/{app_id}" + (f"/{attempt_id}" if attempt_id else "")


def _get(client: Any, url: str) -> Any:
    answer = client.get(url)
    assert answer.status_code == 200, (url, answer.text[:200])
    return answer.json()


def test_every_attempt_has_one_application_row(indexed: tuple[Any, Engine]) -> None:
    client, engine = indexed
    rows = {(r["app_id"], r["attempt_id"]): r for r in _rows(engine, "applications")}
    apps = _get(client, "/api/v1/applications")
    attempts = {(a["id"], t.get("attemptId")): (a, t) for a in apps for t in a["attempts"]}
    assert set(rows) == set(attempts) and len(rows) > 20
    for key, (app, attempt) in attempts.items():
        row = rows[key]
        assert row["app_name"] == app["name"]
        assert row["spark_user"] == attempt["sparkUser"]
        assert row["completed"] == attempt["completed"]
        assert row["start_time"] == attempt["startTimeEpoch"]
        if attempt["completed"]:
            assert row["end_time"] == attempt["endTimeEpoch"]
            assert row["duration"] == attempt["duration"]
        base = _base(*key)
        assert row["num_jobs"] == len(_get(client, base + "/jobs"))
        stages = _get(client, base + "/stages")
        assert row["num_stages"] == len(stages)
        assert row["executor_run_time"] == sum(s["executorRunTime"] for s in stages)
        assert row["executor_cpu_time"] == pytest.approx(sum(s["executorCpuTime"] for s in stages) / 1e6)


def test_jobs_stages_executors_sql_and_properties_equal_the_api(indexed: tuple[Any, Engine]) -> None:
    client, engine = indexed
    tables = {t.name: _rows(engine, t.name) for t in TABLES}
    running = {(r["app_id"], r["attempt_id"]) for r in tables["applications"] if not r["completed"]}
    compared = dict.fromkeys(tables, 0)
    for app in tables["applications"]:
        key = (app["app_id"], app["attempt_id"])
        base = _base(*key)
        mine = {name: [r for r in rows if (r["app_id"], r["attempt_id"]) == key] for name, rows in tables.items()}

        jobs = {j["jobId"]: j for j in _get(client, base + "/jobs")}
        assert sorted(r["job_id"] for r in mine["jobs"]) == sorted(jobs)
        for row in mine["jobs"]:
            compared["jobs"] += _same_figures(row, jobs[row["job_id"]])
            assert row["num_stages"] == len(jobs[row["job_id"]]["stageIds"])

        stages = {(s["stageId"], s["attemptId"]): s for s in _get(client, base + "/stages")}
        assert sorted((r["stage_id"], r["stage_attempt_id"]) for r in mine["stages"]) == sorted(stages)
        for row in mine["stages"]:
            stage_key = (row["stage_id"], row["stage_attempt_id"])
            compared["stages"] += _same_figures(row, stages[stage_key])
            summary = client.get(f"{base}/stages/{stage_key[0]}/{stage_key[1]}/taskSummary?quantiles=0,0.25,0.5,0.75,1")
            if summary.status_code == 404:
                assert row["task_duration_median"] is None and row["skew"] is None
                continue
            durations = summary.json()["duration"]
            assert [row[c] for c in ("task_duration_min", "task_duration_p25", "task_duration_median",
                                     "task_duration_p75", "task_duration_max")] == durations
            assert row["skew"] == (durations[4] / durations[2] if durations[2] > 0 else None)

        executors = {e["id"]: e for e in _get(client, base + "/allexecutors")}
        assert sorted(r["executor_id"] for r in mine["executors"]) == sorted(executors)
        for row in mine["executors"]:
            clock = {"total_duration"} if key in running and row["executor_id"] == "driver" else set()
            compared["executors"] += _same_figures(row, executors[row["executor_id"]], clock)

        sql = client.get(base + "/sql?details=false&planDescription=false&length=100000")
        if sql.status_code == 200:
            executions = {x["id"]: x for x in sql.json()}
            assert sorted(r["execution_id"] for r in mine["sql_executions"]) == sorted(executions)
            for row in mine["sql_executions"]:
                x = executions[row["execution_id"]]
                clock = {"duration"} if x["status"] == "RUNNING" else set()
                compared["sql_executions"] += _same_figures(row, x, clock)
                assert row["num_succeeded_jobs"] == len(x["successJobIds"])
                assert row["num_failed_jobs"] == len(x["failedJobIds"])

        environment = client.get(base + "/environment")
        expected = [tuple(kv) for kv in environment.json()["sparkProperties"]] if environment.status_code == 200 else []
        assert sorted((r["key"], r["value"]) for r in mine["properties"]) == sorted(expected)
        compared["properties"] += len(expected)
    # Each table was really compared, figure by figure, on these logs.
    assert all(compared[name] > 50 for name in ("jobs", "stages", "executors", "sql_executions", "properties")), compared


def test_properties_are_redacted_as_the_api(indexed: tuple[Any, Engine]) -> None:
    _, engine = indexed
    result = engine.run("SELECT count(*) FROM properties WHERE value = '*********(redacted)'")
    secrets = engine.run("SELECT count(*) FROM properties WHERE regexp_matches(lower(key), 'secret|password|token')")
    assert result.rows[0][0] >= secrets.rows[0][0]
