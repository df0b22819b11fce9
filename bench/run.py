"""Benchmarks: the stock Spark History Server 4.3.0 against sparkhist, same logs, same run.

    .venv/bin/python bench/run.py [--apps N] [--quick]

Three phases, each running the SHS and then sparkhist over the same directory:

1. ``big``: the big log (one stage of 12,000 tasks) beside one small app that is opened
   first, so one-time UI set-up is not billed to the replay. Full replay: the SHS's
   first ``/stages`` answer for the big app (in memory, then with a disk store);
   sparkhist's scan (listing and full indexing, snapshots written) plus its first
   ``/stages`` answer; and, like for like (no process start in either figure), a running
   sparkhist asked for the big app's ``/stages`` the moment its log appears.
2. ``rolling``: N apps in Spark 4's default layout (rolling + zstd) plus the big app.
   Cold start and peak RSS; API latency under concurrent clients on the SHS as shipped
   (in memory); then a first start with a disk store, a warm restart, the big app's
   first ``/stages`` after it and the same latency runs on both warm servers.
3. ``plain``: N apps as uncompressed single files. Cold start, peak RSS, throughput.

Prints one table and appends it to ``bench/RESULTS.md`` (not with ``--quick``). Exit
status 1 when a phase failed (its figures are then ``n/a``); figures never fail a run.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

import corpus
import latency
import noise
import report
import servers
from report import Row, at_least, at_most, both, faster_by

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
PHASES = ("big", "rolling", "plain")


class Bench:
    """One run: its settings, the figures measured so far, and what went wrong."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.m: dict[str, float] = {}
        self.notes: list[str] = []
        self.failed: list[str] = []
        self.t_start = time.monotonic()
        self.client = httpx.Client(timeout=300.0)
        self.big_stage: tuple[int, int] | None = None
        self.source, self.source_digest = freeze_source(work)
        #: The environment of every sparkhist process: the frozen copy of the source first.
        self.env = {**os.environ, "PYTHONPATH": str(self.source)}
        self.foreign = noise.ForeignLoad()

    def say(self, message: str) -> None:
        other = f"others {self.foreign.samples[-1]:.1f} cores" if self.foreign.samples else "others n/a"
        print(f"[{time.monotonic() - self.t_start:7.1f}s | {other}] {message}", flush=True)

    def runs(self, kind: str) -> bool:
        return self.args.only in ("both", kind)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """A failing step is reported and skipped: the other figures still count."""
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - the harness reports any failing step and goes on
            self.failed.append(name)
            self.notes.append(f"FAILED: {name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            self.say(f"FAILED {name}:\n{traceback.format_exc()}")

    def store(self, name: str) -> Path:
        path = self.work / name
        shutil.rmtree(path, ignore_errors=True)
        return path

    @property
    def list_timeout(self) -> float:
        return 120 + self.args.apps * 0.12

    @property
    def scan_timeout(self) -> float:
        return 600 + self.args.apps * 0.6


def freeze_source(work: Path) -> tuple[Path, str]:
    """Copy ``src/sparkhist`` into ``work``: the run measures one version of the code even
    if the tree is edited meanwhile. Returns the copy's root and a digest of its files."""
    src = Path(__file__).resolve().parents[1] / "src" / "sparkhist"
    dest = work / "frozen-src"
    shutil.copytree(src, dest / "sparkhist", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    digest = hashlib.sha256()
    for path in sorted((dest / "sparkhist").rglob("*.py")):
        digest.update(path.relative_to(dest).as_posix().encode() + b"\0" + path.read_bytes())
    # Byte-compiled, as an installed package is: with PYTHONDONTWRITEBYTECODE set, every
    # start would otherwise compile every module again (~0.2 s of a restart).
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(dest / "sparkhist")], check=True,
                   env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""})
    return dest, digest.hexdigest()[:12]


# --------------------------------------------------------------------------- phase 1: the big log


