"""``sparkhist index-on-spark`` on a real Spark cluster of one machine (``local-cluster``: a
master, two workers and their executor JVMs, each with its Python workers).

One module fixture runs the command three times on one log directory (the conformance
logs, the bundled samples and the generated corpus) and a plain ``sparkhist scan`` once:

1. every log but two (one held back, one cut short), with one executor JVM killed by
   SIGKILL while the job's tasks run;
2. every log whole: the held-back log is new, the cut one has grown;
3. again, with nothing to do.

Then the Spark-built store and the single-node store are served side by side and asked
every request of the differential suite, for every application and attempt: status, content
type and body must be the same bytes, once what the wall clock decides is masked on both
sides (an in-progress attempt's ``lastUpdated``, the time a scan saw it; a running
application's request-time durations).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from support.corpus import spark_home
from support.differential import APP_LIST_QUERIES, PER_APP, PER_STAGE, WALL_CLOCK_WHEN_RUNNING, differences
from support.server import copy_logs, runtime_for
from support.ui_corpus import SAMPLES, gather_logs

pytestmark = [pytest.mark.spark, pytest.mark.slow]

MASTER = "local-cluster[2,1,1024]"
SPARKHIST = Path(sys.executable).with_name("sparkhist")
#: Held back from the first run (a new log for the second): single file, finished, uncompressed.
NEW = "local-1796629858155"
#: Cut to half its lines in the first run (grown in the second): single file, in progress.
GROWN = "local-1796629926922.inprogress"
SCAN_TIME = {"lastUpdated", "lastUpdatedEpoch"}
REPORT = re.compile(r"(\d+) logs listed: (\d+) new, (\d+) grown, (\d+) unchanged, (\d+) removed, (\d+) skipped; "
                    r"(\d+) applications")


@dataclass
class Run:
    stdout: str
    stderr: str
    seconds: float
    killed: list[int]

    def report(self) -> dict[str, int]:
        found = REPORT.search(self.stdout)
        assert found, self.stdout
        names = ("listed", "new", "grown", "unchanged", "removed", "skipped", "applications")
        return dict(zip(names, map(int, found.groups()), strict=True))


def _environ() -> dict[str, str]:
    """The command's defaults for SPARK_HOME and PYSPARK_PYTHON are part of what is tested."""
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_HOME", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")}
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    return env


def _children(pid: int) -> list[tuple[int, str]]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
            out.append((int(entry.name), cmdline))
    return out


def _descendants(pid: int) -> Iterator[tuple[int, str]]:
    for child, cmdline in _children(pid):
        yield child, cmdline
        yield from _descendants(child)


def _kill_an_executor_when_busy(process: subprocess.Popen[str], timeout: float = 400.0) -> list[int]:
    """SIGKILL the first executor JVM (``CoarseGrainedExecutorBackend``, a descendant of the
    command) seen running a task, i.e. with a Python worker of its own."""
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        for pid, cmdline in _descendants(process.pid):
            if "CoarseGrainedExecutorBackend" in cmdline and any("pyspark" in c for _, c in _descendants(pid)):
                os.kill(pid, signal.SIGKILL)
                return [pid]
        time.sleep(0.05)
    return []


def run_sparkhist(command: str, log_dir: Path, store: Path | str, flags: list[str] | None = None, *,
                  cache: Path | None = None, kill: bool = False) -> Run:
    """``sparkhist <command>`` (``scan`` or ``index-on-spark`` on :data:`MASTER`) as its own process;
    ``flags``: the source's (Hadoop configuration); ``kill``: an executor JVM SIGKILLed while busy."""
    args = [str(SPARKHIST), command, "--log-dir", str(log_dir), "--store", str(store), *(flags or [])]
    if command == "index-on-spark":
        args += ["--master", MASTER, "--conf", "spark.executor.memory=512m"]
        if cache is not None:
            args += ["--cache", str(cache)]
    started = time.monotonic()
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_environ()) as process:
        killed = _kill_an_executor_when_busy(process) if kill else []
        stdout, stderr = process.communicate(timeout=900)
    assert process.returncode == 0, stderr[-4000:]
    return Run(stdout, stderr, time.monotonic() - started, killed)


def _snapshots(store: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(store)): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in (store / "snapshots").rglob("*") if p.is_file()}


