"""Several log directories (``spark.history.fs.logDirectory`` as a comma-separated list, SPARK-55793).

The SHS 4.3.0 lists applications from every directory and shows each attempt the directory
its log is in (``logSourceName`` from ``spark.history.fs.logDirectory.names``,
``logSourceFullPath`` as written). sparkhist reads the list as one source per directory
(``source/multi.py``): these tests give the real SHS 4.3.0 and sparkhist the same list over
the generated 4.3.0 corpus split across three directories (one application's log copied into
a later directory too, a blank name) and compare every endpoint; a missing directory is
compared live as well. What sparkhist does on its own (a directory lost after it was read
keeps its applications; on-demand loads, the cleaner and the watches per directory) is
tested without the SHS.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sparkhist.config import LogSource, LogSources, load_settings, log_directories
from sparkhist.scan.cleaner import Cleaner, CleanerPolicy
from sparkhist.source.factory import open_source
from sparkhist.source.multi import PartialListing, SourceSet
from support.differential import APP_LIST_QUERIES, Comparison, as_configured, corpus_paths
from support.real_shs import RealShs, run_real_shs
from support.server import runtime_for
from support.serving import free_port, sparkhist_serve

NAMES = "alpha,,gamma"  # the second directory is shown by its path
#: A finished single-file log of the corpus: copied into the last directory too (same app id).
DUPLICATED = "finished-none-single"


def _template(path: str) -> str:
    return re.sub(r"local-\d+", "{app}", re.sub(r"/stages/\d+", "/stages/{s}", path))


def _copy(src: Path, dest: Path) -> None:
    (shutil.copytree if src.is_dir() else shutil.copy2)(src, dest)  # mtimes kept


def _split(corpus: Path, manifest: list[dict[str, Any]], root: Path, count: int) -> tuple[list[Path], str]:
    """The corpus's logs dealt over ``count`` directories; one finished log copied into the last
    one as well (the first when it is in the last). Returns the directories and the duplicated application's id."""
    dirs = [root / name for name in ("a", "b", "c")[:count]]
    for d in dirs:
        d.mkdir(parents=True)
    for i, name in enumerate(sorted(os.listdir(corpus))):
        _copy(corpus / name, dirs[i % count] / name)
    entry = next(e for e in manifest if e["name"] == DUPLICATED)
    log = Path(entry["path"]).name
    into = dirs[-1] if not (dirs[-1] / log).exists() else dirs[0]
    _copy(corpus / log, into / log)
    return dirs, entry["app_id"]


def _configured(dirs: list[Path]) -> str:
    return ",".join(as_configured(d) for d in dirs)


@pytest.fixture(scope="module")
def three(spark_corpus: Path, corpus_manifest: list[dict[str, Any]],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any, RealShs, list[Path], str]]:
    """(sparkhist's runtime, its client, the real SHS, the directories, the duplicated app id)."""
    dirs, duplicated = _split(spark_corpus, corpus_manifest, tmp_path_factory.mktemp("three"), 3)
    conf = {"spark.history.fs.logDirectory": _configured(dirs), "spark.history.fs.logDirectory.names": NAMES}
    with run_real_shs(dirs[0], extra_conf=conf) as shs, \
            runtime_for(_configured(dirs), tmp_path_factory.mktemp("three-store"),
                        environ={"SPARKHIST_LOG_DIR_NAMES": NAMES}) as (runtime, client):
        shs.wait_until_listed(len(corpus_manifest))
        yield runtime, client, shs, dirs, duplicated


