"""Restart time: ``sparkhist serve`` on an existing store, from spawn to a full application list.

    .venv/bin/python bench/restart.py                    # 10,000 and 100,000 apps, median of 5 / 3 runs
    .venv/bin/python bench/restart.py --apps 10000 --runs 7
    .venv/bin/python bench/restart.py --apps 10000 --breakdown   # in-process phases too
    .venv/bin/python bench/restart.py --shs              # the real SHS beside it, same logs, same run
    .venv/bin/python bench/restart.py --follow --apps 100000   # a serving process's catalog follow after one new log

The logs are slim copies of the conformance logs (their listing events, executor and
resource-profile lines: ~3 kB each, so 100,000 of them fit on a small disk), written
with fixed mtimes and cached under ``~/.cache/sparkhist/bench-restart-<N>``.

**How the store is built.** The distinct templates (one per conformance log) are
scanned and fully indexed for real, by a real runtime. The store of N applications is
then *written*, not scanned: each scaled copy gets its template's catalog record with
its own path, app id, size and mtime (written through :class:`Catalog`, so in the
format of the code measured), and a hard link to its template's snapshot. A scan of
100,000 logs takes too long on a 2-core box to be part of a benchmark; the records are
the ones a scan would write (the background scan after the restart finds every log
unchanged: asserted with ``--check-scan``).

**What is timed.** A real ``sparkhist serve`` subprocess (the console script), from
``Popen`` to the last byte of ``GET /api/v1/applications``; the client retries the
connection every 2 ms until the socket is bound. The body is checked (length and
number of applications) and the process stopped with SIGTERM before the next run.
The package is byte-compiled first (``compileall``, into its ``__pycache__``), as an
installed package is: with ``PYTHONDONTWRITEBYTECODE`` set, each start would otherwise
compile every sparkhist module again (~0.1 s of CPU that no deployment pays).

**The stored list.** A store holds the pre-rendered list once a server has stopped
cleanly on it (``application-list.bin``): the untimed warm-up run writes it, so the
timed runs measure a restart that answers from it. Its first line of log says which
way a run started ("stored application list" or "applications listed").
**The real SHS beside it** (``--shs``): the stock SHS 4.3.0 (``servers.shs``: the
pyspark jars, full JIT, ``-Xmx1g``) with ``spark.history.store.path`` on a store of its
own over the same logs. Its store is built the only way it can be: a cold start that
lists every log (timed too), then a clean stop. Each timed restart runs from spawn to
a ``/applications`` answer listing every app (``servers.wait_listed``: the poller of
``run.py``, a pause of 5 % of the time elapsed between polls). At 100,000 apps the cold
start takes minutes; the SHS's store is kept in ``--workdir`` when one is given.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: ``--src DIR`` (before anything else on the command line): measure another copy of the
#: package (e.g. the code before a change), for builds and servers alike.
SRC = Path(sys.argv[2]).resolve() if len(sys.argv) > 2 and sys.argv[1] == "--src" else ROOT / "src"
sys.path.insert(0, str(SRC))

from sparkhist.devtools.scale import Template, load_template, scale  # noqa: E402

TEMPLATES = ROOT.parent / "shared" / "conformance" / "spark-4.0.1" / "eventlogs"
SLIM_EVENTS = (b'{"Event":"SparkListenerLogStart"', b'{"Event":"SparkListenerApplicationStart"',
               b'{"Event":"SparkListenerApplicationEnd"', b'{"Event":"SparkListenerResourceProfileAdded"',
               b'{"Event":"SparkListenerExecutorAdded"', b'{"Event":"SparkListenerBlockManagerAdded"')
MTIME_BASE = 1_750_000_000.0
SCRIPT = Path(sys.executable).with_name("sparkhist")


def slim_templates() -> list[Template]:
    out = []
    for path in sorted(TEMPLATES.iterdir()):
        t = load_template(path)
        lines = tuple(line for line in t.lines if line.startswith(SLIM_EVENTS))
        # Plain single files: the cheapest layout to list and stat at 100,000 logs.
        out.append(Template(t.path, t.app_id, None, "single", t.in_progress, lines))
    return out


def ensure_logs(apps: int) -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sparkhist"
    logs = cache / f"bench-restart-{apps}"
    if logs.is_dir():
        return logs
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-restart-{apps}-", dir=cache))
    t0 = time.monotonic()
    scale(slim_templates(), tmp, apps, codec=None, kind="single", mtime_base=MTIME_BASE)
    tmp.rename(logs)
    print(f"wrote {apps} slim logs to {logs} in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    return logs


def build_store(logs: Path, store: Path, templates: int) -> None:
    """A real scan of the first ``templates`` logs, then one record and snapshot link per log."""
    from sparkhist.config import load_settings
    from sparkhist.server import build_runtime
    from sparkhist.source.local import LocalSource
    from sparkhist.store.catalog import Catalog
    from sparkhist.store.snapshots import snapshot_name

    seed_logs = store.parent / (store.name + "-seed-logs")
    seed_store = store.parent / (store.name + "-seed")
    seed_logs.mkdir(parents=True)
    names = sorted(os.listdir(logs))
    for name in names[:templates]:
        os.link(logs / name, seed_logs / name)
    rt = build_runtime(load_settings({"log_dir": str(seed_logs), "store_dir": str(seed_store), "index_workers": 1},
                                     environ={}))
    assert rt.loop.lock.try_acquire()
    report = rt.scanner.scan_once()
    assert report.ok and not report.failed, report
    seeds = [rt.scanner.records[str(seed_logs / n)] for n in names[:templates]]
    seed_snapshots = [rt.snapshots.path_for(r.path) for r in seeds]
    rt.close()

    source = LocalSource(str(logs))
    catalog = Catalog(str(store), source.root)
    snap_dir = store / "snapshots"
    snap_dir.mkdir(parents=True, exist_ok=True)
    batch = []
    for i, name in enumerate(names):
        seed = seeds[i % templates]
        path = str(logs / name)
        st = os.stat(path)
        record = type(seed).from_dict(seed.to_dict())
        old_id, new_id = seed.listing.app_id, name.split(".")[0]
        record.path = path
        record.listing.app_id = new_id
        if record.listing.app_name and old_id in record.listing.app_name:
            record.listing.app_name = record.listing.app_name.replace(old_id, new_id)
        assert st.st_size == seed.size_of_last, (path, st.st_size, seed.size_of_last)
        record.mtime_ms = int(st.st_mtime * 1000)
        if record.listing.completed:
            record.last_updated = record.mtime_ms
        os.link(seed_snapshots[i % templates], snap_dir / snapshot_name(path))
        batch.append(record)
        if len(batch) >= 5000:
            catalog.put(batch)
            batch = []
    catalog.put(batch)
    catalog.close()
    shutil.rmtree(seed_logs)
    shutil.rmtree(seed_store)


def follow_cost(apps: int, rounds: int = 5) -> dict[str, Any]:
    """A serving process's catalog follow at ``apps`` catalog entries, after one new log.

    The records are real (the conformance logs scanned and indexed once), copied under
    new paths and ids into a catalog of ``apps`` rows; a serving process's objects (the
    catalog read-only, its index, a ``Scanner`` loaded from it, the ``CatalogFollower``)
    follow it while the writer commits one new record per round. Timed: one follow step
    (``follow`` where it exists, else the full ``reload``), wall and CPU, median of ``rounds``.
    """
    from sparkhist.config import load_settings
    from sparkhist.scan.scanner import Scanner
    from sparkhist.server import build_runtime
    from sparkhist.server.replica import CatalogFollower
    from sparkhist.source.local import LocalSource
    from sparkhist.store.applications import ApplicationIndex
    from sparkhist.store.catalog import Catalog

    work = Path(tempfile.mkdtemp(prefix="sparkhist-follow-"))
    try:
        rt = build_runtime(load_settings({"log_dir": str(TEMPLATES), "store_dir": str(work / "seed"), "index_workers": 1},
                                         environ={}))
        assert rt.loop.lock.try_acquire()
        assert rt.scanner.scan_once().ok
        seeds = [r for r in rt.scanner.records.values() if r.app_id is not None]
        rt.close()
        logs = work / "logs"
        logs.mkdir()
        source = LocalSource(str(logs))
        writer = Catalog(str(work / "store"), source.root)

        def copy(i: int) -> Any:
            seed = seeds[i % len(seeds)]
            record = type(seed).from_dict(seed.to_dict())
            new_id = f"local-9{i:012d}"
            record.path = str(logs / new_id)
            record.listing.app_id = new_id
            return record

        for start in range(0, apps, 5000):
            writer.put([copy(i) for i in range(start, min(apps, start + 5000))])
        reader = Catalog(str(work / "store"), None, read_only=True)
        index = ApplicationIndex()
        scanner = Scanner(source, reader, index)
        scanner.load()
        follower = CatalogFollower(scanner, os.getpid())
        step = getattr(follower, "follow", follower.reload)
        step()
        walls, cpus = [], []
        for r in range(rounds):
            record = copy(apps + r)
            writer.put([record])
            t0, c0 = time.perf_counter(), time.thread_time()
            step()
            walls.append(time.perf_counter() - t0)
            cpus.append(time.thread_time() - c0)
            assert index.get(record.app_id) is not None, "the new log is not listed after the follow"
        assert len(index) == apps + rounds
        reader.close()
        writer.close()
        return {"apps": apps, "wall_ms": statistics.median(walls) * 1000, "cpu_ms": statistics.median(cpus) * 1000,
                "how": step.__name__}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200, (response.status, body[:200])
        return body
    finally:
        conn.close()


def time_one(logs: Path, store: Path, expect_apps: int, *,
             check_scan: bool = False) -> tuple[float, float, bytes, str, float]:
    """Spawn to full list (seconds), CPU, the list, stderr, then the first app's /stages right after (seconds)."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    err = tempfile.TemporaryFile()
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(SCRIPT), "serve", "--log-dir", str(logs), "--store", str(store), "--port", str(port),
                             "--scan-interval", "3600"], stdout=subprocess.DEVNULL, stderr=err, env=env)
    try:
        while True:
            try:
                body = get(port, "/api/v1/applications")
                break
            except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
                if proc.poll() is not None:
                    err.seek(0)
                    raise RuntimeError(f"server exited {proc.returncode}: {err.read().decode()[-2000:]}") from None
                time.sleep(0.002)
        seconds = time.perf_counter() - t0
        cpu = cpu_seconds(proc.pid)
        listed = body.count(b'\n    "id" : ') or body.count(b'\n    "id": ')
        assert listed == expect_apps, (listed, expect_apps)
        # The next thing a user does: open one application (its stages).
        app_id = re.search(rb'"id" ?: ?"([^"]+)"', body)[1].decode()
        t1 = time.perf_counter()
        get(port, f"/api/v1/applications/{app_id}/stages")
        stages_s = time.perf_counter() - t1
        if check_scan:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                err.seek(0)
                if b"scan:" in err.read():
                    break
                time.sleep(0.5)
            assert get(port, "/api/v1/applications") == body, "the list changed after the first scan"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    err.seek(0)
    return seconds, cpu, body, err.read().decode(errors="replace"), stages_s


