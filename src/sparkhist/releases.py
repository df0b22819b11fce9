"""Which Spark History Server release sparkhist answers as, and what changed between releases.

:data:`sparkhist.SPARK_VERSION` names the release; it is the one switch (moving the
reference from SHS 4.0.1 to 4.3.0 is changing that line). Each predicate here is one
change of the SHS's answers, named after what changed, with the release that brought it
as far as it was checked (4.0.1 and 4.3.0 by running them, 4.2.0 from its sources); the
code that renders an answer asks the predicate, never the version.

The version is read at call time, so a test can answer as another release with
``monkeypatch.setattr(sparkhist, "SPARK_VERSION", "4.3.0")``. What a store keeps across
that change follows it at the next start: the catalog records the release its pre-rendered
application list was rendered as (and the log directory's name), and re-renders the rows
when either changes; a difference in how a log is *read* (:func:`parse_variant`) is
recorded in the catalog and in each state, so such a store is read again from the logs,
never resumed or listed from its snapshots (see ``docs/shs-4.3-differences.md``).
"""

from __future__ import annotations

import sparkhist


def answering_as() -> tuple[int, ...]:
    """The release sparkhist answers as, e.g. ``(4, 0, 1)``."""
    return tuple(int(part) for part in sparkhist.SPARK_VERSION.split(".")[:3])


def since(*release: int) -> bool:
    """Whether the release answered as is ``release`` or later."""
    return answering_as() >= release


def attempt_exit_code() -> bool:
    """``ApplicationAttemptInfo.exitCode``, the application-end event's ``ExitCode`` (4.3.0)."""
    return since(4, 3)


def sql_query_fields() -> bool:
    """``ExecutionData.queryId``, ``errorMessage`` and ``rootExecutionId`` (in 4.2.0's sources)."""
    return since(4, 2)


def sql_modified_configs() -> bool:
    """``ExecutionData.modifiedConfigs``, the execution-start event's (4.3.0; not in 4.2.0)."""
    return since(4, 3)


def sql_node_desc() -> bool:
    """``Node.desc``, the plan node's ``simpleString`` (4.3.0; not in 4.2.0)."""
    return since(4, 3)


def sql_list_pages_only_with_a_length() -> bool:
    """``/sql``'s ``length`` defaults to -1 and a length <= 0 answers every execution (4.2.0's
    sources, 4.3.0 by running); 4.0.1 pages 20 by default and fails a length <= 0 (a 500)."""
    return since(4, 2)


def shifted_failed_task_metrics() -> bool:
    """``LiveEntityHelpers.makeNegative`` passes ``createMetrics`` its arguments out of order,
    so a task that is not SUCCESS shows some metrics in other fields (4.0.1; fixed by
    SPARK-54505, named arguments in 4.2.0's sources)."""
    return not since(4, 2)


def redaction_regex() -> str:
    """The default ``spark.redaction.regex`` the SHS redacts the environment with
    (4.3.0 adds ``credential``; 4.2.0's sources do not have it)."""
    base = r"(?i)secret|password|token|access[.]?key"
    return base + "|credential" if since(4, 3) else base


def legacy_push_read_metrics() -> bool:
    """``JsonProtocol`` reads a task's push-based shuffle read metrics from the 3.2-era names
    too (``"Shuffle Push Read Metrics"``, ``"Merged Fallback Count"``) (4.0.1); 4.2.0's reads
    only ``"Push Based Shuffle"`` / ``"Merged Fetch Fallback Count"``, so such logs show 0s."""
    return not since(4, 2)


def log_source_fields() -> bool:
    """``ApplicationAttemptInfo.logSourceName`` and ``logSourceFullPath``: the log directory
    (of ``spark.history.fs.logDirectory``'s list) an attempt's log is in (SPARK-55793, 4.2.0)."""
    return since(4, 2)


def parse_variant() -> str:
    """What of an application's *state* (not only its rendering) depends on the release, and the
    server's retention limits when they are not Spark's defaults (``+retained(jobs=3)``): stores
    record it, and a store built under another variant is rebuilt from the logs."""
    from sparkhist.config import retention_limits

    release = "legacy-push-read-metrics" if legacy_push_read_metrics() else "4.2"
    return release + retention_limits().variant()