@pytest.mark.spark
@pytest.mark.slow
def test_three_directories_answer_every_endpoint_like_the_real_shs(three: Any, corpus_manifest: list[dict[str, Any]]) -> None:
    runtime, client, shs, dirs, duplicated = three
    paths = corpus_paths(shs, corpus_manifest)
    comparison = Comparison(_template, {}).run(paths, client, shs)
    comparison.report()
    assert comparison.mismatches == {}

    # What the comparison covered: every directory shown, by name or by path, and the
    # application found in two directories shown once, from the later one (as the SHS shows it).
    shown = {(a["logSourceName"], a["logSourceFullPath"]) for app in client.get("/api/v1/applications").json()
             for a in app["attempts"]}
    full = [as_configured(d) for d in dirs]
    assert shown == {("alpha", full[0]), (full[1], full[1]), ("gamma", full[2])}
    app = client.get(f"/api/v1/applications/{duplicated}").json()
    assert [(a["logSourceName"], a["logSourceFullPath"]) for a in app["attempts"]] == [("gamma", full[2])]
    assert len(runtime.scanner.records) == len(corpus_manifest) + 1  # both copies read, one listed


@pytest.mark.spark
@pytest.mark.slow
def test_three_directories_each_have_their_health(three: Any) -> None:
    runtime, client, _shs, dirs, _dup = three
    details = client.get("/health/details").json()
    assert [s["logDirectory"] for s in details["sources"]] == [as_configured(d) for d in dirs]
    assert {s["state"] for s in details["sources"]} == {"ok"}
    assert sorted(w.root for w in runtime.loop.watches) == sorted(str(d) for d in dirs)


def _home_page_directories(html: str) -> list[str]:
    """The home page's "Event log directory" fact: the directory count line, then each directory
    as shown (the SHS's own markup or sparkhist's), tags dropped and spaces collapsed."""
    fact = re.search(r"Event log directory:</strong>(.*?)(?:<p>|<li><strong>)", html, re.S)
    assert fact is not None, html[:2000]
    text = fact.group(1)
    items = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", i)).strip() for i in re.findall(r"<li[^>]*>(.*?)</li>", text, re.S)]
    head = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", text.split("<li", 1)[0])).replace("(show)", "").strip()
    return [head, *items]


@pytest.mark.spark
@pytest.mark.slow
def test_three_directories_on_the_home_page_as_the_real_shs_shows_them(three: Any) -> None:
    _runtime, client, shs, dirs, _dup = three
    theirs = _home_page_directories(httpx.get(shs.base_url + "/", timeout=30).text)
    ours = _home_page_directories(client.get("/").text)
    full = [as_configured(d) for d in dirs]
    assert theirs == ["3 directories", f"alpha ({full[0]})", full[1], f"gamma ({full[2]})"]
    assert ours == theirs


@pytest.mark.parametrize("names", [None, "alpha"])
def test_one_directory_on_the_home_page_as_the_real_shs_shows_it(tmp_path: Path, names: str | None) -> None:
    """One directory: its path as written, or ``name (path)`` when it has a name."""
    logs = tmp_path / "logs"
    logs.mkdir()
    conf = {"spark.history.fs.logDirectory": as_configured(logs)}
    environ = {}
    if names is not None:
        conf["spark.history.fs.logDirectory.names"] = names
        environ["SPARKHIST_LOG_DIR_NAMES"] = names
    with run_real_shs(logs, extra_conf=conf) as shs, \
            runtime_for(as_configured(logs), tmp_path / "store", environ=environ) as (_rt, client):
        theirs = _home_page_directories(httpx.get(shs.base_url + "/", timeout=30).text)
        ours = _home_page_directories(client.get("/").text)
    shown = as_configured(logs) if names is None else f"alpha ({as_configured(logs)})"
    assert theirs == [shown]
    assert ours == theirs