def phase_big(b: Bench, logs: corpus.Corpus) -> None:
    """``logs``: the big app and one small app, loaded first so that one-time UI set-up
    (class loading, JIT) is not billed to the big app's replay."""
    if b.runs("SHS"):
        with b.step("SHS big-log replay, in memory"), servers.shs(logs.log_dir) as shs:
            _replay(b, shs, logs, "shs.replay.mem", "in memory")
        with b.step("SHS big-log replay, disk store"), servers.shs(logs.log_dir, b.store("shs-big")) as shs:
            _replay(b, shs, logs, "shs.replay.disk", "disk store")
    if b.runs("sparkhist"):
        with b.step("sparkhist big-log index"):
            store = b.store("sparkhist-big")
            scan = _sparkhist_scan(logs.log_dir, store, b.env)
            b.m["sh.big.scan"] = scan["wall"]
            b.m["sh.big.cpu"] = scan["cpu"]
            b.say(f"sparkhist scan of the big-log directory: {scan['wall']:.2f}s ({scan['cpu']:.2f}s CPU)")
            with servers.sparkhist(logs.log_dir, store, b.work, b.env) as sh:
                _replay(b, sh, logs, "sh.big.first_stages", "once indexed")
                b.m["sh.replay"] = scan["wall"] + b.m["sh.big.first_stages"]
        with b.step("sparkhist big-log replay in a running server"):
            _replay_live(b, logs, rounds=1 if b.args.quick else 5)


def _replay_live(b: Bench, logs: corpus.Corpus, rounds: int) -> None:
    """Like for like with the SHS's figure (its JVM start is not in it): a running sparkhist,
    listing the small app, asked for the big app's ``/stages`` the moment the big log appears
    in its directory (renamed in: the on-demand path finds and indexes it; the scan loop and
    the file-system watch may start on it too, as they would). Seconds from the rename to the
    answer; the median of ``rounds``, each with a fresh server and store."""
    (big_log,) = [p for p in logs.log_dir.iterdir() if logs.big_app_id and logs.big_app_id in p.name]
    times: list[float] = []
    for i in range(rounds):
        root = b.store(f"sparkhist-live-{i}")
        log_dir, aside = root / "logs", root / "aside"
        log_dir.mkdir(parents=True)
        aside.mkdir()
        for p in logs.log_dir.iterdir():
            (shutil.copytree if p.is_dir() else shutil.copy2)(p, (aside if p == big_log else log_dir) / p.name)
        with servers.sparkhist(log_dir, root / "store", b.work, b.env) as sh:
            servers.wait_listed(sh, logs.apps - 1, b.client, b.list_timeout)
            (small,) = [a["id"] for a in b.client.get(sh.url("applications")).json()]
            servers.timed_get(b.client, sh.url(f"applications/{small}/stages"))
            time.sleep(1.0)  # the start-up's own work done, as the SHS's listing is before its replay
            t = time.perf_counter()
            (aside / big_log.name).rename(log_dir / big_log.name)
            _, stages = servers.timed_get(b.client, sh.url(f"applications/{logs.big_app_id}/stages"))
            times.append(time.perf_counter() - t)
        if not stages:
            raise RuntimeError("the big app's /stages answered no stage")
        shutil.rmtree(root, ignore_errors=True)
    b.m["sh.replay.live"] = statistics.median(times)
    b.say(f"sparkhist big log appearing in a running server until its /stages answers: median "
          f"{b.m['sh.replay.live']:.3f}s of {rounds} ({', '.join(f'{t:.3f}' for t in times)})")


def _replay(b: Bench, server: servers.Server, logs: corpus.Corpus, key: str, how: str) -> None:
    servers.wait_listed(server, logs.apps, b.client, b.list_timeout)
    listing = b.client.get(server.url("applications")).json()
    (small,) = [a["id"] for a in listing if a["id"] != logs.big_app_id]
    warm_up, _ = servers.timed_get(b.client, server.url(f"applications/{small}/stages"))
    b.m.setdefault(f"{'shs' if server.kind == 'SHS' else 'sh'}.first_ui", warm_up)
    seconds, stages = servers.timed_get(b.client, server.url(f"applications/{logs.big_app_id}/stages"))
    b.m[key] = seconds
    b.big_stage = b.big_stage or _biggest_stage(stages)
    b.say(f"{server.kind} first /stages of the big app ({how}): {seconds:.3f}s "
          f"(after a warm-up app: {warm_up:.3f}s)")


