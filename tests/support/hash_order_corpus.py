"""Real pyspark event logs whose SQL answers show Scala's hash orders (issue 13).

The SHS keeps an execution's jobs in an immutable ``Map[Int, _]``, its stages in an immutable
``Set[Int]`` and ``modifiedConfigs`` in an immutable ``Map[String, String]``: past four
entries their iteration order is a hash order (``sparkhist/state/scala_order.py``). These apps
make Spark itself run executions that show it:

- ``hash-jobs``: UNION ALL queries of 4, 7, 12 and 19 different aggregations under AQE (each
  branch's shuffle is a query stage, submitted as a job of its own: 5, 8, 13 and 20 jobs in
  one execution); the same with one branch failing at run time (its failed job
  beside eight succeeded ones); ``limit(5)`` over a filter that keeps nothing, with
  ``spark.sql.limit.scaleUpFactor=2``: ``executeTake`` scans 1, 2, 6, 18, 54... partitions,
  one job and one stage each, over equal partitions, so the stages' task maxima tie (the
  Python UDF's data sent to its workers, byte for byte; durations of 0 ms); queries run
  after setting 5, 8 and 12 session configurations (``modifiedConfigs``; three of the names
  share a ``String.hashCode``, so the SHS's map has a collision node).
- ``hash-jobs-reordered``: not an app but ``hash-jobs``'s log under another app id with each
  ``modifiedConfigs`` object reversed (see ``_reordered_copy``: a 4.x driver already writes it
  in hash order).
- ``hash-running``: a UNION ALL of 9 aggregations, two of which hang, on ``local[6]``: the
  quick branches' jobs end, the hanging ones stay running, then the driver is SIGKILLed
  (an in-progress log with ``runningJobIds`` and ``successJobIds`` in one execution).

What each log holds is measured from the log (``_census``) and recorded in the manifest:
per execution its jobs and stages, and the metrics whose cross-stage maximum ties between
stages whose hash order differs from their insertion order.

Cached like ``corpus.py`` (whose machinery is imported): ``~/.cache/sparkhist/hash-order-corpus-<key>``,
``<key>`` hashing this file, ``corpus.py`` and the pyspark version.
``python tests/support/hash_order_corpus.py`` builds it (if needed) and prints its path.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script (the app subprocess): make ``support`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support import corpus
from support.corpus import (
    AppSpec,
    _describe,
    _log_bytes,
    _wait_until,
    ensure_generated,
    event_log_conf,
    launch_app,
    load_manifest,
    run_apps,
    start_spark,
    stop_spark,
)

__all__ = ["HashSpec", "ensure_hash_order_corpus", "hash_specs", "load_manifest"]

PREFIX = "hash-order-corpus"
#: Jobs per UNION ALL execution: one per branch's shuffle, one for the result.
JOB_COUNTS = (5, 8, 13, 20)
#: How many session configurations are set before a query, in turn.
CONFIG_COUNTS = (5, 8, 12)
#: Three names with one ``String.hashCode`` ("Aa" and "BB" hash alike).
COLLIDING = ("sparkhist.order.AaAa", "sparkhist.order.AaBB", "sparkhist.order.BBAa")


@dataclass(frozen=True)
class HashSpec:
    name: str
    kind: str  # "jobs" | "running"
    master: str
    killed: bool = False

    def as_corpus_spec(self) -> AppSpec:
        return AppSpec(self.name, "none", rolling=False, killed=self.killed)


def hash_specs() -> list[HashSpec]:
    return [
        HashSpec("hash-jobs", "jobs", "local[2]"),
        HashSpec("hash-running", "running", "local[6]", killed=True),
    ]


def hash_order_corpus_key() -> str:
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(Path(corpus.__file__).read_bytes())
    digest.update(importlib.metadata.version("pyspark").encode())
    return digest.hexdigest()[:16]


def ensure_hash_order_corpus() -> Path:
    """The directory of event logs, generated first if needed (about two minutes)."""
    return ensure_generated(PREFIX, hash_order_corpus_key(), generate)


# --------------------------------------------------------------------------- parent side


def generate(out: Path, specs: list[HashSpec] | None = None) -> list[dict[str, Any]]:
    logs = run_apps(out, hash_specs() if specs is None else specs, _run_app)
    source = next((e for e in logs if e["name"] == "hash-jobs"), None)
    if source is not None:
        logs.append(_reordered_copy(out / "eventlogs", source))
        manifest = json.loads((out / "manifest.json").read_text())
        manifest["logs"] = logs
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return logs


def _reordered_copy(log_dir: Path, source: dict[str, Any]) -> dict[str, Any]:
    """``hash-jobs`` again under another app id, each ``modifiedConfigs`` object reversed.

    Spark 4's driver writes the map in its own (Scala 2.13) iteration order, so a 4.x log
    already lists it in hash order; a log written otherwise (Scala 2.12's Spark 3, another
    writer) does not, and the SHS answers its map in 2.13's order all the same.
    """
    app_id = source["app_id"]
    copy_id = app_id + "9"
    lines = []
    for line in (log_dir / source["path"]).read_text().splitlines():
        if '"modifiedConfigs"' in line and "SparkListenerSQLExecutionStart" in line:
            event = json.loads(line)
            event["modifiedConfigs"] = dict(reversed(event["modifiedConfigs"].items()))
            line = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        lines.append(line.replace(app_id, copy_id))
    (log_dir / copy_id).write_text("\n".join(lines) + "\n")
    return {**source, "path": copy_id, "app_id": copy_id, "name": "hash-jobs-reordered",
            "files": [copy_id], "bytes": (log_dir / copy_id).stat().st_size, "observed": {"derived_from": app_id}}


def _run_app(spec: HashSpec, log_dir: Path, work: Path, driver_opts: str) -> dict[str, Any]:
    info = launch_app(__file__, spec, log_dir, work, driver_opts)
    entry = _describe(spec.as_corpus_spec(), log_dir, info["app_id"])
    entry.update(kind=spec.kind, observed=info.get("observed", {}), executions=_census(log_dir / entry["path"]))
    return entry


def _census(path: Path) -> list[dict[str, Any]]:
    """Per SQL execution: its jobs (by status), stages (first-seen order), number of modified
    configurations, and the accumulators whose maximum ties between stages in a way that the
    stages' hash order decides differently from their insertion order."""
    from sparkhist.state.scala_order import int_order

    types: dict[int, dict[int, str]] = {}  # execution -> accumulator -> metric type
    jobs: dict[int, dict[int, str]] = {}
    stages: dict[int, list[int]] = {}
    configs: dict[int, int] = {}
    job_execution: dict[int, int] = {}
    stage_max: dict[tuple[int, int], int] = {}  # (stage, accumulator) -> max task value

    def plan_metrics(execution: int, plan: dict[str, Any]) -> None:
        for metric in plan.get("metrics") or []:
            types.setdefault(execution, {})[metric["accumulatorId"]] = metric["metricType"]
        for child in plan.get("children") or []:
            plan_metrics(execution, child)

    with path.open() as lines:
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:  # a torn last line in a killed app's log
                continue
            kind = event["Event"].rsplit(".", 1)[-1]
            if kind in ("SparkListenerSQLExecutionStart", "SparkListenerSQLAdaptiveExecutionUpdate"):
                plan_metrics(event["executionId"], event["sparkPlanInfo"])
                if "modifiedConfigs" in event:
                    configs[event["executionId"]] = len(event["modifiedConfigs"])
            elif kind == "SparkListenerJobStart":
                sql_id = (event.get("Properties") or {}).get("spark.sql.execution.id")
                if sql_id is not None:
                    execution = int(sql_id)
                    job_execution[event["Job ID"]] = execution
                    jobs.setdefault(execution, {})[event["Job ID"]] = "RUNNING"
                    seen = stages.setdefault(execution, [])
                    seen += [s for s in event["Stage IDs"] if s not in seen]
            elif kind == "SparkListenerJobEnd" and event["Job ID"] in job_execution:
                result = event["Job Result"]["Result"]
                jobs[job_execution[event["Job ID"]]][event["Job ID"]] = (
                    "SUCCEEDED" if result == "JobSucceeded" else "FAILED")
            elif kind == "SparkListenerTaskEnd":
                for acc in event["Task Info"].get("Accumulables") or []:
                    if "Update" in acc:
                        key = (event["Stage ID"], acc["ID"])
                        stage_max[key] = max(stage_max.get(key, -(2**63)), int(acc["Update"]))
    out = []
    for execution in sorted(set(jobs) | set(configs)):
        order = stages.get(execution, [])
        hashed = int_order(order)
        ties = []
        for acc, metric_type in types.get(execution, {}).items():
            if metric_type == "sum":
                continue
            maxima = [(s, stage_max[(s, acc)]) for s in order if (s, acc) in stage_max]
            if len(maxima) < 2:
                continue
            top = max(v for _, v in maxima)
            tied = [s for s, v in maxima if v == top]
            first_hashed = next(s for s in hashed if s in tied)
            if len(tied) > 1 and first_hashed != tied[0]:
                ties.append({"accumulator": acc, "type": metric_type, "stages": tied, "hash_first": first_hashed})
        out.append({"execution": execution, "jobs": jobs.get(execution, {}), "stages": order,
                     "modified_configs": configs.get(execution), "hash_decided_ties": ties})
    return out


