"""The stored application list: served before the index is loaded, only while current, never when damaged.

``serve`` answers the unfiltered ``/api/v1/applications`` from ``application-list.bin``
when its checksum holds and it names the catalog's listing (id and change counter);
the index loads in the background, and anything else waits for it.
"""

from __future__ import annotations

import http.client
import logging
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest
from starlette.testclient import TestClient

from sparkhist.api.app import create_app
from sparkhist.api.v1.applications import unfiltered_body
from sparkhist.config import load_settings
from sparkhist.server.first_answer import ListingLoad, early_context
from sparkhist.server.opening import OpenedStore, open_store
from sparkhist.server.pending import PendingRuntime
from sparkhist.server.runtime import complete_runtime
from sparkhist.store import list_file
from sparkhist.store.catalog import Catalog
from sparkhist.store.list_file import ListPublisher
from sparkhist.store.verify import verify_store
from support.conformance import SPARK401
from support.differential import normalize
from support.server import copy_logs, runtime_for

URL = "/api/v1/applications"
FILTERED = ["status=completed", "status=running", "limit=3", "minDate=2020-01-01"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, bytes, dict[str, bytes]]:
    """Logs, a store with a current list file, the list it serves and some filtered answers."""
    base = tmp_path_factory.mktemp("listfile")
    logs = copy_logs(SPARK401 / "eventlogs", base / "logs")
    with runtime_for(logs, base / "store") as (runtime, client):
        body = client.get(URL).content
        filtered = {q: client.get(f"{URL}?{q}").content for q in FILTERED}
        publisher = ListPublisher(str(base / "store"), runtime.catalog, runtime.index, unfiltered_body)
        assert publisher.stale() and publisher.publish()
        assert not publisher.stale() and not publisher.publish()  # nothing changed: not written again
    return logs, base / "store", body, filtered


def _copy(store: Path, dest: Path) -> Path:
    shutil.copytree(store, dest)
    return dest


@contextmanager
def _serve_early(logs: Path, store: Path) -> Iterator[tuple[OpenedStore, ListingLoad, TestClient]]:
    """What ``serve`` answers from before the index is loaded (when the stored list is current)."""
    opened = open_store(load_settings({"log_dir": str(logs), "store_dir": str(store)}, environ={}), listing=True,
                        stored_list=True)
    pending = PendingRuntime()
    loading = ListingLoad(opened, pending)
    app = create_app(early_context(opened, pending, loading))
    try:
        with TestClient(app) as client:
            yield opened, loading, client
    finally:
        runtime = pending.runtime
        if runtime is not None:
            runtime.close()
        else:
            opened.lock.release()
            opened.catalog.close()


def test_the_file_holds_the_bytes_the_index_renders(built) -> None:
    _, store, body, _ = built
    stored = list_file.read(str(store))
    assert stored is not None and stored.body == body
    catalog = Catalog(str(store), None, read_only=True)
    assert stored.matches(catalog) and stored.counter == catalog.listing_counter > 0
    catalog.close()
    assert verify_store(str(store)).list_file == "current"


def test_served_before_the_index_is_loaded(built, tmp_path: Path) -> None:
    logs, clean, body, filtered = built
    store = _copy(clean, tmp_path / "store")
    with _serve_early(logs, store) as (opened, loading, client):
        assert opened.stored is not None
        assert client.get(URL).content == body
        # The answer came from the file: no listing row was read into the index yet.
        assert not loading.loaded.is_set() and len(opened.index) == 0

        # A filtered query waits for the index (and asks for it to be loaded now).
        def load_when_asked() -> None:
            assert loading.pending.wanted.wait(30)
            loading.load()

        loader = threading.Thread(target=load_when_asked)
        loader.start()
        for query, expected in filtered.items():
            assert client.get(f"{URL}?{query}").content == expected, query
        loader.join()
        assert loading.loaded.is_set() and len(opened.index) == len(orjson.loads(body))
        # Loaded and unchanged: the file still answers, the same bytes the index renders.
        assert client.get(URL).content == body == unfiltered_body(opened.index.sorted_apps())

        # A change to the listing: the file is stale for good, the index answers.
        entries, _ = opened.index.snapshot()
        gone = sorted(entries)[0]
        opened.catalog.delete([gone])
        opened.index.remove(gone)
        after = client.get(URL).content
        assert after != body and after == unfiltered_body(opened.index.sorted_apps())
        assert loading.stored is None


DETAILS = ["", "/jobs", "/stages", "/executors", "/environment", "/sql"]


