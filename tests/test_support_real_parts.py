"""Smoke tests of the real-Spark test infrastructure: the log corpus and the stock SHS.

They check the parts other tests lean on: the corpus really covers every codec x
layout, finished and killed, and the stock SHS really serves it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import zstandard

from support.corpus import CODECS
from support.real_shs import RealShs, run_real_shs, spark_version

F = TypeVar("F", bound=Callable[..., Any])


def real_spark(test: F) -> F:
    """Needs Java and pyspark, and takes seconds (minutes on a cold corpus cache)."""
    return pytest.mark.slow(pytest.mark.spark(test))


#: Leading bytes of each codec's stream (SHS_REFERENCE §2.5): proves the name isn't lying.
MAGIC = {
    "none": b'{"Event":"SparkListenerLogStart"',
    "lz4": b"LZ4Block",
    "lzf": b"ZV",
    "snappy": b"\x82SNAPPY\x00",
    "zstd": b"\x28\xb5\x2f\xfd",
}
LAYOUTS = ("single", "rolling")


def _events_files(corpus: Path, entry: dict[str, Any]) -> list[Path]:
    root = corpus / entry["path"]
    names = [f for f in entry["files"] if not f.startswith("appstatus_")]
    return [root / f for f in names] if entry["layout"] == "rolling" else [root]


def _events(files: list[Path], codec: str) -> list[dict[str, Any]]:
    """Decode uncompressed or zstd logs only: the codec layer proper lives in sparkhist.reader."""
    lines: list[bytes] = []
    for path in files:
        with path.open("rb") as raw:
            data = (
                zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True).read()
                if codec == "zstd"
                else raw.read()
            )
        lines += data.splitlines()
    return [json.loads(line) for line in lines]


@real_spark
def test_corpus_covers_every_codec_and_layout(corpus_manifest: list[dict[str, Any]]) -> None:
    finished = {(e["codec"], e["layout"]) for e in corpus_manifest if e["state"] == "finished"}
    killed = {(e["codec"], e["layout"]) for e in corpus_manifest if e["state"] == "in-progress"}
    assert finished == {(codec, layout) for codec in CODECS for layout in LAYOUTS}
    assert killed == {(codec, "single") for codec in CODECS} | {("zstd", "rolling")}
    assert len({e["app_id"] for e in corpus_manifest}) == len(corpus_manifest)
    multi = [e for e in corpus_manifest if e["layout"] == "rolling" and len(e["files"]) >= 4]
    assert multi, "no rolling log with several events_N files"


@real_spark
def test_corpus_files_follow_spark_naming(spark_corpus: Path, corpus_manifest: list[dict[str, Any]]) -> None:
    for entry in corpus_manifest:
        app_id, codec = entry["app_id"], entry["codec"]
        suffix = "" if codec == "none" else f".{codec}"
        in_progress = entry["state"] == "in-progress"
        root = spark_corpus / entry["path"]
        if entry["layout"] == "single":
            assert entry["path"] == app_id + suffix + (".inprogress" if in_progress else "")
            assert root.is_file()
        else:
            assert entry["path"] == f"eventlog_v2_{app_id}"
            status = f"appstatus_{app_id}" + (".inprogress" if in_progress else "")
            assert (root / status).is_file()
            indices = [int(f.split("_")[1]) for f in entry["files"] if f.startswith("events_")]
            assert sorted(indices) == list(range(1, len(indices) + 1))
            assert all(f.endswith(f"_{app_id}{suffix}") for f in entry["files"] if f.startswith("events_"))
        for path in _events_files(spark_corpus, entry):
            head = path.read_bytes()[: len(MAGIC[codec])]
            assert head == MAGIC[codec], (path.name, head)


@real_spark
def test_decodable_logs_hold_the_whole_app(spark_corpus: Path, corpus_manifest: list[dict[str, Any]]) -> None:
    """Finished logs end with ApplicationEnd; killed ones don't, but hold jobs and a running one."""
    for entry in corpus_manifest:
        if entry["codec"] not in ("none", "zstd"):
            continue
        events = _events(_events_files(spark_corpus, entry), entry["codec"])
        kinds = [e["Event"] for e in events]
        assert kinds[0] == "SparkListenerLogStart"
        assert events[kinds.index("SparkListenerApplicationStart")]["App Name"] == entry["name"]
        job_ends = [e for e in events if e["Event"] == "SparkListenerJobEnd"]
        assert any(e["Job Result"]["Result"] == "JobFailed" for e in job_ends), entry["name"]
        if entry["state"] == "finished":
            assert kinds[-1] == "SparkListenerApplicationEnd", entry["name"]
        else:
            assert "SparkListenerApplicationEnd" not in kinds
            assert kinds.count("SparkListenerJobStart") == len(job_ends) + 1, entry["name"]


@real_spark
def test_real_shs_serves_the_corpus(real_shs_on_corpus: RealShs, corpus_manifest: list[dict[str, Any]]) -> None:
    shs = real_shs_on_corpus
    assert shs.get("version").json() == {"spark": spark_version()} == {"spark": "4.3.0"}
    apps = {app["id"]: app for app in shs.get("applications").json()}
    assert set(apps) == {e["app_id"] for e in corpus_manifest}
    for entry in corpus_manifest:
        app = apps[entry["app_id"]]
        assert app["name"] == entry["name"]
        (attempt,) = app["attempts"]
        assert "attemptId" not in attempt  # local mode never has attempt ids
        assert attempt["completed"] is (entry["state"] == "finished"), entry["name"]
    running = {app["id"] for app in shs.get("applications?status=running").json()}
    assert running == {e["app_id"] for e in corpus_manifest if e["state"] == "in-progress"}


@real_spark
def test_real_shs_replays_multi_file_and_killed_apps(
    real_shs_on_corpus: RealShs, corpus_manifest: list[dict[str, Any]]
) -> None:
    by_name = {e["name"]: e["app_id"] for e in corpus_manifest}
    jobs = real_shs_on_corpus.get(f"applications/{by_name['finished-zstd-rolling-multifile']}/jobs").json()
    assert [job["status"] for job in jobs].count("FAILED") == 1
    assert len(jobs) > 12  # the workload plus the padding jobs, spread over several files
    killed = real_shs_on_corpus.get(f"applications/{by_name['killed-zstd-rolling']}/jobs").json()
    assert "RUNNING" in {job["status"] for job in killed}


@real_spark
def test_real_shs_starts_on_an_empty_dir_and_stops(tmp_path: Path) -> None:
    with run_real_shs(tmp_path) as shs:
        assert shs.get("applications").json() == []
        assert shs.get("applications/nope").status_code == 404
        process = shs.process
    assert process.poll() is not None


def test_conformance_dir_is_beside_the_repo(conformance_dir: Path) -> None:
    index = json.loads((conformance_dir / "spark-4.0.1" / "responses" / "_index.json").read_text())
    assert {"path": "/version", "status": 200}.items() <= next(e for e in index if e["path"] == "/version").items()