def _sparkhist_scan(log_dir: Path, store: Path, env: dict[str, str]) -> dict[str, Any]:
    """``bench/scan_once.py`` in a child process: the scan's wall and CPU seconds."""
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("scan_once.py")), str(log_dir), str(store)],
                          capture_output=True, text=True, timeout=7200, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"sparkhist scan failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["failed"] or result["errors"]:
        first = dict(list(result["errors"].items())[:3])
        raise RuntimeError(f"sparkhist scan: {result['failed']} failed, {len(result['errors'])} errors, e.g. {first}")
    return result


def _biggest_stage(stages: list[dict[str, Any]]) -> tuple[int, int]:
    stage = max(stages, key=lambda s: s.get("numTasks", 0))
    return int(stage["stageId"]), int(stage["attemptId"])


# --------------------------------------------------------------------------- phase 2: rolling + zstd


def phase_rolling(b: Bench, logs: corpus.Corpus) -> None:
    n, app = logs.apps, logs.big_app_id
    sh_store = b.store("sparkhist-rolling")
    shs_store = b.store("shs-rolling")
    if b.runs("SHS"):
        with b.step("SHS cold start, rolling"), servers.shs(logs.log_dir) as shs:
            b.m["shs.cold.rolling"] = servers.wait_listed(shs, n, b.client, b.list_timeout)
            b.m["shs.rss.rolling"] = shs.peak_rss_mb()
            b.say(f"SHS cold start, {n:,} rolling apps listed: {b.m['shs.cold.rolling']:.2f}s, "
                  f"peak RSS {b.m['shs.rss.rolling']:.0f} MB")
            seconds, stages = servers.timed_get(b.client, shs.url(f"applications/{app}/stages"))
            b.big_stage = b.big_stage or _biggest_stage(stages)
            b.say(f"SHS (in memory) big app replayed after listing {n:,} apps: {seconds:.2f}s")
            _latency(b, shs, logs, "shs")  # the SHS as shipped: everything in memory
            b.m["shs.rss.loaded"] = shs.peak_rss_mb()
    if b.runs("sparkhist"):
        with b.step("sparkhist cold start, rolling"), servers.sparkhist(logs.log_dir, sh_store, b.work, b.env) as sh:
            _sparkhist_cold(b, sh, logs, "rolling")
    if b.runs("SHS"):
        with b.step("SHS first start with a disk store, rolling"), servers.shs(logs.log_dir, shs_store) as shs:
            b.m["shs.cold_store.rolling"] = servers.wait_listed(shs, n, b.client, b.list_timeout)
            seconds, _ = servers.timed_get(b.client, shs.url(f"applications/{app}/stages"))  # fills its app store
            b.say(f"SHS with an empty disk store, listed: {b.m['shs.cold_store.rolling']:.2f}s; "
                  f"big app replayed into it: {seconds:.2f}s")
        with b.step("SHS warm restart, rolling"), servers.shs(logs.log_dir, shs_store) as shs:
            _warm_restart(b, shs, logs, "shsd")
    if b.runs("sparkhist"):
        with b.step("sparkhist warm restart, rolling"), servers.sparkhist(logs.log_dir, sh_store, b.work, b.env) as sh:
            _warm_restart(b, sh, logs, "sh")
    shutil.rmtree(sh_store, ignore_errors=True)
    shutil.rmtree(shs_store, ignore_errors=True)