def test_an_application_s_details_do_not_wait_for_the_index_or_the_runtime(built, tmp_path: Path) -> None:
    """Right after a restart, opening one application reads its listing rows by id and its
    snapshot: neither the whole listing nor the rest of the runtime (scanner, records) is
    waited for, and the answers are those of the complete runtime."""
    logs, clean, body, _ = built
    store = _copy(clean, tmp_path / "store")
    listed = orjson.loads(body)
    apps = [a["id"] for a in listed]
    running = {a["id"] for a in listed if not a["attempts"][0]["completed"]}

    def answer(client: TestClient, app: str, detail: str) -> object:
        # A running app's durations run to the request's time: masked, as in the differential tests.
        return normalize(orjson.loads(client.get(f"{URL}/{app}{detail}").content), app in running)

    with runtime_for(logs, _copy(clean, tmp_path / "reference"), scan=False) as (_, complete):
        expected = {(app, d): answer(complete, app, d) for app in apps for d in DETAILS}
    with _serve_early(logs, store) as (opened, loading, client):
        for app in apps:
            for detail in DETAILS:
                assert answer(client, app, detail) == expected[app, detail], (app, detail)
        assert not loading.loaded.is_set() and len(opened.index) == 0, "the listing was loaded"
        assert loading.pending.runtime is None and not loading.pending.wanted.is_set(), "the runtime was waited for"
        states = opened.readers.states if opened.readers is not None else None
        assert states is not None and states.loads >= len(apps) and states.builds == 0, "not read from the snapshots"

        # An id with no listing row waits for the index, then (a miss may be an app the
        # scan has not reached) for the runtime's on-demand indexing.
        def load_when_asked() -> None:
            assert loading.pending.wanted.wait(30)
            loading.load()
            loading.pending.set(complete_runtime(opened, client.app))

        loader = threading.Thread(target=load_when_asked)
        loader.start()
        # The id of a listed app inside another string must not match its rows.
        assert client.get(f"{URL}/{apps[0]}x/jobs").status_code == 404
        loader.join()
        assert loading.loaded.is_set()


def test_a_lying_app_id_key_is_never_served(built, tmp_path: Path) -> None:
    """The ``app_id`` key is outside the row checksum: a row found by a wrong key is refused."""
    logs, clean, body, _ = built
    store = _copy(clean, tmp_path / "store")
    first, second = [a["id"] for a in orjson.loads(body)][:2]
    db = sqlite3.connect(store / "catalog.sqlite")
    db.execute("UPDATE listing SET app_id = ? WHERE app_id = ?", (second, first))
    db.commit()
    db.close()
    catalog = Catalog(str(store), None, read_only=True)
    found = catalog.listed_attempts(second)
    assert found and {e.app_id for e in found} == {second}  # the moved rows are skipped
    assert catalog.listed_attempts(first) == []
    catalog.close()


def test_an_index_change_alone_also_stops_it(built, tmp_path: Path) -> None:
    """E.g. a record the full disk kept out of the catalog: the index differs, the counter not."""
    logs, clean, body, _ = built
    store = _copy(clean, tmp_path / "store")
    with _serve_early(logs, store) as (opened, loading, client):
        loading.load()
        assert client.get(URL).content == body
        opened.index.remove(sorted(opened.index.paths())[0])
        assert client.get(URL).content == unfiltered_body(opened.index.sorted_apps()) != body