@pytest.mark.spark
@pytest.mark.slow
def test_a_missing_directory_does_not_stop_the_others(spark_corpus: Path, corpus_manifest: list[dict[str, Any]],
                                                     tmp_path: Path) -> None:
    """The SHS starts when at least one directory exists and lists the others; so does sparkhist,
    which shows the missing one offline in ``/health/details``."""
    dirs, _dup = _split(spark_corpus, corpus_manifest, tmp_path / "logs", 3)
    shutil.rmtree(dirs[1])
    listed = len({e["app_id"] for e in corpus_manifest if any((d / Path(e["path"]).name).exists() for d in dirs)})
    assert 0 < listed < len(corpus_manifest)
    conf = {"spark.history.fs.logDirectory": _configured(dirs), "spark.history.fs.logDirectory.names": NAMES}
    with run_real_shs(dirs[0], extra_conf=conf) as shs, \
            runtime_for(_configured(dirs), tmp_path / "store", environ={"SPARKHIST_LOG_DIR_NAMES": NAMES}) as (_rt, client):
        shs.wait_until_listed(listed)
        time.sleep(2.5)  # two more of its scans: nothing else comes
        paths = [("/applications" + q, False) for q in APP_LIST_QUERIES]
        for app in shs.get("/applications").json():
            paths += [(f"/applications/{app['id']}{p}", not app["attempts"][0]["completed"])
                      for p in ("", "/jobs", "/stages", "/executors", "/environment", "/logs")]
        comparison = Comparison(_template, {}).run(paths, client, shs)
        comparison.report()
        assert comparison.mismatches == {}
        assert len(client.get("/api/v1/applications").json()) == listed
        states = {s["logDirectory"]: s["state"] for s in client.get("/health/details").json()["sources"]}
        assert states == {as_configured(dirs[0]): "ok", as_configured(dirs[1]): "offline", as_configured(dirs[2]): "ok"}


def _two(spark_corpus: Path, manifest: list[dict[str, Any]], root: Path) -> tuple[list[Path], str]:
    """Two directories of the corpus, without Spark's involvement beyond the cached corpus."""
    return _split(spark_corpus, manifest, root, 2)


@pytest.mark.spark
def test_a_directory_lost_after_a_scan_keeps_its_applications(spark_corpus: Path, corpus_manifest: list[dict[str, Any]],
                                                             tmp_path: Path) -> None:
    """One directory that cannot be listed any more (gone, unreachable) keeps what was read from it,
    as a failed listing of a single directory does, while the other goes on being scanned.
    (The SHS 4.3.0 drops a directory's applications when its listing fails.)"""
    dirs, _dup = _two(spark_corpus, corpus_manifest, tmp_path / "logs")
    held = sorted(p for p in dirs[0].iterdir() if p.is_file())[-1]  # comes into the first directory later
    held.rename(tmp_path / held.name)
    with runtime_for(_configured(dirs), tmp_path / "store") as (runtime, client):
        before = {a["id"] for a in client.get("/api/v1/applications").json()}
        assert len(before) == len(corpus_manifest) - 1
        away = tmp_path / "away"
        dirs[1].rename(away)
        (tmp_path / held.name).rename(held)
        report = runtime.scanner.scan_once()
        assert report.ok and report.removed == 0 and report.new == 1  # the first directory still scanned
        assert list(report.errors) == [as_configured(dirs[1])]
        after = {a["id"] for a in client.get("/api/v1/applications").json()}
        assert len(after) == len(corpus_manifest) and before < after  # nothing of the lost directory dropped
        states = {s["logDirectory"]: s["state"] for s in client.get("/health/details").json()["sources"]}
        assert states == {as_configured(dirs[0]): "ok", as_configured(dirs[1]): "offline"}
        # both gone: the listing fails as one directory's does, and nothing is dropped either
        dirs[0].rename(tmp_path / "away0")
        report = runtime.scanner.scan_once()
        assert not report.ok and report.removed == 0
        assert {a["id"] for a in client.get("/api/v1/applications").json()} == after
        # back: listed again, and a log removed meanwhile leaves
        (tmp_path / "away0").rename(dirs[0])
        away.rename(dirs[1])
        gone = sorted(dirs[1].iterdir())[0]
        (shutil.rmtree if gone.is_dir() else os.remove)(gone)
        report = runtime.scanner.scan_once()
        assert report.ok and report.removed == 1 and report.errors == {}
        assert {s["state"] for s in client.get("/health/details").json()["sources"]} == {"ok"}