def _sparkhist_cold(b: Bench, sh: servers.Server, logs: corpus.Corpus, layout: str) -> None:
    b.m[f"sh.cold.{layout}"] = servers.wait_listed(sh, logs.apps, b.client, b.list_timeout)
    b.m[f"sh.rss.listed.{layout}"] = sh.peak_rss_mb()  # the moment the SHS's figure is taken at
    b.say(f"sparkhist cold start, {logs.apps:,} {layout} apps listed: {b.m[f'sh.cold.{layout}']:.2f}s, "
          f"peak RSS {b.m[f'sh.rss.listed.{layout}']:.0f} MB ({sh.rss_breakdown()})")
    done = servers.wait_first_scan(sh, b.client, b.scan_timeout)
    b.m[f"sh.rss.{layout}"] = sh.peak_rss_mb()
    b.m[f"sh.indexed.{layout}"] = done.since_start
    cores = done.cpu_seconds / done.since_start
    b.m[f"sh.mbps.{layout}"] = logs.raw_mb / done.duration / cores
    b.m[f"sh.eps.{layout}"] = logs.events / done.duration / cores
    failed = servers.scan_failures(done.health)
    if failed:
        b.notes.append(f"sparkhist's first scan of the {layout} corpus skipped {failed} logs")
    indexed = servers.scan_indexed(done.health)
    if indexed is not None and indexed < logs.apps:
        b.notes.append(f"sparkhist's first scan of the {layout} corpus fully indexed only {indexed:,} of "
                       f"{logs.apps:,} apps: its throughput figures are overstated")
    b.say(f"sparkhist first scan done (every app fully indexed) {done.since_start:.1f}s after start; scan "
          f"{done.duration:.1f}s, {done.cpu_seconds:.1f}s CPU ({cores:.2f} cores); peak RSS {b.m[f'sh.rss.{layout}']:.0f} MB "
          f"({sh.rss_breakdown()}: server + workers)")
    # Idle indexing workers exit (sparkhist.scan.workers.IDLE_SECONDS): what the server holds from then on.
    deadline = time.monotonic() + 90
    while sh.worker_count() and time.monotonic() < deadline:
        time.sleep(1)
    b.m[f"sh.rss.steady.{layout}"] = sh.rss_mb()
    b.say(f"sparkhist after indexing: {sh.worker_count()} indexing workers left, {sh.process_count()} process(es) "
          f"({sh.rss_breakdown()}), RSS {b.m[f'sh.rss.steady.{layout}']:.0f} MB")


def _warm_restart(b: Bench, server: servers.Server, logs: corpus.Corpus, key: str) -> None:
    n, app = logs.apps, logs.big_app_id
    b.m[f"{key}.restart"] = servers.wait_listed(server, n, b.client, b.list_timeout)
    seconds, stages = servers.timed_get(b.client, server.url(f"applications/{app}/stages"))
    b.m[f"{key}.restart.stages"] = seconds * 1000
    b.big_stage = b.big_stage or _biggest_stage(stages)
    b.say(f"{server.kind} warm restart: all {n:,} listed {b.m[f'{key}.restart']:.3f}s after start; "
          f"first big-app /stages {seconds * 1000:.1f}ms")
    _latency(b, server, logs, key)
    b.m[f"{key}.rss.loaded"] = server.peak_rss_mb()


#: Requests per second of the fixed-rate (open-loop) runs, the same for both servers: ~5 % of what
#: sparkhist answers in the closed loop (3,000-5,000/s on /stages and /taskList, 4,500/s on the 10k list),
#: and no more than the SHS's own clients got through while they moved (its closed-loop /stages: ~6
#: clients at 8.4 ms, ~700/s; its 10k list: 3-7 answers/s). bench/README.md says why.
OPEN_LOOP_RATES = {"list": 2.0, "stages": 200.0, "tasks": 200.0}
#: A ``--quick`` (smoke) run's fixed-rate schedule: the mode runs end to end, nothing is recorded.
QUICK_OPEN_LOOP_S = 2.0


def _latency(b: Bench, server: servers.Server, logs: corpus.Corpus, key: str) -> None:
    """p50/p99 and throughput of three endpoints under ``--concurrency`` clients, closed loop, then at a
    fixed rate (``OPEN_LOOP_RATES``, each request timed from when it was due) for ``--latency-budget`` s."""
    app = logs.big_app_id
    assert b.big_stage is not None
    stage_id, attempt = b.big_stage
    endpoints = {
        "list": "applications",
        "stages": f"applications/{app}/stages",
        "tasks": f"applications/{app}/stages/{stage_id}/{attempt}/taskList",
    }
    for name, path in endpoints.items():
        closed = latency.measure(server.url(path), total=b.args.requests, concurrency=b.args.concurrency,
                                 budget_s=b.args.latency_budget)
        opened = latency.measure_fixed_rate(server.url(path), rate=OPEN_LOOP_RATES[name],
                                            duration_s=QUICK_OPEN_LOOP_S if b.args.quick else b.args.latency_budget,
                                            concurrency=b.args.concurrency)
        for mode, result in (("lat", closed), ("open", opened)):
            _record_latency(b, server, key, f"{key}.{mode}.{name}", path, result)


