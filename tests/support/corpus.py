"""A corpus of real event logs, written by pyspark 4.0.1 in local mode.

Why real logs: codec framing, rolling layouts and what a crashed driver leaves
behind are easy to get subtly wrong in hand-made fixtures. Tests should read
what Spark really writes.

Generating the logs takes minutes, so the result is cached outside the work tree
under ``~/.cache/sparkhist/corpus-<key>/``. ``<key>`` hashes this file and the
pyspark version, so any edit to the generator produces a fresh corpus. The logs
are written into a temporary sibling directory that is renamed into place only
when everything succeeded, so a crashed run never leaves half a cache behind.

Every application runs in its own Python subprocess, so each has its own
SparkContext and conf. This same file is the subprocess's entry point
(``--app``), which keeps the hash honest. ``python tests/support/corpus.py``
builds the corpus (if needed) and prints its path.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import operator
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

CODECS = ("none", "lz4", "lzf", "snappy", "zstd")
EVENTLOGS = "eventlogs"
#: Beside the event-log directory, not in it: the SHS would try to parse it as a log.
MANIFEST = "manifest.json"
#: Wall-clock limit for one application subprocess.
APP_TIMEOUT_S = 300
#: Apps run at once. One app alone leaves a core idle much of the time (py4j round
#: trips, Python worker start-up, waits for the log to settle); three only contend.
PARALLEL_APPS = 2


@dataclass(frozen=True)
class AppSpec:
    """One application to run. ``name`` becomes the Spark app name."""

    name: str
    codec: str  # "none" or a Spark short codec name
    rolling: bool
    killed: bool = False  # SIGKILL the driver JVM mid-run, leaving an in-progress log
    multi_file: bool = False  # write >20 MiB of events so the rolling log has 3+ files

    @property
    def layout(self) -> str:
        return "rolling" if self.rolling else "single"


def app_specs() -> list[AppSpec]:
    """Everything in the corpus.

    The first app runs alone and seeds the class archive (see ``generate``), so it
    must exercise SQL; the slowest app goes next so it overlaps the rest.
    """
    specs = [
        AppSpec(f"finished-{codec}-{layout}", codec, rolling=(layout == "rolling"))
        for codec in CODECS
        for layout in ("single", "rolling")
    ]
    specs.insert(1, AppSpec("finished-zstd-rolling-multifile", "zstd", rolling=True, multi_file=True))
    specs += [AppSpec(f"killed-{codec}-single", codec, rolling=False, killed=True) for codec in CODECS]
    specs.append(AppSpec("killed-zstd-rolling", "zstd", rolling=True, killed=True))
    return specs


# --------------------------------------------------------------------------- cache


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/sparkhist``, i.e. ``~/.cache/sparkhist`` by default."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sparkhist"


def corpus_key() -> str:
    """Hash of this generator's source and the pyspark version that runs it."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(importlib.metadata.version("pyspark").encode())
    return digest.hexdigest()[:16]


def ensure_corpus() -> Path:
    """Return the directory of event logs, generating the corpus if needed.

    Layout: ``corpus-<key>/eventlogs/`` (returned) and ``corpus-<key>/manifest.json``.
    """
    return ensure_generated("corpus", corpus_key(), generate)


def ensure_generated(prefix: str, key: str, build: Callable[[Path], object]) -> Path:
    """``<cache>/<prefix>-<key>/eventlogs``, running ``build(tmp)`` first when it is absent.

    A file lock serialises concurrent callers (e.g. pytest-xdist workers), so a corpus
    is generated once; ``build`` writes into a temporary sibling renamed into place only
    when it succeeded.
    """
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{prefix}-{key}"
    if final.is_dir():
        return final / EVENTLOGS
    with _file_lock(root / f"{prefix}-{key}.lock"):
        if final.is_dir():
            return final / EVENTLOGS
        for stale in root.glob(f".{prefix}-{key}.tmp-*"):  # left by a crashed run
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{prefix}-{key}.tmp-", dir=root))
        try:
            build(tmp)
            tmp.rename(final)  # atomic: the cache appears complete or not at all
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final / EVENTLOGS


