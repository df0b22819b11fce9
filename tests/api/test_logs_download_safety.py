"""``/applications/{id}/logs`` zips the log's own regular files and nothing else.

Before: every non-hidden name in a rolling directory went into the zip, read through
whatever it pointed to (``shadow -> /etc/shadow`` came out in the download), a FIFO in
it made the request wait forever for a writer, and a single-file log replaced by a
link out of the log directory after it was indexed was sent as that link's target.
"""

from __future__ import annotations

import io
import os
import shutil
import threading
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from sparkhist.config import load_settings
from sparkhist.server import Runtime, build_runtime
from support.conformance import SPARK401

EVENTLOGS = SPARK401 / "eventlogs"
ROLLING = "eventlog_v2_local-1795972918271"
ROLLING_APP = "local-1795972918271"
SINGLE = "local-1795972896863"
SECRET = b"TOP SECRET: never in a download\n"
HANG_LIMIT = 30.0


@pytest.fixture()
def logs(tmp_path: Path) -> Path:
    out = tmp_path / "logs"
    out.mkdir()
    shutil.copytree(EVENTLOGS / ROLLING, out / ROLLING)
    shutil.copyfile(EVENTLOGS / SINGLE, out / SINGLE)
    for path in [out, *out.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    (tmp_path / "secret.txt").write_bytes(SECRET)
    return out


@contextmanager
def serving(logs: Path, store: Path) -> Iterator[tuple[Runtime, TestClient]]:
    rt = build_runtime(load_settings({"log_dir": str(logs), "store_dir": str(store), "index_workers": 1}, environ={}))
    try:
        assert rt.loop.lock.try_acquire()
        assert rt.scanner.scan_once().ok
        with TestClient(rt.app) as client:
            yield rt, client
    finally:
        rt.close()


def within(seconds: float, fn: Callable[[], Any]) -> Any:
    out: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: out.update(value=fn()), daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"the download was still blocked after {seconds:.0f}s")
    return out["value"]


def zip_of(response: Any) -> dict[str, bytes]:
    assert response.status_code == 200, response.text[:300]
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def own_files(directory: Path) -> dict[str, bytes]:
    return {f"{directory.name}/{p.name}": p.read_bytes() for p in directory.iterdir() if p.is_file() and not p.is_symlink()}


def test_links_out_of_a_rolling_directory_are_never_zipped(logs: Path, tmp_path: Path) -> None:
    rolling = logs / ROLLING
    expected = {f"{ROLLING}/": b"", **own_files(rolling)}
    os.symlink("/etc/shadow", rolling / "shadow")
    os.symlink("../../secret.txt", rolling / "notes")
    os.symlink("..", rolling / "up")  # a directory out of it
    os.symlink(f"../{SINGLE}", rolling / "other-log")  # another log: outside this one's directory
    os.symlink(f"appstatus_{ROLLING_APP}", rolling / "status-link")  # inside: still one of its files
    expected[f"{ROLLING}/status-link"] = (rolling / f"appstatus_{ROLLING_APP}").read_bytes()

    with serving(logs, tmp_path / "store") as (_, client):
        got = zip_of(client.get(f"/api/v1/applications/{ROLLING_APP}/logs"))
    assert got == expected
    assert not any(SECRET in data for data in got.values())


def test_a_fifo_in_a_rolling_directory_does_not_block_the_download(logs: Path, tmp_path: Path) -> None:
    rolling = logs / ROLLING
    expected = {f"{ROLLING}/": b"", **own_files(rolling)}
    fifo = rolling / "pipe"
    os.mkfifo(fifo)
    with serving(logs, tmp_path / "store") as (_, client):
        try:
            got = zip_of(within(HANG_LIMIT, lambda: client.get(f"/api/v1/applications/{ROLLING_APP}/logs")))
        finally:
            try:  # the code before the fix waits in open(): a writer that comes and goes releases it
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
    assert got == expected


def test_a_log_swapped_for_a_link_out_of_the_directory_is_not_sent(logs: Path, tmp_path: Path) -> None:
    with serving(logs, tmp_path / "store") as (_, client):
        assert zip_of(client.get(f"/api/v1/applications/{SINGLE}/logs")) == {SINGLE: (logs / SINGLE).read_bytes()}
        os.unlink(logs / SINGLE)
        os.symlink(tmp_path / "secret.txt", logs / SINGLE)  # after it was indexed
        response = client.get(f"/api/v1/applications/{SINGLE}/logs")
    assert SECRET not in response.content
    assert response.status_code == 503 and response.text == f"Event logs are not available for app: {SINGLE}."