def _record_latency(b: Bench, server: servers.Server, key: str, prefix: str, path: str, result: latency.Latency) -> None:
    b.m[f"{prefix}.p50"] = result.p50_ms
    b.m[f"{prefix}.p99"] = result.p99_ms
    # A percentile over an unanswered request is a lower bound (latency.censored_percentile).
    b.m[f"{prefix}.p50.censored"] = float(result.p50_censored)
    b.m[f"{prefix}.p99.censored"] = float(result.p99_censored)
    b.m[f"{prefix}.rps"] = result.per_second
    b.m[f"{prefix}.n"] = result.requests
    b.m[f"{prefix}.asked"] = result.asked
    b.m[f"{prefix}.first"] = result.first_ms
    how = "closed loop" if result.rate is None else f"fixed rate {result.rate:g} req/s"
    where = f"{server.kind} ({key}) /{path}, {how}"
    if result.errors:
        kinds = ", ".join(f"{count} × {kind}" for kind, count in sorted(result.error_kinds.items()))
        b.notes.append(f"{where}: {result.errors} failed requests under load ({kinds}); not in its percentiles")
    if result.unanswered and result.rate is None:
        b.notes.append(f"{where}: {result.unanswered} requests still unanswered when the run ended at twice its "
                       f"{b.args.latency_budget:.0f} s budget: in its percentiles at the time they were pending "
                       "(a lower bound, shown as ≥)")
    elif result.unanswered:
        b.notes.append(f"{where}: {result.unanswered} requests unanswered when the run ended at twice its "
                       f"{b.args.latency_budget:.0f} s schedule ({result.unsent} of them never sent, their connection "
                       "stuck): in its percentiles with the time from when they were due (a lower bound, shown as ≥)")
    if result.fewer_answered:
        b.notes.append(f"{where}: answered {result.requests:,} of the {result.asked:,} requests "
                       f"{'asked' if result.rate is None else 'scheduled'} ({result.per_second:.0f} req/s)")
    b.say(f"{where}: first answer {result.first_ms:.1f}ms; {result.summary()}"
          + (" (cut by the time budget)" if result.cut_by_budget else ""))


# --------------------------------------------------------------------------- phase 3: plain files


def phase_plain(b: Bench, logs: corpus.Corpus) -> None:
    if b.runs("SHS"):
        with b.step("SHS cold start, plain"), servers.shs(logs.log_dir) as shs:
            b.m["shs.cold.plain"] = servers.wait_listed(shs, logs.apps, b.client, b.list_timeout)
            b.m["shs.rss.plain"] = shs.peak_rss_mb()
            b.say(f"SHS cold start, {logs.apps:,} plain apps listed: {b.m['shs.cold.plain']:.2f}s, "
                  f"peak RSS {b.m['shs.rss.plain']:.0f} MB")
    if b.runs("sparkhist"):
        store = b.store("sparkhist-plain")
        with b.step("sparkhist cold start, plain"), servers.sparkhist(logs.log_dir, store, b.work, b.env) as sh:
            _sparkhist_cold(b, sh, logs, "plain")
        shutil.rmtree(store, ignore_errors=True)


# --------------------------------------------------------------------------- the table