# --------------------------------------------------------------------------- child side


def _app_main(spec: HashSpec, log_dir: Path, work: Path) -> None:
    conf = event_log_conf(spec.as_corpus_spec(), spec.master, 2, log_dir, work)
    spark, app_id = start_spark(conf, work)
    observed: dict[str, Any] = {}
    if spec.kind == "jobs":
        _jobs_workload(spark, observed)
        (work / "result.json").write_text(json.dumps({"app_id": app_id, "observed": observed}))
        stop_spark(spark)
    else:
        (work / "result.json").write_text(json.dumps({"app_id": app_id, "observed": observed}))
        _running_workload(spark, log_dir, app_id)  # never returns


def _union_of_aggregations(spark: Any, branches: int, fail_branch: int | None = None, hang: int = 0) -> Any:
    """``branches`` different GROUP BYs (no exchange can be reused), unioned: one shuffle each."""
    from pyspark.sql import functions as F

    def doomed(x: int) -> int:
        raise ValueError("branch meant to fail")

    def hangs(x: int) -> int:
        time.sleep(3600)
        return x

    parts = []
    for b in range(branches):
        key = F.col("id") % (b + 2)
        if b == fail_branch:
            key = F.udf(doomed, "long")(key)
        elif b < hang:
            key = F.udf(hangs, "long")(key)
        parts.append(spark.range(0, 1_000, 1, 2).select(key.alias("k")).groupBy("k").count()
                     .select(F.lit(b).alias("branch"), "k", "count"))
    union = parts[0]
    for part in parts[1:]:
        union = union.unionAll(part)
    return union


