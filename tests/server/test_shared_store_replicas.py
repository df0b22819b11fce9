"""Replicas of a shared store: ``sparkhist serve --store file://... --cache DIR``, as processes.

One module store: the Spark corpus indexed, its snapshots and catalog segments published to a
``file://`` location the way ``index-on-spark --store URL`` publishes them (snapshots under
``snapshots/``, then a segment and a manifest: :func:`sparkhist.store.segments.publish`). Two
replicas serve it, each from its own cache. They answer every request of the differential
suite as the real SHS 4.3.0 does and byte for byte as each other; a new run is listed by both
within the follow interval; with the store unreachable they serve what they cached and say so;
one killed (``kill -9``) under load leaves the other answering, and restarts from its cache.
"""

from __future__ import annotations

import calendar
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from sparkhist.store.records import LogRecord
from sparkhist.store.remote import RemoteStore
from sparkhist.store.segments import publish
from sparkhist.store.snapshots import SNAPSHOT_DIR
from support.differential import Comparison, as_configured, corpus_paths, normalize
from support.server import copy_logs
from support.serving import free_port, serve_process, wait_ready
from support.spark_setup import real_shs_listing

pytestmark = [pytest.mark.spark, pytest.mark.slow]

#: How often the replicas look at the store's newest manifest in these tests.
SYNC_EVERY = 0.5
MASTER = "local-cluster[2,1,1024]"
SPARKHIST = Path(sys.executable).with_name("sparkhist")
#: A log of the corpus copied under new app ids for the job's second run: single file, finished, uncompressed.
NEW_TEMPLATE = "local-1796629858155"

# path pattern -> why a replica differs from the real SHS there
ALLOWED = {r".*/logs": "a replica reads no event log: the download holds none (served by a server of the log directory)"}


def _template(path: str) -> str:
    return re.sub(r"local-\d+", "{app}", re.sub(r"/stages/\d+", "/stages/{s}", path))


@dataclass
class Shared:
    """The store's location, the log directory the job indexes, the real SHS over the same directory,
    and the apps of the job's second run (made on first need: :func:`second_run`)."""

    url: str
    path: Path
    logs: Path
    cache: Path  # the driver's copy of the catalog
    shs: Any
    apps: int
    new_apps: list[str] = field(default_factory=list)
    second_run_ended: float = 0.0


def index_on_spark(shared: Shared) -> str:
    """One run of ``sparkhist index-on-spark`` on a ``local-cluster`` writing the store; its stdout."""
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_HOME", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")}
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    args = [str(SPARKHIST), "index-on-spark", "--log-dir", as_configured(shared.logs), "--store", shared.url,
            "--cache", str(shared.cache), "--master", MASTER, "--conf", "spark.executor.memory=512m"]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