def rows(b: Bench, n: int, big: corpus.Corpus, big_dir: corpus.Corpus) -> list[Row]:
    m = b.m.get
    big_label = f"{big.raw_mb:.0f} MB, {big.events:,} events"
    out = [
        Row(f"Cold start: {n:,} rolling+zstd apps (+ big app) all listed", "s", m("shs.cold.rolling"),
            m("sh.cold.rolling"), "issue 16: ≥6× faster", faster_by(6)),
        Row(f"Cold start: {n:,} plain single files all listed", "s", m("shs.cold.plain"), m("sh.cold.plain"),
            "issue 16: ≥6× faster", faster_by(6)),
        Row("Cold start with an empty disk store, rolling (sparkhist always has one)", "s",
            m("shs.cold_store.rolling"), m("sh.cold.rolling")),
        Row("Cold start until every app is fully indexed, rolling (SHS: never, replays on demand)", "s",
            None, m("sh.indexed.rolling")),
        Row("Restart with warm store: all apps listed (from process start)", "s", m("shsd.restart"), m("sh.restart"),
            "SHS 5.4 s → <0.5 s and ≥10×", both(at_most(0.5), faster_by(10))),
        Row("First UI load in a freshly started server (a small app's /stages: one-time set-up)", "s",
            m("shs.first_ui"), m("sh.first_ui")),
        Row(f"Full replay of the big log ({big_label}): SHS in memory vs sparkhist scan + first /stages", "s",
            m("shs.replay.mem"), m("sh.replay"), "SHS 2.4 s → ≥4× faster", faster_by(4)),
        Row("Full replay of the big log: SHS disk store vs sparkhist scan + first /stages", "s",
            m("shs.replay.disk"), m("sh.replay"), "SHS 5.3 s → ≥4× faster", faster_by(4)),
        Row("Full replay, like for like: SHS in memory vs a running sparkhist, log appears → first /stages", "s",
            m("shs.replay.mem"), m("sh.replay.live"),
            "SHS in memory → ≥5× faster", faster_by(5)),
        Row("  sparkhist part: scan of the big-log directory (listing + full index + snapshots)", "s", None,
            m("sh.big.scan")),
        Row("  sparkhist part: first /stages once indexed", "s", None, m("sh.big.first_stages")),
        Row("Big-log directory indexing throughput (uncompressed JSON / scan CPU s)", "MB/s/core", None,
            big_dir.raw_mb / b.m["sh.big.cpu"] if "sh.big.cpu" in b.m else None, "≥100 MB/s per core",
            at_least(100), higher_is_better=True),
        Row(f"Peak RSS, {n:,} rolling apps listed (both: the moment all are listed)", "MB",
            m("shs.rss.rolling"), m("sh.rss.listed.rolling"), "SHS 435–663 MB → ≤150 MB", at_most(150)),
        Row(f"Peak RSS, {n:,} plain apps listed (both: the moment all are listed)", "MB",
            m("shs.rss.plain"), m("sh.rss.listed.plain"), "SHS 435–663 MB → ≤150 MB", at_most(150)),
        Row("  sparkhist: peak RSS until every app is fully indexed, rolling (server + indexing workers)", "MB",
            None, m("sh.rss.rolling")),
        Row("  sparkhist: RSS once indexed and idle (workers exited), rolling", "MB", None, m("sh.rss.steady.rolling")),
        Row("  sparkhist: peak RSS until every app is fully indexed, plain (server + indexing workers)", "MB",
            None, m("sh.rss.plain")),
        Row("Peak RSS, big app loaded + latency runs: SHS in memory vs sparkhist", "MB",
            m("shs.rss.loaded"), m("sh.rss.loaded")),
        Row("Peak RSS, big app loaded + latency runs: SHS disk store vs sparkhist", "MB",
            m("shsd.rss.loaded"), m("sh.rss.loaded")),
        Row("First /stages of the big app after restart (warm stores)", "ms", m("shsd.restart.stages"),
            m("sh.restart.stages"), "SHS 0.31 s → ≤50 ms", at_most(50)),
    ]
    labels = {"list": f"GET /applications ({n + 1:,} apps)", "stages": "GET big app /stages",
              "tasks": "GET big stage /taskList"}
    for shs, how in (("shs", "SHS in memory"), ("shsd", "SHS disk store")):
        for name, label in labels.items():
            def count(mode: str, shs: str = shs, name: str = name) -> str:
                verb = "answered" if mode == "lat" else "answered/scheduled"
                return (f"{verb} {int(m(f'{shs}.{mode}.{name}.n') or 0)}/{int(m(f'{shs}.{mode}.{name}.asked') or 0)} and "
                        f"{int(m(f'sh.{mode}.{name}.n') or 0)}/{int(m(f'sh.{mode}.{name}.asked') or 0)} req")
            out += [
                Row(f"{label}, {how}: first request, alone", "ms", m(f"{shs}.lat.{name}.first"),
                    m(f"sh.lat.{name}.first")),
                Row(f"{label}, {b.args.concurrency} clients, closed loop, {how}: p50", "ms", m(f"{shs}.lat.{name}.p50"),
                    m(f"sh.lat.{name}.p50"), note=count("lat"), shs_at_least=bool(m(f"{shs}.lat.{name}.p50.censored")),
                    sparkhist_at_least=bool(m(f"sh.lat.{name}.p50.censored"))),
                Row(f"{label}, {b.args.concurrency} clients, closed loop, {how}: p99", "ms", m(f"{shs}.lat.{name}.p99"),
                    m(f"sh.lat.{name}.p99"), shs_at_least=bool(m(f"{shs}.lat.{name}.p99.censored")),
                    sparkhist_at_least=bool(m(f"sh.lat.{name}.p99.censored"))),
                Row(f"{label}, {b.args.concurrency} clients, closed loop, {how}: throughput", "req/s",
                    m(f"{shs}.lat.{name}.rps"), m(f"sh.lat.{name}.rps"), higher_is_better=True),
            ]
            fixed = f"{OPEN_LOOP_RATES[name]:g} req/s over {b.args.concurrency} connections, open loop"
            # The target (p50 ≥ 4× the SHS as shipped) is read on the open loop: a closed loop's
            # stuck clients stop asking, so a stalling server is sampled less (bench/README.md).
            target = "issue 16: p50 ≥4× SHS in memory (open loop)" if shs == "shs" else ""
            out += [
                Row(f"{label}, {fixed}, {how}: p50", "ms", m(f"{shs}.open.{name}.p50"), m(f"sh.open.{name}.p50"),
                    target, _latency_target(4, bool(m(f"sh.open.{name}.p50.censored"))) if target else None,
                    note=count("open"), shs_at_least=bool(m(f"{shs}.open.{name}.p50.censored")),
                    sparkhist_at_least=bool(m(f"sh.open.{name}.p50.censored"))),
                Row(f"{label}, {fixed}, {how}: p99", "ms", m(f"{shs}.open.{name}.p99"), m(f"sh.open.{name}.p99"),
                    shs_at_least=bool(m(f"{shs}.open.{name}.p99.censored")),
                    sparkhist_at_least=bool(m(f"sh.open.{name}.p99.censored"))),
            ]
    for layout, what in (("rolling", "rolling+zstd"), ("plain", "plain")):
        out += [
            Row(f"sparkhist indexing, {what} corpus (uncompressed JSON)", "MB/s/core", None, m(f"sh.mbps.{layout}"),
                higher_is_better=True),
            Row(f"sparkhist indexing, {what} corpus", "events/s/core", None, m(f"sh.eps.{layout}"),
                higher_is_better=True),
        ]
    return out