def load_manifest(event_logs: Path) -> list[dict[str, Any]]:
    """The per-log entries of the manifest beside ``event_logs`` (what ensure_corpus returned)."""
    return json.loads((event_logs.parent / MANIFEST).read_text())["logs"]


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- parent side


def spark_home() -> Path:
    """The pyspark package directory: it ships ``bin/``, ``jars/`` and works as SPARK_HOME."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise RuntimeError("pyspark is not installed")
    return Path(spec.origin).parent


def generate(out: Path, specs: list[AppSpec] | None = None) -> list[dict[str, Any]]:
    """Run every app into ``out/eventlogs`` and write ``out/manifest.json``."""
    return run_apps(out, app_specs() if specs is None else specs, _run_app)


def run_apps(out: Path, specs: list[Any], run_app: Callable[..., dict[str, Any]]) -> list[dict[str, Any]]:
    """Run ``run_app(spec, log_dir, work, driver_opts)`` for every spec, ``PARALLEL_APPS`` at
    a time, into ``out/eventlogs``; write ``out/manifest.json`` with the entries returned."""
    log_dir = out / EVENTLOGS
    log_dir.mkdir()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="sparkhist-corpus-work-") as tmp:
        work = Path(tmp)
        # Most of a driver's CPU goes to loading and verifying ~15k classes. The first
        # app dumps the ones it loaded into a CDS archive; the others map it (~35% less
        # CPU). A missing or unusable archive only costs a JVM warning.
        archive = work / "driver-classes.jsa"
        logs = _run_parallel(specs[:1], run_app, log_dir, work, f"-XX:ArchiveClassesAtExit={archive}")
        logs += _run_parallel(specs[1:], run_app, log_dir, work, f"-XX:SharedArchiveFile={archive}")
    logs.sort(key=lambda entry: entry["name"])
    manifest = {
        "spark_version": importlib.metadata.version("pyspark"),
        "generation_seconds": round(time.monotonic() - started, 1),
        "logs": logs,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return logs


def _run_parallel(specs: list[Any], run_app: Callable[..., dict[str, Any]], log_dir: Path, work: Path,
                  driver_opts: str) -> list[dict[str, Any]]:
    """On the first failure cancel the apps not started yet and raise."""
    with ThreadPoolExecutor(PARALLEL_APPS) as pool:
        futures = [pool.submit(run_app, spec, log_dir, work, driver_opts) for spec in specs]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            if (error := future.exception()) is not None:
                for other in futures:
                    other.cancel()
                raise error
        return [future.result() for future in futures]


def launch_app(script: str, spec: Any, log_dir: Path, work: Path, driver_opts: str) -> dict[str, Any]:
    """Run ``script --app <spec> log_dir work`` in a subprocess (own session, so the whole
    tree is reaped: driver JVM, Python workers, local-cluster's executors); return the
    ``result.json`` the app wrote."""
    app_work = work / spec.name
    app_work.mkdir()
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
        # JVM flags go through the environment, so they stay out of the logged Spark
        # properties. C1 only: these JVMs live ~20 s, so startup beats peak speed (~25%).
        "JDK_JAVA_OPTIONS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        "SPARK_SUBMIT_OPTS": driver_opts,  # the driver JVM only, not spark-class's launcher
    }
    cmd = [sys.executable, script, "--app", json.dumps(asdict(spec)), str(log_dir), str(app_work)]
    output = app_work / "output.log"
    started = time.monotonic()
    with output.open("wb") as sink:
        proc = subprocess.Popen(
            cmd, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=app_work, start_new_session=True
        )
        try:
            rc = proc.wait(timeout=APP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            rc = None
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    result = app_work / "result.json"
    if rc != 0 or not result.exists():
        tail = output.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"corpus app {spec.name} failed (rc={rc}):\n{tail}")
    return {**json.loads(result.read_text()), "seconds": round(time.monotonic() - started, 1)}


def _run_app(spec: AppSpec, log_dir: Path, work: Path, driver_opts: str) -> dict[str, Any]:
    return _describe(spec, log_dir, launch_app(__file__, spec, log_dir, work, driver_opts)["app_id"])


def _describe(spec: AppSpec, log_dir: Path, app_id: str) -> dict[str, Any]:
    """The manifest entry for one app, after checking Spark left what we expect."""
    (path,) = [p for p in log_dir.iterdir() if app_id in p.name and not p.name.startswith(".")]
    if path.is_dir():
        files = sorted(f.name for f in path.iterdir() if not f.name.startswith("."))
        in_progress = any(f.startswith("appstatus_") and f.endswith(".inprogress") for f in files)
        size = sum((path / f).stat().st_size for f in files)
    else:
        files, in_progress, size = [path.name], path.name.endswith(".inprogress"), path.stat().st_size
    if spec.rolling != path.is_dir() or spec.killed != in_progress or size == 0:
        raise RuntimeError(f"{spec.name}: unexpected log {path.name} ({files}, {size} bytes)")
    events_files = [f for f in files if f.startswith("events_")]
    if spec.multi_file and len(events_files) < 3:
        raise RuntimeError(f"{spec.name}: expected 3+ events files, got {events_files}")
    return {
        "path": path.name,
        "app_id": app_id,
        "name": spec.name,
        "codec": spec.codec,
        "layout": spec.layout,
        "state": "in-progress" if in_progress else "finished",
        "files": files,
        "bytes": size,
    }


# --------------------------------------------------------------------------- child side


def event_log_conf(spec: Any, master: str, shuffle_partitions: int, log_dir: Path, work: Path) -> dict[str, str]:
    """What every corpus app sets: a small driver, no UI, its event log in ``log_dir`` with
    the spec's layout (``rolling``) and codec (``codec``, ``"none"`` for plain JSON)."""
    conf = {
        "spark.master": master,
        "spark.app.name": spec.name,
        "spark.ui.enabled": "false",
        "spark.driver.memory": "512m",
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.local.dir": str(work / "local"),
        "spark.sql.warehouse.dir": str(work / "warehouse"),
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": f"file:{log_dir}",
        "spark.eventLog.rolling.enabled": str(spec.rolling).lower(),
        "spark.eventLog.compress": str(spec.codec != "none").lower(),
    }
    if spec.codec != "none":
        conf["spark.eventLog.compression.codec"] = spec.codec
    return conf


def _spark_conf(spec: AppSpec, log_dir: Path, work: Path) -> dict[str, str]:
    conf = event_log_conf(spec, "local[2]", 4, log_dir, work)
    if spec.multi_file:
        conf["spark.eventLog.rolling.maxFileSize"] = "10m"  # the minimum in Spark 4.0
    return conf


def _app_main(spec: AppSpec, log_dir: Path, work: Path) -> None:
    """Subprocess body: run the workload, then stop cleanly or kill the driver JVM."""
    spark, app_id = start_spark(_spark_conf(spec, log_dir, work), work)
    _workload(spark, with_sql=not spec.killed)
    if spec.multi_file:
        _pad_events(spark)
    if spec.killed:
        _kill_driver_mid_job(spark, log_dir, app_id)
    stop_spark(spark)


def start_spark(conf: dict[str, str], work: Path) -> tuple[Any, str]:
    """A SparkSession with ``conf``; its app id is written to ``work/result.json`` at once,
    so the parent knows the app even if the driver is killed later."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    app_id = spark.sparkContext.applicationId
    (work / "result.json").write_text(json.dumps({"app_id": app_id}))
    return spark, app_id


def stop_spark(spark: Any) -> None:
    spark.stop()  # writes ApplicationEnd and drops the .inprogress suffix
    driver = spark.sparkContext._gateway.proc
    driver.stdin.close()  # the py4j gateway JVM exits on stdin EOF ...
    driver.wait(timeout=120)  # ... and is reaped here (after any CDS dump), not left a zombie


def _workload(spark: Any, *, with_sql: bool) -> None:
    """Jobs covering shuffles, skipped stages, caching, SQL, a job group and a failure.

    The SQL query costs ~4 s of Catalyst warm-up per JVM; killed apps skip it.
    """
    sc = spark.sparkContext
    sc.setJobDescription("grouped count over a range")
    pairs = sc.parallelize(range(200_000), 4).map(lambda x: (x % 100, 1)).reduceByKey(operator.add)
    pairs.count()
    pairs.count()  # reuses the shuffle output: a skipped stage
    sc.setJobGroup("cache", "cached count")
    cached = sc.parallelize(range(100_000), 4).map(lambda x: x * 2).cache()
    cached.count()
    cached.count()  # served from the cached blocks
    sc.setLocalProperty("spark.jobGroup.id", None)
    sc.setLocalProperty("spark.job.description", None)
    if with_sql:
        spark.sql("SELECT id % 7 AS k, count(*) AS n, sum(id) AS s FROM range(100000) GROUP BY k").collect()
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    try:
        sc.parallelize(range(10), 2).map(lambda x: 1 // (x - 7)).count()  # ZeroDivisionError
    except (Py4JJavaError, PySparkException):  # local mode does not retry, so task, stage and job fail
        pass
    else:
        raise AssertionError("the job meant to fail succeeded")


def _pad_events(spark: Any) -> None:
    """Write ~24 MiB of events so a 10 MiB rolling log spans 3+ files, in seconds.

    Every JobStart and StageSubmitted event carries the job's local properties, so a
    1 MB property adds 2 MB per tiny job. The property name is ours and never shows
    up in REST answers.
    """
    sc = spark.sparkContext
    sc.setLocalProperty("sparkhist.corpus.padding", "p" * 1_000_000)
    for _ in range(12):
        sc.parallelize([0], 1).count()
    sc.setLocalProperty("sparkhist.corpus.padding", None)


def _kill_driver_mid_job(spark: Any, log_dir: Path, app_id: str) -> None:
    """Leave a job running, let the event log settle, then SIGKILL the driver JVM.

    The writer flushes on JobStart/JobEnd but not on StageSubmitted or TaskStart, so
    a quick probe job runs beside the hanging one (local[2] has a free core): its
    flushes put the hanging stage and task on disk. lz4 is the exception, it only
    ever writes whole 32 KiB blocks. Killing the JVM skips ``stop()``, so the
    ``.inprogress`` name (or the rolling ``appstatus_*.inprogress`` marker) stays.
    """
    sc = spark.sparkContext

    def hang() -> None:
        sc.setJobDescription("hangs until the driver is killed")
        with contextlib.suppress(Exception):  # the gateway dies with the JVM
            sc.parallelize([0], 1).foreach(lambda _: time.sleep(3600))

    threading.Thread(target=hang, daemon=True).start()
    _wait_until(lambda: bool(sc.statusTracker().getActiveStageIds()), "the hanging stage to start")
    sc.setJobDescription("runs beside the hanging job")
    sc.parallelize(range(4), 1).count()
    sizes: list[int] = []

    def settled() -> bool:
        sizes.append(_log_bytes(log_dir, app_id))
        return len(sizes) > 6 and sizes[-1] > 0 and len(set(sizes[-6:])) == 1

    _wait_until(settled, "the event log to settle")
    driver = sc._gateway.proc  # the Popen of spark-submit, which exec'd the driver JVM
    driver.kill()  # SIGKILL
    driver.wait()  # reap it: in some containers nobody else does
    os._exit(0)  # skip interpreter teardown; py4j would only complain about the dead gateway


def _log_bytes(log_dir: Path, app_id: str) -> int:
    """Bytes written so far for ``app_id``: the single file, or the rolling directory's files."""
    total = 0
    for path in log_dir.iterdir():
        if app_id in path.name:
            files = list(path.iterdir()) if path.is_dir() else [path]
            total += sum(f.stat().st_size for f in files)
    return total


def _wait_until(check: Callable[[], bool], what: str, timeout: float = 120.0, step: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(step)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--app":
        _app_main(AppSpec(**json.loads(sys.argv[2])), Path(sys.argv[3]), Path(sys.argv[4]))
    else:
        print(ensure_corpus())