def _jobs_workload(spark: Any, observed: dict[str, Any]) -> None:
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException
    from pyspark.sql import functions as F

    sc = spark.sparkContext
    for jobs in JOB_COUNTS:
        sc.setJobDescription(f"union of {jobs - 1} aggregations")
        observed[f"union_{jobs}_rows"] = len(_union_of_aggregations(spark, jobs - 1).collect())
    sc.setJobDescription("union of 9 aggregations, one failing")
    try:
        _union_of_aggregations(spark, 9, fail_branch=4).collect()
    except (Py4JJavaError, PySparkException) as error:
        observed["failing_union"] = type(error).__name__
    else:
        raise AssertionError("the failing union succeeded")

    # executeTake over 100 equal partitions, nothing kept: 1, 2, 6, 18, 54 and 19 partitions,
    # a job each. The UDF sends each task's 1,000 equal rows to Python: equal sizes.
    spark.conf.set("spark.sql.limit.scaleUpFactor", "2")
    one = F.udf(lambda x: x, "long")
    sc.setJobDescription("limit over a Python UDF, nothing kept")
    observed["take_udf_rows"] = len(spark.range(0, 100_000, 1, 100).select("id", one(F.lit(1)).alias("u"))
                                    .where("u + id < 0").limit(5).collect())
    sc.setJobDescription("limit over a range, nothing kept")
    observed["take_rows"] = len(spark.range(0, 100_000, 1, 100).where("id * 7 % 1000003 = 1000002")
                                .limit(5).collect())
    spark.conf.unset("spark.sql.limit.scaleUpFactor")

    # modifiedConfigs: 5, 8 and 12 session settings (harmless ones and names of our own)
    names = [*COLLIDING, "spark.sql.session.timeZone", "spark.sql.caseSensitive", "sparkhist.order.zeta",
             "spark.sql.sources.default", "sparkhist.order.é", "spark.sparkhist.order.password",
             "spark.sql.legacy.timeParserPolicy", "sparkhist.order.x", "spark.sql.adaptive.logLevel"]
    values = ["a", "b", "c", "UTC", "false", "z", "parquet", "é", "hunter2", "CORRECTED", "1", "info"]
    for count in CONFIG_COUNTS:
        for name, value in zip(names[:count], values[:count], strict=True):
            spark.conf.set(name, value)
        sc.setJobDescription(f"a query with {count} settings")
        spark.sql("SELECT id % 3 AS k, count(*) FROM range(100) GROUP BY k").collect()
        for name in names[:count]:
            spark.conf.unset(name)
    sc.setJobDescription(None)


def _running_workload(spark: Any, log_dir: Path, app_id: str) -> None:
    """Nine branches, two hang: the others' jobs end, then the driver is SIGKILLed."""
    sc = spark.sparkContext

    def run() -> None:
        sc.setJobDescription("union of 9 aggregations, two hang")
        try:
            _union_of_aggregations(spark, 9, hang=2).collect()
        except Exception:  # noqa: BLE001 - the gateway dies with the JVM
            pass

    threading.Thread(target=run, daemon=True).start()
    tracker = sc.statusTracker()

    def quick_ones_done() -> bool:
        jobs = [tracker.getJobInfo(j) for j in tracker.getJobIdsForGroup(None)]
        done = [j for j in jobs if j is not None and j.status == "SUCCEEDED"]
        return len(done) >= 7 and len(tracker.getActiveJobsIds()) == 2

    _wait_until(quick_ones_done, "the seven quick branches")
    sizes: list[int] = []

    def settled() -> bool:
        sizes.append(_log_bytes(log_dir, app_id))
        return len(sizes) > 6 and sizes[-1] > 0 and len(set(sizes[-6:])) == 1

    _wait_until(settled, "the event log to settle")
    driver = sc._gateway.proc
    driver.kill()
    driver.wait()
    os._exit(0)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--app":
        _app_main(HashSpec(**json.loads(sys.argv[2])), Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        print(ensure_hash_order_corpus())