def _latency_target(times: float, sparkhist_bound: bool) -> report.Check:
    """``faster_by(times)``, undecided when sparkhist's own figure is only a lower bound."""
    check = faster_by(times)
    return lambda shs, mine: None if sparkhist_bound else check(shs, mine)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="The stock SHS 4.3.0 against sparkhist.")
    parser.add_argument("--apps", type=int, help="scaled applications per corpus (default 10,000; --quick: 30)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a CI smoke run (not recorded)")
    parser.add_argument("--big-tasks", type=int, help="tasks in the big app's stage (default 12,000; --quick: 400)")
    parser.add_argument("--requests", type=int, help="requests per endpoint in the latency runs (default 2,000)")
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--latency-budget", type=float, help="seconds at most per endpoint (default 60)")
    parser.add_argument("--templates", choices=("conformance", "corpus"), default="conformance",
                        help="real logs the corpora are scaled from")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated subset of {','.join(PHASES)}")
    parser.add_argument("--only", choices=("both", "SHS", "sparkhist"), default="both", help="run one server only")
    parser.add_argument("--record", action=argparse.BooleanOptionalAction, default=None,
                        help="append to bench/RESULTS.md (default: yes, except with --quick)")
    parser.add_argument("--work", type=Path, help="where stores go (default: a temporary directory)")
    args = parser.parse_args(argv)
    defaults = (30, 400, 60, 4.0) if args.quick else (10_000, corpus.BIG_TASKS, 2_000, 60.0)
    for name, default in zip(("apps", "big_tasks", "requests", "latency_budget"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, default)
    if args.record is None:
        args.record = not args.quick
    args.phases = [p for p in args.phases.split(",") if p]
    if unknown := set(args.phases) - set(PHASES):
        parser.error(f"unknown phases: {sorted(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (e.g. a CI timeout) unwinds like Ctrl-C, so every server started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load_before = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    started = time.time()
    work = Path(tempfile.mkdtemp(prefix="sparkhist-bench-", dir=args.work))
    bench = Bench(args, work)
    echo: Callable[[str], None] = bench.say
    bench.foreign.__enter__()
    try:
        big = corpus.ensure_big_log(args.big_tasks, echo=echo)
        big_dir = corpus.ensure_scaled(1, "rolling", source=args.templates, big=big, echo=echo)
        rolling = corpus.ensure_scaled(args.apps, "rolling", source=args.templates, big=big, echo=echo)
        plain = corpus.ensure_scaled(args.apps, "plain", source=args.templates, echo=echo)
        for c in (big, big_dir, rolling, plain):
            bench.say(f"corpus {c.layout}: {c.apps:,} apps, {c.stored_bytes / 1e6:.1f} MB stored, "
                      f"{c.raw_mb:.1f} MB uncompressed, {c.events:,} events ({c.log_dir})")
        if "big" in args.phases:
            phase_big(bench, big_dir)
        if "rolling" in args.phases:
            phase_rolling(bench, rolling)
        if "plain" in args.phases:
            phase_plain(bench, plain)
    finally:
        bench.foreign.__exit__()
        bench.client.close()
        shutil.rmtree(work, ignore_errors=True)
    table = rows(bench, args.apps, big, big_dir)
    title = f"sparkhist vs SHS {importlib.metadata.version('pyspark')}: {args.apps:,} apps, big app of {args.big_tasks:,} tasks"
    report.print_table(table, title)
    other = f"CPU used by other processes during the run: {bench.foreign.summary()}"
    bench.notes.insert(0, other)
    if bench.foreign.mean() > 0.25:
        bench.notes.insert(1, "the machine was busy with other work: every figure is slower than on a quiet machine, "
                              "the JVM's start-up most")
    bench.notes.insert(0, f"sparkhist source measured: a frozen copy of src/sparkhist, sha256 {bench.source_digest}")
    for note in bench.notes:
        print(f"note: {note}")
    if args.record:
        info = report.RunInfo(title, {
            "corpora": (f"{args.apps:,} apps scaled from the {args.templates} logs; rolling+zstd "
                        f"{rolling.stored_bytes / 1e6:.0f} MB stored, plain {plain.stored_bytes / 1e6:.0f} MB; "
                        f"{rolling.raw_mb / max(rolling.apps, 1):.2f} MB of JSON per app on average"),
            "big app": f"{big.big_app_id}: {big.raw_mb:.1f} MB uncompressed, {big.events:,} events, "
                       f"{big.stored_bytes / 1e6:.1f} MB stored (rolling + zstd, as Spark wrote it)",
            "latency runs": f"{args.concurrency} concurrent clients, ≤{args.requests:,} requests or ≤{args.latency_budget:.0f} s "
                    "per endpoint",
            "sparkhist source": f"a copy of src/sparkhist frozen at the start, sha256 {bench.source_digest}",
            "other processes' CPU during the run": bench.foreign.summary(),
            "load average at the start (1/5/15 min)": load_before,
            "phases": ",".join(args.phases) + ("" if args.only == "both" else f" ({args.only} only)"),
            "duration": f"{(time.time() - started) / 60:.1f} min",
        }, bench.notes[2:], started)
        report.append_results(RESULTS, info, table)
        print(f"appended to {RESULTS}")
    return 1 if bench.failed else 0


if __name__ == "__main__":
    sys.exit(main())