def compile_package() -> None:
    """Byte-compile the measured package (what installing it does)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(SRC / "sparkhist")], check=True,
                   stdout=subprocess.DEVNULL)


def breakdown(logs: Path, store: Path) -> dict[str, float]:
    """In-process phases of ``serve`` up to the answer (a fresh interpreter, CPU seconds of each)."""
    code = f"""
import time, json
c = time.process_time
t0 = c()
import sparkhist.cli, sparkhist.server, sparkhist.api.app, uvicorn
t1 = c()
from sparkhist.config import load_settings
from sparkhist import server
settings = load_settings({{"log_dir": {str(logs)!r}, "store_dir": {str(store)!r}}}, environ={{}})
stored = None
if hasattr(server, "_ListingLoad"):  # the stored list, when current
    opened = server._open(settings, listing=True, stored_list=True)
    index, stored = opened.index, opened.stored
elif hasattr(server, "_open"):
    opened = server._open(settings, listing=True)
    index = opened.index
else:  # before issue 4: the whole runtime
    index = server.build_runtime(settings).index
t2 = c()
if stored is not None:
    n = len(stored.body)
else:
    from sparkhist.render.encode import dumps
    from sparkhist.api.v1.applications import application_list
    from starlette.datastructures import QueryParams
    n = len(dumps(application_list(index, QueryParams(""))))
