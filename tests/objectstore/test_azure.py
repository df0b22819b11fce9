"""``wasb://`` and ``abfs://`` against Azurite (Azure's Blob API emulator, from npm; servers.py).

The account ``devstoreaccount1`` is declared the emulator the way WASB users do it
(``fs.azure.storage.emulator.account.name``); its address comes from
``$AZURITE_BLOB_STORAGE_URL``. The test container is created with Azure's own SDK
(``azure-storage-blob``, tests only); sparkhist reads through obstore's Azure client.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import pytest

from sparkhist.errors import SourceError, SourceNotFound
from sparkhist.source.factory import SourceOptions, open_source
from sparkhist.source.objectstore import ObjectStoreSource

from .conftest import Timings, upload_tree
from .runtime_checks import (
    SOME_APPS,
    SOME_LOGS,
    SPARK_LOGS,
    answers,
    outage,
    recovery,
    runtime_on,
    scanned_beside_local,
)
from .servers import Azurite

_CONTAINERS = itertools.count()


@pytest.fixture
def container(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Any]:
    monkeypatch.setenv("AZURITE_BLOB_STORAGE_URL", azurite.endpoint)
    name = f"logs-{next(_CONTAINERS)}"
    return name, azurite.container(name)


def url(name: str, scheme: str = "wasb", path: str = "spark-events") -> str:
    host = "blob" if scheme.startswith("wasb") else "dfs"
    return f"{scheme}://{name}@{Azurite.ACCOUNT}.{host}.core.windows.net/{path}"


@pytest.mark.parametrize("scheme", ["wasb", "abfs"])
def test_azure_lists_stats_and_reads_spark_layouts(azurite: Azurite, container: tuple[str, Any], scheme: str) -> None:
    name, store = container
    upload_tree(store, SPARK_LOGS, "spark-events")
    source = open_source(url(name, scheme), SourceOptions(hadoop_conf=tuple(azurite.hadoop_conf().items())))
    assert isinstance(source, ObjectStoreSource)
    entries = {e.name: e for e in source.list(source.root_path)}
    assert set(entries) == {p.name for p in SPARK_LOGS.iterdir()}
    for p in SPARK_LOGS.iterdir():
        e = entries[p.name]
        assert e.is_dir == p.is_dir() and (e.is_dir or (e.size == p.stat().st_size and e.etag))
    rolling = entries["eventlog_v2_local-1795972918271"]
    assert {f.name for f in source.list(rolling.path)} == {p.name for p in (SPARK_LOGS / rolling.name).iterdir()}
    assert source.stat(rolling.path).is_dir
    with pytest.raises(SourceNotFound):
        source.stat(url(name, scheme, "spark-events/nope"))
    source.chunk_size = 100_000
    data = (SPARK_LOGS / "local-1795972896863").read_bytes()
    with source.open(entries["local-1795972896863"].path, 99) as stream:
        assert stream.read(50_000) == data[99:50_099]
        store.put("spark-events/local-1795972896863", data + b"\n")  # replaced while read: If-Match
        with pytest.raises(SourceError, match="changed while it was read"):
            stream.read()
    source.delete(rolling.path)
    assert rolling.name not in {e.name for e in source.list(source.root_path)}
    assert source.health()["state"] == "ok" and source.health()["bucket"] == name
    source.close()


@pytest.mark.slow
def test_same_answers_from_azure_as_from_a_local_copy(azurite: Azurite, container: tuple[str, Any], tmp_path: Path,
                                                     timings: Timings) -> None:
    name, store = container
    with scanned_beside_local(url(name, "abfss"), tmp_path, azurite.hadoop_conf(),
                              lambda local: upload_tree(store, local, "spark-events")) as done:
        pass
    timings.record("azure same answers", apps=done.apps, objects=done.objects, requests_compared=done.requests,
                   upload=done.upload_s, first_scan=done.first_scan_s)


@pytest.mark.slow
def test_runtime_serves_from_the_store_while_azure_hangs(azurite: Azurite, container: tuple[str, Any], tmp_path: Path,
                                                        timings: Timings) -> None:
    name, store = container
    for log in SOME_LOGS:
        p = SPARK_LOGS / log
        files = sorted(p.iterdir()) if p.is_dir() else [p]
        for f in files:
            store.put(f"events/{f.relative_to(SPARK_LOGS).as_posix()}", f.read_bytes())
    with runtime_on(url(name, "wasbs", "events"), tmp_path / "store", hadoop_conf=azurite.hadoop_conf()) as (runtime, client):
        assert runtime.scanner.scan_once().ok
        before = answers(client, SOME_APPS)
        fault_at = time.monotonic()
        azurite.pause()
        try:
            figures = outage(runtime, client, before, SOME_APPS, fault_at)
        finally:
            lifted_at = time.monotonic()
            azurite.resume()
        recover = recovery(runtime, client, before, SOME_APPS, lifted_at)
    timings.record("azure server hung", **figures, outage=time.monotonic() - fault_at, recover_after_lift=recover)
