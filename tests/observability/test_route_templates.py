"""Route templates for request metrics: every SHS endpoint has one, nothing else leaks."""

from __future__ import annotations

import pytest

from sparkhist.api.request_metrics import application_template

A = "/api/v1/applications"


@pytest.mark.parametrize(
    ("rest", "template"),
    [
        ("", A),
        ("app-1", f"{A}/{{appId}}"),
        ("app-1/", f"{A}/{{appId}}"),
        ("app-1/jobs", f"{A}/{{appId}}/jobs"),
        ("app-1/jobs/3", f"{A}/{{appId}}/jobs/{{jobId}}"),
        ("app-1/1", f"{A}/{{appId}}/{{attemptId}}"),
        ("app-1/1/jobs/3", f"{A}/{{appId}}/{{attemptId}}/jobs/{{jobId}}"),
        ("app-1/stages/2/0/taskSummary", f"{A}/{{appId}}/stages/{{stageId}}/{{stageAttemptId}}/taskSummary"),
        ("app-1/executors/7/threads", f"{A}/{{appId}}/executors/{{executorId}}/threads"),
        ("app-1/storage/rdd/4", f"{A}/{{appId}}/storage/rdd/{{rddId}}"),
        ("app-1/sql/sqlTable", f"{A}/{{appId}}/sql/sqlTable"),
        ("app-1/sql/12", f"{A}/{{appId}}/sql/{{executionId}}"),
        ("app-1/streaming/batches/9/operations/1",
         f"{A}/{{appId}}/streaming/batches/{{batchId}}/operations/{{outputOpId}}"),
        ("app-1/logs", f"{A}/{{appId}}/logs"),
        ("app-1/jobs/3/what/ever", f"{A}/{{appId}}/{{unknown}}"),
        ("app-1/1/nonsense", f"{A}/{{appId}}/{{attemptId}}/{{unknown}}"),
    ],
)
def test_application_templates(rest: str, template: str) -> None:
    assert application_template(rest) == template