@pytest.mark.spark
def test_on_demand_loads_look_in_every_directory(spark_corpus: Path, corpus_manifest: list[dict[str, Any]],
                                                 tmp_path: Path) -> None:
    dirs, _dup = _two(spark_corpus, corpus_manifest, tmp_path / "logs")
    second = sorted(n for n in os.listdir(dirs[1]))
    entry = next(e for e in corpus_manifest if Path(e["path"]).name in second and e["state"] == "finished")
    with runtime_for(_configured(dirs), tmp_path / "store", scan=False,
                     environ={"SPARKHIST_LOG_DIR_NAMES": "one,two"}) as (runtime, client):
        assert len(runtime.scanner.records) == 0
        app = client.get(f"/api/v1/applications/{entry['app_id']}").json()
        assert [(a["logSourceName"], a["logSourceFullPath"]) for a in app["attempts"]] == [("two", as_configured(dirs[1]))]
        assert client.get(f"/api/v1/applications/{entry['app_id']}/jobs").status_code == 200


@pytest.mark.spark
def test_the_cleaner_deletes_in_each_directory(spark_corpus: Path, corpus_manifest: list[dict[str, Any]],
                                               tmp_path: Path) -> None:
    """``spark.history.fs.cleaner.maxNum`` counts the logs of every directory together (the SHS's
    listing holds them all); the oldest completed attempts go, from whichever directory."""
    dirs, _dup = _two(spark_corpus, corpus_manifest, tmp_path / "logs")
    with runtime_for(_configured(dirs), tmp_path / "store") as (runtime, client):
        total = len(runtime.scanner.records)
        counts = [len(os.listdir(d)) for d in dirs]
        report = Cleaner(runtime.scanner, CleanerPolicy(max_age_s=10 * 365 * 86400.0, max_num=total - 6)).clean()
        assert report.attempts_removed >= 6 and report.delete_failures == 0
        left = [len(os.listdir(d)) for d in dirs]
        assert sum(left) == total - report.logs_deleted
        assert all(n < before for n, before in zip(left, counts, strict=True))  # both directories lost logs
        assert len(runtime.scanner.records) == total - report.attempts_removed
        assert runtime.scanner.scan_once().removed == 0  # what is gone was forgotten already


def test_the_directory_of_a_log(tmp_path: Path) -> None:
    sources = LogSources((LogSource("a", "file:/data/ev"), LogSource("hdfs://nn:8020/ev", "hdfs://nn:8020/ev"),
                          LogSource("deeper", "/data/ev/sub"), LogSource("rel", "rel/logs")))
    assert sources.for_path("/data/ev/app-1") == sources.sources[0]
    assert sources.for_path("/data/ev/sub/app-2") == sources.sources[2]  # the deepest holding it
    assert sources.for_path("hdfs://nn:8020/ev/app-3") == sources.sources[1]
    assert sources.for_path("hdfs://ns/ev/app-3") == sources.sources[1]  # another spelling of the host
    assert sources.for_path(os.path.abspath("rel/logs") + "/app-4") == sources.sources[3]
    assert sources.for_path("/elsewhere/app") == sources.sources[0]  # the SHS falls back to the first
    assert list(sources)[1] == ["hdfs://nn:8020/ev", "hdfs://nn:8020/ev"]
    # a comma in a URL's authority is WebHDFS's list of NameNodes, not another directory
    assert log_directories("webhdfs://nn1:9870,nn2:9870/ev, hdfs://nn, /x") == [
        "webhdfs://nn1:9870,nn2:9870/ev", "hdfs://nn", "/x"]
    settings = load_settings({"log_dir": "file:/x, /y ,file:/x", "store_dir": str(tmp_path)}, environ={})
    assert settings.log_dir == "/x,/y"  # a directory given twice is read once
    assert settings.log_source == LogSources((LogSource("file:/x", "file:/x"), LogSource("/y", "/y")))


