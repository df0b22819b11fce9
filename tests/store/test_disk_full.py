"""Failure scenario 4: the store's disk fills up, for real (a small tmpfs), then frees up.

Nothing written half, nothing damaged, every application still answered (from memory
when its snapshot could not be saved), the budget held, and the scan catches up by
itself once space returns.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkhist.config import load_settings
from sparkhist.devtools.scale import load_template, scale
from sparkhist.server import build_runtime
from sparkhist.store.verify import verify_store
from support.conformance import SPARK401

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)")


@pytest.fixture()
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4096k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("disk") / "logs"
    templates = [load_template(SPARK401 / "eventlogs" / n) for n in ("local-1795972896863", "local-1795972915174.zstd")]
    scale(templates, dest, 60)
    return dest


def _runtime(logs: Path, store: Path, **settings):
    runtime = build_runtime(load_settings({"log_dir": str(logs), "store_dir": str(store), **settings}, environ={}))
    assert runtime.loop.role == "writer"
    return runtime


def test_disk_fills_during_scan_then_frees(tmpfs: Path, logs: Path) -> None:
    store = tmpfs / "store"
    filler = tmpfs / "filler"
    # Watermarks off (1.0): this test is about writes that really fail with ENOSPC.
    runtime = _runtime(logs, store, disk_cleanup_ratio=1.0, disk_critical_ratio=1.0)
    # Leave room for the catalog and a few snapshots only: the rest hit ENOSPC.
    free = os.statvfs(tmpfs).f_bavail * os.statvfs(tmpfs).f_frsize
    filler.write_bytes(b"\0" * max(0, free - 300_000))

    report = runtime.scanner.scan_once()
    assert report.ok and report.listed == 60
    assert len(runtime.index) == 60, "the listing survives a full disk"
    assert report.unsaved > 0, "the disk was meant to fill up during the scan"
    assert runtime.scanner.indexer.unsaved > 0

    # No partial or damaged file, and every application still answers.
    assert verify_store(str(store)).ok
    assert not [n for n in os.listdir(store / "snapshots") if n.endswith(".tmp")]
    client_app = runtime.app
    from starlette.testclient import TestClient

    with TestClient(client_app) as client:
        for app in runtime.index.sorted_apps():
            response = client.get(f"/api/v1/applications/{app.id}/jobs")
            assert response.status_code == 200 and len(response.json()) == 10

        # Space returns: the next scan saves what it could not, by itself.
        filler.unlink()
        report = runtime.scanner.scan_once()
        assert report.unsaved == 0
        assert not [r for r in runtime.scanner.records.values() if r.needs_full_index]
    runtime.catalog.close()
    runtime.loop.lock.release()
    final = verify_store(str(store))
    assert final.ok and final.snapshots_ok == 60 and final.snapshots_missing == 0


def test_cleanup_watermark_keeps_a_real_file_system_under_it(tmpfs: Path, logs: Path) -> None:
    runtime = _runtime(logs, tmpfs / "store", disk_cleanup_ratio=0.5)
    report = runtime.scanner.scan_once()
    budget = runtime.scanner.indexer.budget
    st = os.statvfs(tmpfs)
    used = 1 - st.f_bavail / st.f_blocks
    print(f"\ncleanup watermark 50%: file system {used:.1%} used after the scan, "
          f"{budget.evictions['watermark']} snapshots evicted")
    assert used < 0.5 + 0.02, f"file system {used:.0%} used"
    assert budget.evictions["watermark"] > 0 and report.indexed == 60 and report.unsaved == 0
    assert verify_store(str(tmpfs / "store")).ok
    runtime.catalog.close()
    runtime.loop.lock.release()


def test_disk_budget_evicts_least_recently_used(tmp_path: Path, logs: Path) -> None:
    runtime = _runtime(logs, tmp_path / "store", store_max_disk=400_000)
    report = runtime.scanner.scan_once()
    budget = runtime.scanner.indexer.budget
    on_disk = sum(f.stat().st_size for f in (tmp_path / "store" / "snapshots").iterdir())
    assert budget.total == on_disk <= 400_000
    assert budget.evictions["budget"] > 0 and report.indexed == 60
    # An evicted application is rebuilt on demand, exactly.
    from starlette.testclient import TestClient

    snapshots = tmp_path / "store" / "snapshots"
    evicted = [a for a in runtime.index.sorted_apps()
               if not (snapshots / os.path.basename(runtime.snapshots.path_for(a.attempts[0].log_path))).exists()]
    assert evicted
    victim = evicted[0]
    twin = next(a for a in runtime.index.sorted_apps()
                if a not in evicted and a.attempts[0].log_kind == victim.attempts[0].log_kind
                and a.attempts[0].log_path.endswith(".zstd") == victim.attempts[0].log_path.endswith(".zstd"))
    with TestClient(runtime.app) as client:
        stages = client.get(f"/api/v1/applications/{victim.id}/stages")
        assert stages.status_code == 200
        # same template, same stages: the rebuilt state equals one that was never evicted
        assert stages.json() == client.get(f"/api/v1/applications/{twin.id}/stages").json()
    assert budget.total <= 400_000
    runtime.catalog.close()
    runtime.loop.lock.release()


def test_watermarks_stop_writes_when_critical(tmp_path: Path, logs: Path) -> None:
    runtime = _runtime(logs, tmp_path / "store")
    budget = runtime.scanner.indexer.budget
    budget.used_ratio = lambda path: 0.95  # the file system reports itself 95 % full
    report = runtime.scanner.scan_once()
    assert budget.critical and report.unsaved == 60 and len(runtime.index) == 60
    budget.used_ratio = lambda path: 0.5
    report = runtime.scanner.scan_once()
    assert not budget.critical and report.indexed == 60
    runtime.catalog.close()
    runtime.loop.lock.release()