@pytest.fixture(scope="module")
def shared(spark_corpus: Path, corpus_manifest: list[dict[str, Any]],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    tmp = tmp_path_factory.mktemp("shared-store")
    logs = copy_logs(spark_corpus, tmp / "logs")
    path = tmp / "store"
    path.mkdir()
    apps = len({e["app_id"] for e in corpus_manifest})
    # The real SHS over the very directory the job indexes: the attempts' logSourceName/FullPath compared too.
    with real_shs_listing(logs, apps) as shs:
        made = Shared(f"file://{path}", path, logs, tmp / "driver-cache", shs, apps)
        index_on_spark(made)
        yield made


def second_run(shared: Shared) -> list[str]:
    """Two new logs (copies of a finished one under new app ids) and the job run again: it builds
    only them and publishes a new manifest. Returns their app ids (made once per module)."""
    if not shared.new_apps:
        template = shared.logs / NEW_TEMPLATE
        for i in (1, 2):
            new_id = f"{NEW_TEMPLATE[:-1]}{i}0"
            (shared.logs / new_id).write_bytes(template.read_bytes().replace(NEW_TEMPLATE.encode(), new_id.encode()))
            shared.new_apps.append(new_id)
        out = index_on_spark(shared)
        shared.second_run_ended = time.monotonic()
        assert "2 new" in out, out
    return shared.new_apps


@dataclass
class Replica:
    url: str
    cache: Path
    proc: subprocess.Popen[bytes]
    log: Path


def _environ(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARKHIST_")}
    env.update(SPARKHIST_STORE_SYNC_INTERVAL=f"{SYNC_EVERY}s", SPARKHIST_SOURCE_RETRIES="0",
               SPARKHIST_SOURCE_TIMEOUT="1s", **extra)
    return env


@contextlib.contextmanager
def replica(store_url: str, cache: Path, *, port: int | None = None, ready: bool = True) -> Iterator[Replica]:
    port = port or free_port()
    log = cache.parent / f"{cache.name}-{port}.log"
    with serve_process(port, ["--store", store_url, "--cache", str(cache)], _environ(), log, grace=20) as proc:
        r = Replica(f"http://127.0.0.1:{port}", cache, proc, log)
        if ready:
            wait_ready(r.url + "/ready", proc, log)
        yield r


@pytest.fixture(scope="module")
def replicas(shared: Shared, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Replica, Replica]]:
    tmp = tmp_path_factory.mktemp("replicas")
    with replica(shared.url, tmp / "cache-a") as a, replica(shared.url, tmp / "cache-b") as b:
        yield a, b


def _listed(url: str) -> set[str]:
    return {app["id"] for app in httpx.get(url + "/api/v1/applications", timeout=10).json()}


class _Kept:
    """A client whose answers are kept by path: asked once, read twice."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.answers: dict[str, httpx.Response] = {}

    def get(self, path: str) -> httpx.Response:
        if path not in self.answers:
            self.answers[path] = self.client.get(path)
        return self.answers[path]


def test_two_replicas_answer_as_the_real_shs_and_as_each_other(shared: Shared, replicas: tuple[Replica, Replica],
                                                               corpus_manifest: list[dict[str, Any]]) -> None:
    """The store written by index-on-spark on a local-cluster; every request of the differential suite."""
    a, b = replicas
    paths = corpus_paths(shared.shs, corpus_manifest)
    with httpx.Client(base_url=a.url, timeout=60) as http_a, httpx.Client(base_url=b.url, timeout=60) as client_b:
        client_a = _Kept(http_a)  # each of a's answers asked once, compared with the SHS's and with b's
        comparison = Comparison(_template, ALLOWED).run(paths, client_a, shared.shs)
        comparison.report()
        assert comparison.mismatches == {}
        assert sum(comparison.results.values()) == len(paths)
        differ = []
        for path, running in paths:
            mine, theirs = client_a.get("/api/v1" + path), client_b.get("/api/v1" + path)
            kind = theirs.headers.get("content-type", "")
            same = (mine.status_code, mine.headers.get("content-type", "")) == (theirs.status_code, kind)
            if same and running and kind.startswith("application/json"):
                same = normalize(mine.json(), True) == normalize(theirs.json(), True)  # durations measured now
            elif same and not path.endswith("/logs"):
                same = mine.content == theirs.content
            if not same:
                differ.append(path)
    assert differ == []
    # Each replica fetched every snapshot it read into its own cache.
    published = {p.name for p in (shared.path / SNAPSHOT_DIR).glob("*.snap")}
    for r in (a, b):
        assert {p.name for p in (r.cache / SNAPSHOT_DIR).glob("*.snap")} == published


def test_a_new_run_is_listed_by_both_replicas_within_the_follow_interval(shared: Shared,
                                                                          replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    new_id, _ = second_run(shared)  # the manifest is written as the job ends
    t0 = shared.second_run_ended
    waited: dict[str, float] = {}
    while len(waited) < 2 and time.monotonic() - t0 < 10 * SYNC_EVERY + 5:
        for r in (a, b):
            if r.url not in waited and set(shared.new_apps) <= _listed(r.url):
                waited[r.url] = time.monotonic() - t0
        time.sleep(0.05)
    print(f"\nthe second run's apps listed {sorted(round(s, 2) for s in waited.values())} s after the job ended "
          f"(sync every {SYNC_EVERY}s)")
    assert len(waited) == 2
    assert max(waited.values()) < SYNC_EVERY + 2.0
    for r in (a, b):
        assert httpx.get(f"{r.url}/api/v1/applications/{new_id}/jobs", timeout=30).status_code == 200


def _metric(url: str, name: str) -> list[str]:
    text = httpx.get(url + "/metrics", timeout=10).text
    return [line for line in text.splitlines() if line.startswith(name)]


def test_the_store_unreachable_replicas_serve_from_their_caches(shared: Shared, replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    _, uncached = second_run(shared)  # an app published but never asked for: its snapshot is in no cache
    deadline = time.monotonic() + 10
    while not all(uncached in _listed(r.url) for r in (a, b)) and time.monotonic() < deadline:
        time.sleep(0.05)
    cached = sorted(_listed(a.url) - {uncached})
    for app in cached:  # every other snapshot in both caches
        for r in (a, b):
            assert httpx.get(f"{r.url}/api/v1/applications/{app}/jobs", timeout=30).status_code == 200
    away = shared.path.with_name("store-away")
    shared.path.rename(away)  # the store gone: every call to it fails
    try:
        t_down = time.time()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not all(
                httpx.get(r.url + "/health/details", timeout=10).json()["offline"] for r in (a, b)):
            time.sleep(0.1)
        for r in (a, b):
            health = httpx.get(r.url + "/health/details", timeout=10).json()
            assert health["offline"] is True and health["status"] == "degraded"
            (store,) = health["sources"]
            assert store["logDirectory"] == shared.url and store["state"] == "offline"
            since = calendar.timegm(time.strptime(store["since"][:19], "%Y-%m-%dT%H:%M:%S"))
            assert t_down - 2 <= since <= time.time() + 1
            assert any(shared.url in reason for reason in health["reasons"])
            assert _metric(r.url, "sparkhist_offline ") == ["sparkhist_offline 1.0"]
            assert f'sparkhist_source_up{{log_dir="{shared.url}"}} 0.0' in _metric(r.url, "sparkhist_source_up")
            # Every cached answer is still served; the list is unchanged (it still lists the uncached app).
            for app in cached:
                assert httpx.get(f"{r.url}/api/v1/applications/{app}/stages", timeout=30).status_code == 200
            assert httpx.get(f"{r.url}/api/v1/applications", timeout=10).content != b""
            assert uncached in _listed(r.url)
            miss = httpx.get(f"{r.url}/api/v1/applications/{uncached}/jobs", timeout=30)
            assert miss.status_code == 503
            assert "cannot be reached" in miss.text and "cache" in miss.text
    finally:
        away.rename(shared.path)
    # Back: the next sync works, the uncached snapshot is fetched, the state is ok again.
    deadline = time.monotonic() + 10 * SYNC_EVERY + 5
    while time.monotonic() < deadline and any(
            httpx.get(r.url + "/health/details", timeout=10).json()["offline"] for r in (a, b)):
        time.sleep(0.1)
    for r in (a, b):
        assert httpx.get(r.url + "/health/details", timeout=10).json()["offline"] is False
        assert httpx.get(f"{r.url}/api/v1/applications/{uncached}/jobs", timeout=30).status_code == 200
    assert _listed(a.url) == _listed(b.url) == set(cached) | {uncached}


def test_a_replica_killed_under_load_the_other_keeps_answering(shared: Shared, replicas: tuple[Replica, Replica],
                                                                tmp_path: Path) -> None:
    _, b = replicas
    apps = sorted(_listed(b.url))
    cache = tmp_path / "cache-c"
    with replica(shared.url, cache) as c:
        for app in apps:  # warm c's cache
            assert httpx.get(f"{c.url}/api/v1/applications/{app}/stages", timeout=30).status_code == 200
        statuses: dict[str, list[int]] = {c.url: [], b.url: []}
        stop = threading.Event()

        def load(url: str) -> None:
            with httpx.Client(base_url=url, timeout=10) as client:
                i = 0
                while not stop.is_set():
                    try:
                        statuses[url].append(client.get(f"/api/v1/applications/{apps[i % len(apps)]}/jobs").status_code)
                    except httpx.TransportError:
                        statuses[url].append(-1)
                    i += 1

        threads = [threading.Thread(target=load, args=(u,)) for u in (c.url, b.url) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        os.kill(c.proc.pid, signal.SIGKILL)
        c.proc.wait(10)
        killed_at = len(statuses[b.url])
        time.sleep(2.0)
        stop.set()
        for t in threads:
            t.join(15)
        after = statuses[b.url][killed_at:]
        assert after and set(statuses[b.url]) == {200}, "the other replica answered every request"
        assert -1 in statuses[c.url]
    # The killed replica restarts from its cache, the store unreachable, and answers at once.
    away = shared.path.with_name("store-away")
    shared.path.rename(away)
    try:
        port = free_port()
        log = tmp_path / "restart.log"
        t0 = time.monotonic()
        with serve_process(port, ["--store", shared.url, "--cache", str(cache)], _environ(), log, grace=20) as proc:
            url = f"http://127.0.0.1:{port}"
            while True:
                with contextlib.suppress(httpx.TransportError):
                    listed = httpx.get(url + "/api/v1/applications", timeout=10)
                    if listed.status_code == 200:
                        break
                assert proc.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() - t0 < 30, log.read_text()[-3000:]
                time.sleep(0.01)
            seconds = time.monotonic() - t0
            print(f"\nrestart from the cache, store unreachable: first list in {seconds:.3f}s")
            assert {a["id"] for a in listed.json()} == set(apps)
            for app in apps:
                assert httpx.get(f"{url}/api/v1/applications/{app}/jobs", timeout=30).status_code == 200
    finally:
        away.rename(shared.path)


def test_a_cache_dir_belongs_to_one_replica(shared: Shared, replicas: tuple[Replica, Replica], tmp_path: Path) -> None:
    a, _ = replicas
    log = tmp_path / "second.log"
    with serve_process(free_port(), ["--store", shared.url, "--cache", str(a.cache)], _environ(), log) as proc:
        assert proc.wait(30) == 2
    assert "used by another replica" in log.read_text()


def test_flags_of_a_replica(tmp_path: Path) -> None:
    def run(*args: str) -> tuple[int, str]:
        done = subprocess.run([sys.executable, "-m", "sparkhist.cli", "serve", *args],
                              env=_environ(), capture_output=True, text=True, timeout=60)
        return done.returncode, done.stderr

    code, err = run("--store", "file:///nowhere")
    assert code == 2 and "--cache DIR" in err
    code, err = run("--store", str(tmp_path / "s"), "--cache", str(tmp_path / "c"))
    assert code == 2 and "give --store a URL" in err
    code, err = run("--store", "file:///nowhere", "--cache", str(tmp_path / "c"), "--log-dir", str(tmp_path))
    assert code == 2 and "reads no log directory" in err


#: Applications in the store a restart is measured on.
MANY = 10_000


def test_a_restart_from_the_cache_at_10000_applications_answers_at_once(shared: Shared, tmp_path: Path) -> None:
    """A replica of a store of 10,000 applications (the corpus's records under new paths and app ids),
    restarted with the store unreachable: it answers the whole list from its cache at once."""
    with RemoteStore.open(shared.url) as remote:
        from sparkhist.store.segments import live_records, newest_manifest

        found = newest_manifest(remote)
        assert found is not None
        records = [r for r in live_records(remote, found[2]).values() if r.app_id is not None]
        log_source = found[2].log_source
    clones = []
    for i in range(MANY):
        data = records[i % len(records)].to_dict()
        data["path"] = f"{data['path']}-clone-{i:05d}"
        data["listing"] = {**data["listing"], "app_id": f"app-clone-{i:05d}"}
        clones.append(LogRecord.from_dict(data))
    path = tmp_path / "store-many"
    path.mkdir()
    url = f"file://{path}"
    with RemoteStore.open(url) as remote:
        publish(remote, clones, [], log_dir="file:/logs", log_source=log_source)
    cache = tmp_path / "cache"
    with replica(url, cache) as first:
        assert len(httpx.get(first.url + "/api/v1/applications", timeout=60).json()) == MANY
    path.rename(tmp_path / "store-away")  # unreachable from now on
    walls, cpus, opens = [], [], []
    for run in range(3):
        port = free_port()
        log = tmp_path / f"restart-{run}.log"
        t0 = time.monotonic()
        with serve_process(port, ["--store", url, "--cache", str(cache)], _environ(), log, grace=20) as proc:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    listed = httpx.get(f"http://127.0.0.1:{port}/api/v1/applications", timeout=30)
                    if listed.status_code == 200:
                        break
                assert proc.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() - t0 < 60, log.read_text()[-3000:]
                time.sleep(0.002)
            walls.append(time.monotonic() - t0)
            cpus.append(_cpu_seconds(proc.pid))
            assert len(listed.json()) == MANY
        opened = re.search(r"(\d+) applications listed in ([\d.]+)s", log.read_text())
        assert opened is not None and int(opened.group(1)) == MANY
        opens.append(float(opened.group(2)))
    print(f"\nrestart of a replica from its cache, {MANY} apps, store unreachable (load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores): spawn to the full list {_seconds(walls)} s wall, "
          f"{_seconds(cpus)} s of the process's CPU; the cache opened and listed in {_seconds(opens)} s")
    # The CPU the process spent from its start (the interpreter's included) to the whole list: what
    # its wall time is on a machine not shared with a test suite.
    assert min(cpus) < 1.0
    assert min(opens) < 1.0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _seconds(values: list[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


def test_the_disk_budget_evicts_cached_snapshots_which_are_fetched_again(shared: Shared, tmp_path: Path) -> None:
    sizes = sorted(p.stat().st_size for p in (shared.path / SNAPSHOT_DIR).glob("*.snap"))
    budget = sizes[-1] + sizes[-2]  # room for the two largest snapshots, not for all of them
    cache = tmp_path / "cache"
    port = free_port()
    log = tmp_path / "budget.log"
    with serve_process(port, ["--store", shared.url, "--cache", str(cache)], _environ(SPARKHIST_STORE_MAX_DISK=str(budget)),
                       log, grace=20) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url + "/ready", proc, log)
        apps = sorted(_listed(url))
        first = {app: httpx.get(f"{url}/api/v1/applications/{app}/stages", timeout=30).content for app in apps}
        cached = sum(p.stat().st_size for p in (cache / SNAPSHOT_DIR).glob("*.snap"))
        health = httpx.get(url + "/health/details", timeout=10).json()["store"]
        assert cached <= budget and health["diskEvictions"]["budget"] > 0
        for app in apps:  # evicted ones fetched again: the same answers
            again = httpx.get(f"{url}/api/v1/applications/{app}/stages?details=true", timeout=30)
            assert again.status_code == 200
            assert httpx.get(f"{url}/api/v1/applications/{app}/stages", timeout=30).content == first[app]
        assert sum(p.stat().st_size for p in (cache / SNAPSHOT_DIR).glob("*.snap")) <= budget


def test_an_s3_store_stopped_the_replica_serves_from_its_cache(shared: Shared, tmp_path: Path) -> None:
    """The job's store copied byte for byte into a bucket of a real S3 server (SeaweedFS); the
    server stopped: the replica serves what it cached and says it is offline; started: back."""
    from objectstore.servers import SeaweedFS, ServerUnavailable

    try:
        server = SeaweedFS(tmp_path / "seaweedfs")
        server.start(timeout=float(os.environ.get("SPARKHIST_S3_START_TIMEOUT", "180")))
    except ServerUnavailable as why:
        pytest.skip(str(why))
    try:
        bucket: Any = server.bucket("replicas")
        for file in sorted(p for p in shared.path.rglob("*") if p.is_file()):
            bucket.put(f"store/{file.relative_to(shared.path).as_posix()}", file.read_bytes())
        url = "s3a://replicas/store"
        env = _environ(SPARKHIST_HADOOP_CONF=";".join(f"{k}={v}" for k, v in server.hadoop_conf().items()))
        port = free_port()
        log = tmp_path / "s3-replica.log"
        with serve_process(port, ["--store", url, "--cache", str(tmp_path / "cache")], env, log, grace=20) as proc:
            replica_url = f"http://127.0.0.1:{port}"
            wait_ready(replica_url + "/ready", proc, log)
            apps = sorted(_listed(replica_url))
            assert len(apps) >= shared.apps
            uncached, cached = apps[0], apps[1:]
            answers = {app: httpx.get(f"{replica_url}/api/v1/applications/{app}/jobs", timeout=30) for app in cached}
            assert {a.status_code for a in answers.values()} == {200}
            server.stop()
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not httpx.get(replica_url + "/health/details", timeout=10).json()["offline"]:
                time.sleep(0.1)
            health = httpx.get(replica_url + "/health/details", timeout=10).json()
            assert health["offline"] is True and health["sources"][0]["logDirectory"] == url
            assert _metric(replica_url, "sparkhist_offline ") == ["sparkhist_offline 1.0"]
            for app in cached:
                assert httpx.get(f"{replica_url}/api/v1/applications/{app}/jobs", timeout=30).content == answers[app].content
            miss = httpx.get(f"{replica_url}/api/v1/applications/{uncached}/jobs", timeout=30)
            assert miss.status_code == 503 and "cannot be reached" in miss.text
            server.start(timeout=180)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and httpx.get(replica_url + "/health/details", timeout=10).json()["offline"]:
                time.sleep(0.2)
            assert httpx.get(replica_url + "/health/details", timeout=10).json()["offline"] is False
            assert httpx.get(f"{replica_url}/api/v1/applications/{uncached}/jobs", timeout=30).status_code == 200
    finally:
        server.stop()
