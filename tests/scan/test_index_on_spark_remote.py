"""``sparkhist index-on-spark --store URL`` on a real Spark cluster of one machine
(``local-cluster``), into a store location on local disk (``file://``), on a real HA HDFS and
on a real S3 server (SeaweedFS).

Each backend's test runs the command three times on one log directory (the conformance logs
and the bundled samples): first without one log (and, on ``file://``, with another cut short
and an executor JVM killed by SIGKILL while tasks run), then with every log whole, then again
with nothing to do. The store location's objects are read back after each run: the second
run adds exactly the new (and grown) logs' snapshots, one small segment and one manifest;
the third writes nothing. A cache synced from the store (:func:`segments.sync_cache`, then
every snapshot fetched) is an ordinary store directory, served with the same bytes as
single-node ``sparkhist scan``'s store of the same logs: on ``file://`` every request of the
differential suite, on HDFS and S3 the application list and every application's and
attempt's own requests.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import xxhash

from scan.test_index_on_spark import answers_differ, run_sparkhist
from sparkhist.source.factory import SourceOptions
from sparkhist.store import segments
from sparkhist.store.catalog import Catalog
from sparkhist.store.remote import RemoteStore
from sparkhist.store.snapshots import snapshot_name
from support.ui_corpus import gather_logs

pytestmark = [pytest.mark.spark, pytest.mark.slow]

#: Held back from the first run (new in the second): single file, finished, uncompressed.
NEW = "local-1795972896863"
#: Cut to half its lines in the first run on file:// (grown in the second): single file, in progress.
GROWN = "local-1795972971772.inprogress"


@dataclass
class Backend:
    url: str
    flags: list[str]  # source flags of the command (Hadoop configuration)
    options: SourceOptions


def _objects(remote: RemoteStore) -> dict[str, str]:
    """Every object of the store location, by name: its xxh64."""
    return {name: xxhash.xxh64_hexdigest(remote.get(name)) for prefix in ("snapshots", "catalog")
            for name in remote.list(prefix)}


def _single_node(logs: Path, store: Path) -> None:
    run_sparkhist("scan", logs, store)


def _synced_store(remote: RemoteStore, cache: Path) -> segments.SyncResult:
    """The store location copied into ``cache``: catalog synced, every snapshot fetched."""
    result = segments.sync_cache(remote, str(cache))
    catalog = Catalog(str(cache), None, read_only=True)
    try:
        records = catalog.load().records
    finally:
        catalog.close()
    for path, record in records.items():
        if record.snapshot_size >= 0:
            segments.fetch_snapshot(remote, str(cache), snapshot_name(path))
    return result


def _same_snapshot_files(single: Path, synced: Path) -> None:
    """The synced cache holds the very snapshot files single-node indexing wrote: same names, same
    bytes (a snapshot is a function of its log, whichever process builds it)."""
    ours = {p.name: p.read_bytes() for p in (synced / "snapshots").iterdir()}
    theirs = {p.name: p.read_bytes() for p in (single / "snapshots").iterdir()}
    assert ours.keys() == theirs.keys() and len(ours) > 25
    assert [name for name in ours if ours[name] != theirs[name]] == []


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    return gather_logs(tmp_path / "logs")


def _scenario(logs: Path, backend: Backend, tmp_path: Path, *, cut_and_kill: bool) -> None:
    """Three runs and every check on the store location; see the module's docstring."""
    held, whole = tmp_path / NEW, (logs / GROWN).read_bytes()
    shutil.move(logs / NEW, held)
    if cut_and_kill:
        lines = whole.splitlines(keepends=True)
        (logs / GROWN).write_bytes(b"".join(lines[: len(lines) // 2]))
    cache = tmp_path / "driver-cache"
    with RemoteStore.open(backend.url, backend.options) as remote:
        first = run_sparkhist("index-on-spark", logs, backend.url, backend.flags, cache=cache, kill=cut_and_kill)
        listed = len(list(logs.iterdir()))
        assert f"{listed} logs listed: {listed} new" in first.stdout, first.stdout
        assert "published catalog/MANIFEST-0000000001" in first.stdout
        if cut_and_kill:
            assert first.killed, "no executor was seen running a task"
            assert re.search(r"Lost task|ExecutorLostFailure|Lost executor", first.stderr), first.stderr[-4000:]
        after_first = _objects(remote)
        assert len([n for n in after_first if n.startswith("snapshots/")]) == listed

        shutil.move(held, logs / NEW)
        if cut_and_kill:  # grown to its whole (elsewhere untouched: its mtime is in its snapshot)
            (logs / GROWN).write_bytes(whole)
        second = run_sparkhist("index-on-spark", logs, backend.url, backend.flags, cache=cache)
        after_second = _objects(remote)
        grown = [GROWN] if cut_and_kill else []
        assert f"{len(grown)} grown" in second.stdout and "1 new" in second.stdout, second.stdout
        # A lone lagging log is built by the driver itself, then uploaded by it.
        assert ("2 logs built by 1 Spark jobs" if cut_and_kill else "no Spark job run") in second.stdout
        changed = {n for n, h in after_second.items() if after_first.get(n) != h}
        rebuilt = {f"snapshots/{snapshot_name(str(logs / name))}" for name in [NEW, *grown]}
        new_segment = {n for n in changed if n.startswith("catalog/segment-")}
        assert changed == rebuilt | new_segment | {"catalog/MANIFEST-0000000002"}, changed
        assert set(after_first) <= set(after_second)
        (segment,) = new_segment
        blob = remote.get(segment)
        records, deleted = segments.decode_segment(blob, segment)
        assert sorted(r.path for r in records) == sorted(str(logs / name) for name in [NEW, *grown]) and deleted == []
        assert len(blob) < 1500 * len(records), len(blob)  # the run's records only, compressed

        third = run_sparkhist("index-on-spark", logs, backend.url, backend.flags)  # a fresh driver cache: synced from the store
        assert f"{listed + 1} unchanged" in third.stdout and "no Spark job run" in third.stdout, third.stdout
        assert "nothing to publish (catalog/MANIFEST-0000000002)" in third.stdout
        assert _objects(remote) == after_second  # same bytes, no new segment
        assert segments.verify_store(remote) == []
        assert [n for n in remote.source.list(remote.source.join(remote.source.root_path, "snapshots"))
                if n.name.startswith(".")] == []  # no temporary file left by the killed executor

        synced = _synced_store(remote, tmp_path / "replica-cache")
    assert (synced.manifest, synced.records) == ("catalog/MANIFEST-0000000002", listed + 1)
    single = tmp_path / "single-store"
    _single_node(logs, single)
    print(f"\n{backend.url}: runs of {first.seconds:.1f}s, {second.seconds:.1f}s and {third.seconds:.1f}s")
    _same_snapshot_files(single, tmp_path / "replica-cache")
    assert answers_differ(logs, tmp_path / "replica-cache", single, every_request=cut_and_kill) == []


def test_file_store_rerun_grown_log_killed_executor_same_answers(logs: Path, tmp_path: Path) -> None:
    url = f"file://{tmp_path}/shared"
    _scenario(logs, Backend(url, [], SourceOptions()), tmp_path, cut_and_kill=True)
    assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == ["catalog", "snapshots"]


@pytest.fixture(scope="module")
def hdfs_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real HA HDFS (two NameNodes, two DataNodes) for this module: its configuration directory."""
    from hdfs.cluster import ClusterError, HaCluster, HarnessUnavailable

    cluster = HaCluster(tmp_path_factory.mktemp("hdfs"), datanodes=2)
    try:
        ready = cluster.start(timeout=240)
    except HarnessUnavailable as why:
        pytest.skip(str(why))
    except ClusterError as exc:
        pytest.fail(f"the HDFS harness failed: {exc}")
    try:
        yield ready.conf_dir
    finally:
        cluster.stop()


def _nameservice(conf_dir: str) -> str:
    text = (Path(conf_dir) / "hdfs-site.xml").read_text()
    found = re.search(r"<name>dfs.nameservices</name>\s*<value>([^<]+)</value>", text)
    assert found, text
    return found.group(1)


def test_hdfs_store(logs: Path, tmp_path: Path, hdfs_cluster: str) -> None:
    url = f"hdfs://{_nameservice(hdfs_cluster)}/sparkhist/{tmp_path.name}"
    backend = Backend(url, ["--hadoop-conf-dir", hdfs_cluster], SourceOptions(hadoop_conf_dir=hdfs_cluster))
    _scenario(logs, backend, tmp_path, cut_and_kill=False)


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from objectstore.servers import SeaweedFS, ServerUnavailable

    try:
        server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
        server.start(timeout=180)
    except ServerUnavailable as why:
        pytest.skip(str(why))
    try:
        yield server
    finally:
        server.stop()


def test_s3_store(logs: Path, tmp_path: Path, seaweed: object) -> None:
    from objectstore.servers import SeaweedFS

    assert isinstance(seaweed, SeaweedFS)
    seaweed.bucket("shared-store")
    conf = seaweed.hadoop_conf()
    url = f"s3a://shared-store/{tmp_path.name}"
    flags = [a for k, v in conf.items() for a in ("--hadoop-conf", f"{k}={v}")]
    _scenario(logs, Backend(url, flags, SourceOptions(hadoop_conf=tuple(conf.items()))), tmp_path, cut_and_kill=False)


# ------------------------------------------------------------------------- 20,000 applications
#: Small real Spark logs (finished; 5 to 27 events), copied under new application ids.
SMALL_TEMPLATES = ("local-1430917381535_1", "local-1426533911241", "application_1578436911597_0052")
APPS = 20_000


@pytest.fixture(scope="module")
def corpus_20k() -> Path:
    """20,000 applications from :data:`SMALL_TEMPLATES` (the bench corpus code's scaler), cached."""
    import hashlib

    from sparkhist.devtools import scale
    from support.conformance import APACHE
    from support.corpus import ensure_generated

    paths = [APACHE / "spark-events" / name for name in SMALL_TEMPLATES]
    digest = hashlib.sha256(Path(scale.__file__).read_bytes())
    for path in paths:
        digest.update(path.read_bytes())

    def build(out: Path) -> None:
        scale.scale([scale.load_template(p) for p in paths], out / "eventlogs", APPS, id_prefix="local-7")

    return ensure_generated(f"shared-store-{APPS}", digest.hexdigest()[:12], build)


def _index_20k(corpus: Path, backend: Backend, tmp_path: Path) -> None:
    run = run_sparkhist("index-on-spark", corpus, backend.url, backend.flags, cache=tmp_path / "driver-cache")
    assert f"{APPS} logs listed: {APPS} new" in run.stdout and f"{APPS} logs built by 1 Spark jobs" in run.stdout, run.stdout
    published = re.search(r"published (\S+): (\d+) records, 0 deleted in ([\d.]+)s", run.stdout)
    assert published and published.group(2) == str(APPS), run.stdout
    with RemoteStore.open(backend.url, backend.options) as remote:
        began = time.monotonic()
        synced = segments.sync_cache(remote, str(tmp_path / "replica-cache"))
        sync_seconds = time.monotonic() - began
        assert (synced.manifest, synced.records, synced.added) == (published.group(1), APPS, APPS)
        snapshots = remote.list("snapshots")
        assert len(snapshots) == APPS
        found = segments.newest_manifest(remote)
        assert found is not None
        segment_bytes = sum(s.size for s in found[2].segments)
    catalog = Catalog(str(tmp_path / "replica-cache"), None, read_only=True)
    try:
        assert sum(1 for r in catalog.load().records.values() if r.listing.completed and r.snapshot_size > 0) == APPS
    finally:
        catalog.close()
    job = re.search(r"built by 1 Spark jobs in ([\d.]+)s", run.stdout)
    assert job
    print(f"\n{APPS} apps into {backend.url}: command {run.seconds:.1f}s ({APPS / run.seconds:.0f} apps/s), Spark job "
          f"{float(job.group(1)):.1f}s ({APPS / float(job.group(1)):.0f} apps/s); publish {published.group(3)}s, "
          f"segment {segment_bytes / APPS:.0f} bytes/record; a replica's first sync {sync_seconds:.2f}s")


def test_20000_apps_into_hdfs(corpus_20k: Path, tmp_path: Path, hdfs_cluster: str) -> None:
    url = f"hdfs://{_nameservice(hdfs_cluster)}/sparkhist/{tmp_path.name}"
    _index_20k(corpus_20k, Backend(url, ["--hadoop-conf-dir", hdfs_cluster], SourceOptions(hadoop_conf_dir=hdfs_cluster)),
               tmp_path)


def test_20000_apps_into_s3(corpus_20k: Path, tmp_path: Path, seaweed: object) -> None:
    from objectstore.servers import SeaweedFS

    assert isinstance(seaweed, SeaweedFS)
    seaweed.bucket("shared-store-20k")
    conf = seaweed.hadoop_conf()
    flags = [a for k, v in conf.items() for a in ("--hadoop-conf", f"{k}={v}")]
    _index_20k(corpus_20k, Backend("s3a://shared-store-20k/store", flags, SourceOptions(hadoop_conf=tuple(conf.items()))),
               tmp_path)