def test_one_source_per_directory(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "app-1").write_text("{}\n")
    (b / "app-2").write_text("{}\n")
    source = open_source(f"file:{a},{b}")
    try:
        assert isinstance(source, SourceSet)
        assert source.root == f"file:{a},file:{b}"
        entries = source.list(source.root_path)
        assert isinstance(entries, PartialListing) and entries.unlisted == {}
        assert sorted(e.path for e in entries) == [str(a / "app-1"), str(b / "app-2")]
        with source.open(str(b / "app-2")) as stream:
            assert stream.read() == b"{}\n"
        assert source.join(str(b), "x") == str(b / "x")
        b.rename(tmp_path / "gone")
        entries = source.list(source.root_path)
        assert [e.path for e in entries] == [str(a / "app-1")]
        assert isinstance(entries, PartialListing) and list(entries.unlisted) == [str(b)]
        source.delete(str(a / "app-1"))
        assert not (a / "app-1").exists()
        a.rename(tmp_path / "gone-too")
        with pytest.raises(Exception, match="no log directory could be listed"):
            source.list(source.root_path)
        reopened = open_source(source.root)  # what an indexing process opens
        assert isinstance(reopened, SourceSet) and reopened.root == source.root
        reopened.close()
    finally:
        source.close()


@pytest.mark.spark
def test_serve_starts_while_one_directory_is_there(spark_corpus: Path, corpus_manifest: list[dict[str, Any]],
                                                  tmp_path: Path) -> None:
    """``sparkhist serve`` over a list: a missing directory is a warning (the SHS's start-up check);
    none there is one error line and exit status 2, as for a single missing directory."""
    dirs, _dup = _two(spark_corpus, corpus_manifest, tmp_path / "logs")
    missing = tmp_path / "not-there"
    env = {**os.environ, "SPARKHIST_LOG_DIR": f"{dirs[0]},{missing}", "SPARKHIST_STORE": str(tmp_path / "store"),
           "SPARKHIST_SERVE_PROCESSES": "1", "SPARKHIST_INDEX_WORKERS": "1"}
    with sparkhist_serve(tmp_path, [], env) as url:
        deadline = time.monotonic() + 60
        listed: list[Any] = []
        expected = len(os.listdir(dirs[0]))
        while len(listed) < expected and time.monotonic() < deadline:
            listed = httpx.get(url + "/api/v1/applications").json()
            time.sleep(0.2)
        assert len(listed) == expected
        sources = httpx.get(url + "/health/details").json()["sources"]
        assert [(s["logDirectory"], s["state"]) for s in sources] == [
            (as_configured(dirs[0]), "ok"), (as_configured(missing), "offline")]
    assert "does not exist or is not a directory; the others are read" in (tmp_path / "serve.log").read_text()
    env["SPARKHIST_LOG_DIR"] = f"{missing},{tmp_path / 'nor-this'}"
    env["SPARKHIST_STORE"] = str(tmp_path / "other-store")
    done = subprocess.run([sys.executable, "-m", "sparkhist.cli", "serve", "--port", str(free_port())], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert f"none of the log directories exist: {missing}, {tmp_path / 'nor-this'}" in done.stderr


def test_a_shared_stores_manifest_keeps_several_directories() -> None:
    """index-on-spark's manifest records what the listing rows show: every directory, read back as it was."""
    from sparkhist.store.segments import Manifest

    several = LogSources((LogSource("alpha", "file:/a"), LogSource("file:/b", "file:/b")))
    for source in (several, LogSource("one", "file:/a"), None):
        manifest = Manifest(1, (), 0, "file:/a,file:/b", source)
        assert Manifest.decode(manifest.encode(), "test").log_source == source