def test_a_stale_file_is_not_served(built, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    logs, clean, body, _ = built
    store = _copy(clean, tmp_path / "store")
    catalog = Catalog(str(store), f"file:{logs}")
    records = catalog.load().records
    gone = sorted(p for p, r in records.items() if r.app_id is not None)[0]
    catalog.delete([gone])
    catalog.close()
    assert verify_store(str(store)).list_file == "stale"
    with caplog.at_level(logging.INFO, logger="sparkhist.server"):
        with _serve_early(logs, store) as (opened, loading, client):
            assert opened.stored is None and loading.loaded.is_set()  # the listing was loaded before binding
            got = client.get(URL).content
    assert "is stale" in caplog.text
    assert got != body and len(orjson.loads(got)) == len(orjson.loads(body)) - 1


def test_a_replaced_catalog_does_not_match_an_old_file(built, tmp_path: Path) -> None:
    """A new database starts its counter again: its id tells it apart."""
    logs, clean, body, _ = built
    store = _copy(clean, tmp_path / "store")
    old = list_file.read(str(store))
    for suffix in ("", "-wal", "-shm"):
        if (store / f"catalog.sqlite{suffix}").exists():
            (store / f"catalog.sqlite{suffix}").unlink()
    catalog = Catalog(str(store), f"file:{logs}")
    assert old is not None and catalog.catalog_id != old.catalog_id and not old.matches(catalog)
    catalog.close()


@pytest.mark.parametrize("damage", ["flip", "truncate", "header", "empty"])
def test_a_damaged_file_is_not_served(built, tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    logs, clean, body, _ = built
    store = _copy(clean, tmp_path / "store")
    path = store / list_file.LIST_FILE
    blob = bytearray(path.read_bytes())
    if damage == "flip":
        blob[len(blob) // 2] ^= 0x04
    elif damage == "truncate":
        del blob[-10:]
    elif damage == "header":
        blob[len(list_file.MAGIC) + 8] ^= 0x01  # the counter
    else:
        blob = bytearray()
    path.write_bytes(bytes(blob))
    report = verify_store(str(store))
    assert report.list_file.startswith("damaged") and not report.ok
    from click.testing import CliRunner

    from sparkhist.cli import main

    result = CliRunner().invoke(main, ["verify", "--store", str(store), "--log-dir", str(logs)])
    assert result.exit_code == 1 and "application list file: damaged" in result.output, result.output
    with caplog.at_level(logging.WARNING, logger="sparkhist.store"):
        with _serve_early(logs, store) as (opened, loading, client):
            assert opened.stored is None and loading.loaded.is_set()
            assert client.get(URL).content == body  # from the index
    assert "application list file" in caplog.text


def test_catalog_counter_moves_with_the_listing_only(tmp_path: Path, built) -> None:
    logs, clean, _, _ = built
    store = _copy(clean, tmp_path / "store")
    catalog = Catalog(str(store), f"file:{logs}")
    records = catalog.load().records
    start = catalog.listing_counter
    for record in records.values():
        record.last_processed += 1  # a scan of unchanged logs: listing rows untouched
    catalog.put(records.values())
    assert catalog.listing_counter == start
    first = next(r for r in records.values() if r.app_id is not None)
    first.listing.app_name = "renamed"
    catalog.put([first])
    assert catalog.listing_counter == start + 1
    catalog.delete([first.path])
    assert catalog.listing_counter == start + 2
    ident = catalog.catalog_id
    catalog.close()
    again = Catalog(str(store), f"file:{logs}")
    assert (again.catalog_id, again.listing_counter) == (ident, start + 2)  # persisted
    again.close()


def _answers(client: TestClient, ids: list[str]) -> dict[str, tuple[int, bytes]]:
    urls = [URL, *(f"{URL}?{q}" for q in FILTERED), *(f"{URL}/{i}" for i in ids[:3])]
    out = {}
    for url in urls:
        r = client.get(url)
        out[url] = (r.status_code, r.content)
    return out


def _flip(rng: random.Random, path: Path) -> None:
    data = bytearray(path.read_bytes())
    if not data or rng.random() < 0.2:
        path.write_bytes(bytes(data[: rng.randrange(len(data))]) if data else b"")
        return
    for _ in range(rng.randint(1, 4)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))


def test_random_damage_never_serves_a_wrong_list(built, tmp_path: Path) -> None:
    """Random damage to the list file or the catalog, through ``serve``'s start: the list
    served before the index loads and after are the clean store's, or lack damaged rows."""
    logs, clean, body, filtered = built
    expected_apps = orjson.loads(body)
    ids = [a["id"] for a in expected_apps]
    rng = random.Random(11)
    targets = [list_file.LIST_FILE, "catalog.sqlite"]
    served_from_file = 0
    for trial in range(int(os.environ.get("SPARKHIST_LIST_FILE_TRIALS", "30"))):
        store = _copy(clean, tmp_path / f"trial{trial}")
        target = rng.choice(targets)
        _flip(rng, store / target)
        with _serve_early(logs, store) as (opened, loading, client):
            first = client.get(URL)
            served_from_file += not loading.loaded.is_set()
            got = orjson.loads(first.content) if first.status_code == 200 else None
            if got is not None:
                assert all(app in expected_apps for app in got), f"trial {trial}: {target}"
            if not loading.loaded.is_set():
                assert first.content == body, f"trial {trial}: {target}"
            loading.load()
            now = orjson.loads(client.get(URL).content)
            assert all(app in expected_apps for app in now), f"trial {trial}: {target}"
            if now == expected_apps:
                for url, (status, content) in _answers(client, ids).items():
                    if url != URL and "?" in url:
                        assert (status, content) == (200, filtered[url.split("?", 1)[1]]), f"trial {trial}: {url}"
        shutil.rmtree(store)
    assert served_from_file > 0  # flips in the catalog's unused pages leave the file current


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_writes_the_file_at_a_clean_stop_and_answers_from_it(built, tmp_path: Path) -> None:
    logs, clean, body, _ = built
    store = _copy(clean, tmp_path / "store")
    (store / list_file.LIST_FILE).unlink()

    def run() -> str:
        port = _free_port()
        proc = subprocess.Popen([sys.executable, "-m", "sparkhist.cli", "serve", "--log-dir", str(logs), "--store",
                                 str(store), "--port", str(port), "--scan-interval", "3600"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ})
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    conn.request("GET", URL)
                    response = conn.getresponse()
                    assert (response.status, response.read()) == (200, body)
                    conn.close()
                    break
                except ConnectionRefusedError:
                    assert proc.poll() is None and time.monotonic() < deadline
                    time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()[-2000:]
        return err.decode()

    first = run()
    assert "applications listed" in first and list_file.read(str(store)) is not None
    second = run()
    assert "stored application list" in second
    assert verify_store(str(store)).list_file == "current"