t3 = c()
print(json.dumps({{"imports": t1 - t0, "open_store": t2 - t1, "first_list": t3 - t2, "bytes": n}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(SRC)})
    import json

    return json.loads(out.stdout.strip().splitlines()[-1])


def shs_restarts(logs: Path, store: Path, apps: int, runs: int) -> dict[str, float]:
    """The real SHS on its own disk store: a cold start (builds it), then ``runs`` restarts."""
    import httpx

    import servers

    timeout = 7200.0
    out: dict[str, float] = {}
    with httpx.Client(timeout=600.0) as client:
        if not store.is_dir() or not any(store.iterdir()):
            store.mkdir(parents=True, exist_ok=True)
            with servers.shs(logs, store) as shs:
                out["shs_cold_s"] = servers.wait_listed(shs, apps, client, timeout)
            print(f"  SHS cold start (builds its store): {apps} listed after {out['shs_cold_s']:.1f}s",
                  file=sys.stderr)
        times = []
        for i in range(runs):
            with servers.shs(logs, store) as shs:
                times.append(servers.wait_listed(shs, apps, client, timeout))
            print(f"  {apps} apps SHS restart {i + 1}: {times[-1]:.3f}s", file=sys.stderr)
    out.update(shs_median_s=statistics.median(times), shs_min_s=min(times), shs_max_s=max(times), shs_runs=runs)
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (robust to other load on the machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=None, help="the package's source tree to measure (first argument)")
    parser.add_argument("--apps", type=int, action="append", help="store sizes (default: 10000 and 100000)")
    parser.add_argument("--runs", type=int, default=0, help="runs per size (default 5 at <=10k, 3 above)")
    parser.add_argument("--workdir", type=Path, default=None, help="where stores are built (kept when given)")
    parser.add_argument("--breakdown", action="store_true", help="also time the phases in-process")
    parser.add_argument("--check-scan", action="store_true", help="wait for the first scan and compare the list")
    parser.add_argument("--shs", action="store_true", help="time the real SHS's restart on the same logs too")
    parser.add_argument("--shs-runs", type=int, default=0, help="SHS restarts per size (default 3 at <=10k, 2 above)")
    parser.add_argument("--follow", action="store_true", help="time a serving process's catalog follow instead")
    args = parser.parse_args(argv)
    if args.follow:
        for apps in args.apps or [1_000, 10_000, 100_000]:
            print(follow_cost(apps), flush=True)
        return 0
    compile_package()
    sizes = args.apps or [10_000, 100_000]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="sparkhist-restart-"))
    templates = len(list(TEMPLATES.iterdir()))
    rows = []
    try:
        for apps in sizes:
            logs = ensure_logs(apps)
            store = work / f"store-{apps}"
            if not (store / "catalog.sqlite").exists():
                t0 = time.monotonic()
                build_store(logs, store, templates)
                print(f"built the store of {apps} apps in {time.monotonic() - t0:.1f}s", file=sys.stderr)
            runs = args.runs or (5 if apps <= 10_000 else 3)
            time_one(logs, store, apps)  # warm the page cache, and the first run's migration if any
            times = []
            cpus = []
            stages = []
            size = 0
            for i in range(runs):
                seconds, cpu, body, stderr, stages_s = time_one(logs, store, apps, check_scan=args.check_scan and i == 0)
                times.append(seconds)
                cpus.append(cpu)
                stages.append(stages_s)
                size = len(body)
                opened = [line.split("sparkhist.server")[-1] for line in stderr.splitlines() if "opened as" in line]
                print(f"  {apps} apps run {i + 1}: {seconds:.3f}s wall, {cpu:.2f}s CPU, then /stages "
                      f"{stages_s * 1000:.0f}ms  {' | '.join(opened)}",
                      file=sys.stderr)
            row = {"apps": apps, "median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
                   "cpu_s": statistics.median(cpus), "runs": runs, "mb": size / 1e6,
                   "stages_ms": statistics.median(stages) * 1000}
            if args.breakdown:
                row.update({k: v for k, v in breakdown(logs, store).items() if k != "bytes"})
            if args.shs:
                shs_runs = args.shs_runs or (3 if apps <= 10_000 else 2)
                row.update(shs_restarts(logs, work / f"shs-store-{apps}", apps, shs_runs))
            rows.append(row)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'apps':>8} {'median':>8} {'min':>7} {'max':>7} {'CPU':>7} {'runs':>5} {'list MB':>8} "
          f"{'/stages':>8}  breakdown (in-process, CPU s)")
    for r in rows:
        extra = "  ".join(f"{k}={r[k]:.3f}" for k in ("imports", "open_store", "first_list") if k in r)
        print(f"{r['apps']:>8} {r['median_s']:>7.3f}s {r['min_s']:>6.3f}s {r['max_s']:>6.3f}s {r['cpu_s']:>6.2f}s "
              f"{r['runs']:>5} {r['mb']:>8.1f} {r['stages_ms']:>6.0f}ms  {extra}")
    if args.shs:
        print(f"\n{'apps':>8} {'SHS restart':>12} {'min':>8} {'max':>8} {'runs':>5} {'SHS cold':>9} "
              f"{'sparkhist':>10} {'ratio':>7}")
        for r in rows:
            cold = f"{r['shs_cold_s']:>8.1f}s" if "shs_cold_s" in r else f"{'(kept)':>9}"
            print(f"{r['apps']:>8} {r['shs_median_s']:>11.3f}s {r['shs_min_s']:>7.3f}s {r['shs_max_s']:>7.3f}s "
                  f"{r['shs_runs']:>5} {cold} {r['median_s']:>9.3f}s {r['shs_median_s'] / r['median_s']:>6.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