@dataclass
class Indexed:
    logs: Path
    spark_store: Path
    single_store: Path
    first: Run
    second: Run
    third: Run
    after_first: dict[str, tuple[int, int]]
    after_second: dict[str, tuple[int, int]]
    temporary_after_second: list[Path]


@pytest.fixture(scope="module")
def indexed(spark_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Indexed:
    base = tmp_path_factory.mktemp("index-on-spark")
    logs = gather_logs(base / "logs")
    for item in sorted(spark_corpus.iterdir()):
        if not (logs / item.name).exists():
            (shutil.copytree if item.is_dir() else shutil.copyfile)(item, logs / item.name)
    for path in [logs, *logs.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    held, whole = base / NEW, (logs / GROWN).read_bytes()
    shutil.move(logs / NEW, held)
    lines = whole.splitlines(keepends=True)
    (logs / GROWN).write_bytes(b"".join(lines[: len(lines) // 2]))

    spark_store, single_store = base / "spark-store", base / "single-store"
    first = run_sparkhist("index-on-spark", logs, spark_store, kill=True)
    after_first = _snapshots(spark_store)
    shutil.move(held, logs / NEW)
    (logs / GROWN).write_bytes(whole)
    second = run_sparkhist("index-on-spark", logs, spark_store)
    after_second = _snapshots(spark_store)
    temporary = [p for p in spark_store.rglob("*") if p.name.endswith(".tmp")]
    third = run_sparkhist("index-on-spark", logs, spark_store)
    run_sparkhist("scan", logs, single_store)
    return Indexed(logs, spark_store, single_store, first, second, third, after_first, after_second, temporary)


def test_an_executor_killed_mid_job_loses_nothing(indexed: Indexed) -> None:
    """The kill happened while tasks ran (Spark reports the lost executor's tasks), the run
    still ended with every log indexed, and the next writer left no temporary file."""
    first = indexed.first
    assert first.killed, "no executor was seen running a task"
    assert re.search(r"Lost task|ExecutorLostFailure|Lost executor", first.stderr), first.stderr[-4000:]
    report = first.report()
    assert report["skipped"] == 0 and report["new"] == report["listed"]
    assert indexed.temporary_after_second == []


def test_a_rerun_rebuilds_only_the_new_and_the_grown_log(indexed: Indexed) -> None:
    first, second = indexed.first.report(), indexed.second.report()
    assert second["listed"] == first["listed"] + 1
    assert (second["new"], second["grown"], second["removed"], second["skipped"]) == (1, 1, 0, 0)
    assert second["unchanged"] == first["listed"] - 1
    assert "2 logs built by 1 Spark jobs" in indexed.second.stdout
    changed = {k for k, v in indexed.after_second.items() if indexed.after_first.get(k) != v}
    assert len(changed) == 2, changed  # one snapshot written for each, no other touched
    assert set(indexed.after_first) <= set(indexed.after_second)


def test_a_rerun_with_nothing_to_do_starts_no_spark(indexed: Indexed) -> None:
    third, second = indexed.third.report(), indexed.second.report()
    assert (third["new"], third["grown"], third["removed"], third["skipped"]) == (0, 0, 0, 0)
    assert third["unchanged"] == third["listed"] == second["listed"]
    assert "no Spark job run" in indexed.third.stdout
    assert "SparkContext" not in indexed.third.stderr and "log4j" not in indexed.third.stderr
    assert indexed.after_second == _snapshots(indexed.spark_store)


def _mask(body: Any, running: bool) -> Any:
    """What the wall clock decides, on both sides alike: an attempt still in progress was last
    updated when a scan saw it (as in the SHS), and a running application's durations are
    measured when asked."""
    if isinstance(body, dict):
        unfinished = body.get("completed") is False
        return {k: ("<now>" if (running and k in WALL_CLOCK_WHEN_RUNNING) or (unfinished and k in SCAN_TIME)
                    else _mask(v, running)) for k, v in body.items()}
    if isinstance(body, list):
        return [_mask(v, running) for v in body]
    return body


def _paths(client: Any) -> list[tuple[str, bool]]:
    """Every request of the differential suite, for every application and every attempt."""
    paths: list[tuple[str, bool]] = [("/version", False)]
    paths += [("/applications" + q, False) for q in APP_LIST_QUERIES]
    paths += [("/applications/nope-app", False), ("/applications/nope-app/jobs", False), ("/foobar", False)]
    for app in client.get("/api/v1/applications").json():
        running = not all(a["completed"] for a in app["attempts"])
        bases = [f"/applications/{app['id']}"]
        bases += [f"/applications/{app['id']}/{a['attemptId']}" for a in app["attempts"] if "attemptId" in a]
        for base in bases:
            paths += [(base + p, running) for p in PER_APP]
            paths.append((base + "/logs", False))
            stages, jobs = client.get(f"/api/v1{base}/stages"), client.get(f"/api/v1{base}/jobs")
            if stages.status_code == 200:  # not: an app with attempts asked without one (404, as the SHS)
                for stage in sorted({s["stageId"] for s in stages.json()}):
                    paths += [(f"{base}/stages/{stage}{p}", running) for p in PER_STAGE]
            if jobs.status_code == 200:
                for job in sorted({j["jobId"] for j in jobs.json()}):
                    paths.append((f"{base}/jobs/{job}", running))
    return paths


def answers_differ(logs: Path, store_a: Path, store_b: Path, *, every_request: bool = True) -> list[str]:
    """Requests of the differential suite (every one, or the application list and each application's
    and attempt's own requests) that two stores of ``logs`` answer differently: bytes compared as
    served, but for what the wall clock decides (:func:`_mask`). ``store_a`` must answer every
    request from a snapshot (none built while answering)."""
    with (runtime_for(logs, store_a, scan=False) as (runtime_a, a),
          runtime_for(logs, store_b, scan=False) as (runtime_b, b)):
        assert len(runtime_a.index) == len(runtime_b.index) > 25, (len(runtime_a.index), len(runtime_b.index))
        paths = _paths(b)
        if not every_request:
            paths = [(p, r) for p, r in paths if "/stages/" not in p and "/jobs/" not in p]
        different = []
        for path, running in paths:
            ours, theirs = a.get("/api/v1" + path), b.get("/api/v1" + path)
            x, y = ours.content, theirs.content
            if (ours.status_code == 200 and ours.headers.get("content-type", "").startswith("application/json")
                    and (running or b'"completed"' in x)):
                x, y = orjson.dumps(_mask(orjson.loads(x), running)), orjson.dumps(_mask(orjson.loads(y), running))
            if (ours.status_code, ours.headers.get("content-type"), x) != (theirs.status_code,
                                                                          theirs.headers.get("content-type"), y):
                different.append(path)
                if len(different) <= 5 and ours.status_code == theirs.status_code == 200:
                    with contextlib.suppress(orjson.JSONDecodeError):
                        print(path, list(differences(orjson.loads(x), orjson.loads(y)))[:5])
        print(f"\n{len(paths)} requests, {len(different)} different")
        assert len(paths) > (2000 if every_request else 500), len(paths)
        assert runtime_a.states.builds == 0  # every answer from a snapshot the Spark job wrote
        return different


def test_answers_are_byte_identical_to_single_node_indexing(indexed: Indexed) -> None:
    assert answers_differ(indexed.logs, indexed.spark_store, indexed.single_store) == []


def test_under_spark_submit(tmp_path: Path) -> None:
    """The README's form: spark-submit runs ``python -m sparkhist --main-file`` (its master used)."""
    main_file = subprocess.run([sys.executable, "-m", "sparkhist", "--main-file"], capture_output=True, text=True,
                               check=True).stdout.strip()
    logs = copy_logs(SAMPLES, tmp_path / "logs")
    spark_submit = Path(spark_home()) / "bin" / "spark-submit"
    env = {**_environ(), "PYSPARK_PYTHON": sys.executable}
    out = subprocess.run([str(spark_submit), "--master", "local[2]", main_file, "index-on-spark", "--log-dir", str(logs),
                          "--store", str(tmp_path / "store")], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    listed = len(list(logs.iterdir()))
    assert f"{listed} logs listed: {listed} new" in out.stdout, out.stdout
    assert f"{listed} logs built by 1 Spark jobs" in out.stdout
    with runtime_for(logs, tmp_path / "store", scan=False) as (runtime, client):
        apps = client.get("/api/v1/applications").json()
        assert len(apps) == len(runtime.index) > 0
        for app in apps:
            attempt = app["attempts"][0].get("attemptId")
            base = f"/api/v1/applications/{app['id']}" + (f"/{attempt}" if attempt else "")
            assert client.get(base + "/jobs").status_code == 200
        assert runtime.states.builds == 0  # every answer from a snapshot the Spark job wrote
