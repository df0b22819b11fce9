"""Unit tests of the app state: picklability, SQL metric strings, retention, error messages."""

from __future__ import annotations

import pickle

import pytest

from sparkhist.api.v1.app_resources import handle
from sparkhist.errors import BadParameter, JerseyNotFound, NotFound, ServiceUnavailable
from sparkhist.state.app_state import AppState
from sparkhist.state.sql import bytes_to_string, ms_duration_to_string, string_value

from .test_conformance_app_endpoints import APACHE, Query, apache_state, spark_state

needs_data = pytest.mark.skipif(not APACHE.is_dir(), reason="conformance data not present")


def q(**kw: str) -> Query:
    return Query(list(kw.items()))


# --------------------------------------------------------------------------- formatting
@pytest.mark.parametrize(("size", "text"), [(0, "0.0 B"), (1012, "1012.0 B"), (2048, "2.0 KiB"),
                                             (17301504, "16.5 MiB"), (530, "530.0 B")])
def test_bytes_to_string(size: int, text: str) -> None:
    assert bytes_to_string(size) == text


@pytest.mark.parametrize(("ms", "text"), [(0, "0 ms"), (999, "999 ms"), (1250, "1.3 s"),
                                           (61_000, "1.0 m"), (7_200_000, "2.00 h")])
def test_ms_duration_to_string(ms: int, text: str) -> None:
    assert ms_duration_to_string(ms) == text


def test_string_value_kinds() -> None:
    assert string_value("sum", [100000, 100000], None) == "200,000"
    assert string_value("timing", [45, 46], [46, 0, 0, 1]) == (
        "total (min, med, max (stageId: taskId))\n91 ms (45 ms, 46 ms, 46 ms (stage 0.0: task 1))")
    assert string_value("size", [530], None) == "530.0 B"
    assert string_value("average", [10, 10], [10, 2, 0, 2]) == (
        "(min, med, max (stageId: taskId)):\n(1, 1, 1 (stage 2.0: task 2))")
    assert string_value("timing", [5, 7], None).endswith("(driver))")


# --------------------------------------------------------------------------- state as data
@needs_data
def test_state_pickles_and_answers_the_same() -> None:
    state = spark_state("done")
    clone = pickle.loads(pickle.dumps(state))
    for rest in (["jobs"], ["stages"], ["executors"], ["sql"], ["environment"]):
        assert handle(clone, rest, q(), app_id="x") == handle(state, rest, q(), app_id="x")


def test_unknown_events_are_ignored() -> None:
    state = AppState()
    state.apply({"Event": "com.example.SomethingNew", "x": 1})
    state.apply({"no": "event"})
    assert state.jobs == {}


@pytest.mark.parametrize(("server_limit", "kept"), [(None, 15), (10, 10)])
def test_retained_jobs_are_the_servers_not_the_apps_own(server_limit: int | None, kept: int) -> None:
    """The app's own spark.ui.retainedJobs=10 is ignored (the SHS replays with its conf); the
    server's limit of 10 keeps the 10 that ended last."""
    state = AppState() if server_limit is None else AppState(retained_jobs=server_limit)
    state.apply({"Event": "SparkListenerEnvironmentUpdate", "JVM Information": {},
                 "Spark Properties": {"spark.ui.retainedJobs": "10"}})
    for job_id in range(15):
        state.apply({"Event": "SparkListenerJobStart", "Job ID": job_id, "Submission Time": 1000 + job_id,
                     "Stage Infos": [], "Stage IDs": [], "Properties": {}})
        state.apply({"Event": "SparkListenerJobEnd", "Job ID": job_id, "Completion Time": 2000 + job_id,
                     "Job Result": {"Result": "JobSucceeded"}})
    jobs = handle(state, ["jobs"], q(), app_id="x")
    assert len(jobs) == kept and jobs[0]["jobId"] == 14


# --------------------------------------------------------------------------- error answers
@needs_data
@pytest.mark.parametrize(("rest", "query", "error", "message"), [
    (["stages", "12345"], {}, NotFound, "unknown stage: 12345"),
    (["stages", "1", "1"], {}, NotFound, "unknown attempt for stage 1.  Found attempts: [0]"),
    (["stages", "0", "0", "taskSummary"], {"quantiles": "foo,0.1"}, BadParameter,
     'Bad value for parameter "quantiles".  Expected a double, got "foo"'),
    (["jobs", "999"], {}, NotFound, "unknown job: 999"),
    (["executors", "driver", "threads"], {}, ServiceUnavailable,
     "Thread dumps not available through the history server."),
    (["storage", "rdd", "7"], {}, NotFound, "no rdd found w/ id 7"),
    (["sql", "99"], {}, NotFound, "unknown query execution id: 99"),
])
def test_error_messages(rest: list[str], query: dict[str, str], error: type, message: str) -> None:
    state = apache_state(("local-1422981780767",))
    with pytest.raises(error) as info:
        handle(state, rest, q(**query), app_id="local-1422981780767")
    assert str(info.value) == message


@needs_data
@pytest.mark.parametrize(("rest", "query"), [
    (["stages", "flimflam"], {}),
    (["jobs"], {"status": "bogus"}),
    (["stages", "0", "0", "taskList"], {"sortBy": "bogus"}),
    (["sql", "abc"], {}),
])
def test_jersey_404s(rest: list[str], query: dict[str, str]) -> None:
    state = apache_state(("local-1422981780767",))
    with pytest.raises(JerseyNotFound):
        handle(state, rest, q(**query), app_id="local-1422981780767")


@needs_data
def test_enums_are_case_insensitive_and_repeatable() -> None:
    state = apache_state(("local-1422981780767",))
    both = handle(state, ["jobs"], Query([("status", "succeeded"), ("status", "FAILED")]), app_id="x")
    assert {j["status"] for j in both} <= {"SUCCEEDED", "FAILED"} and both


@needs_data
def test_sql_pages_like_spark_4_0_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """Answering as 4.0.1: pages with offset/length (default 20); a length <= 0 fails (the real SHS: 500).
    (4.2+ answers every execution for a length <= 0: tests/test_releases.py compares it live.)"""
    import sparkhist
    from sparkhist.errors import JerseyServerError

    monkeypatch.setattr(sparkhist, "SPARK_VERSION", "4.0.1")

    state = spark_state("done")
    everything = handle(state, ["sql"], q(), app_id="x")
    assert [x["id"] for x in handle(state, ["sql"], q(offset="1"), app_id="x")] == [x["id"] for x in everything[1:]]
    page = handle(state, ["sql"], q(offset="1", length="1"), app_id="x")
    assert [x["id"] for x in page] == [everything[1]["id"]]
    for length in ("0", "-1"):
        with pytest.raises(JerseyServerError):
            handle(state, ["sql"], q(length=length), app_id="x")
