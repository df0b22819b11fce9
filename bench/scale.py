"""The scale table: sparkhist beside the real SHS at 1k, 10k and 100k applications, same run.

    .venv/bin/python bench/scale.py                       # 1,000, 10,000 and 100,000 apps
    .venv/bin/python bench/scale.py --apps 1000 --apps 10000 --out /tmp/scale.jsonl
    .venv/bin/python bench/scale.py --table /tmp/scale.jsonl   # print the Markdown table again

For each size (ascending), over the ``rolling`` corpus of ``bench/corpus.py`` (N copies of
the conformance logs in Spark 4's default layout, rolling + zstd, plus the big app):

* **sparkhist**: ``sparkhist serve`` on an empty store: cold start (process start until
  ``/api/v1/applications`` lists every app), peak RSS at that moment, then the first scan
  until every app is fully indexed (indexing throughput: uncompressed JSON / CPU seconds
  of the server and its indexing workers); then a restart on the store it left.
* **SHS**: the stock SHS (``servers.shs``: the pyspark jars, full JIT, ``-Xmx1g``) with
  ``spark.history.store.path`` on an empty directory: cold start and peak RSS at the
  moment all are listed; then a restart on that store.

Every figure is written as one JSON line to ``--out`` the moment it is measured (a run
cut short keeps what it measured), with the process's CPU seconds, the load average and
the CPU other processes used meanwhile (``noise.ForeignLoad``). At the largest size
sparkhist runs first, and indexing is cut after ``--index-cap`` seconds: the
throughput is then taken from the events indexed so far (``sparkhist_events_parsed``).
The table extrapolates 1,000,000 apps from the slope between the two largest sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

import corpus
import noise
import run
import servers

DEFAULT_SIZES = (1_000, 10_000, 100_000)


class Recorder:
    def __init__(self, out: Path, foreign: noise.ForeignLoad) -> None:
        self.out = out
        self.foreign = foreign
        self.t0 = time.monotonic()

    def mark(self) -> int:
        return len(self.foreign.samples)

    def record(self, apps: int, server: str, figure: str, value: float, since: int, **extra: Any) -> None:
        window = self.foreign.samples[since:] or self.foreign.samples[-1:]
        row = {"apps": apps, "server": server, "figure": figure, "value": round(value, 4),
               "load": [round(x, 2) for x in os.getloadavg()],
               "others_cores": round(sum(window) / len(window), 2) if window else None,
               "utc": time.strftime("%H:%M:%S", time.gmtime()), **extra}
        with self.out.open("a") as sink:
            sink.write(json.dumps(row) + "\n")
        print(f"[{time.monotonic() - self.t0:7.1f}s] {json.dumps(row)}", flush=True)


def _metric(client: httpx.Client, server: servers.Server, name: str, label: str) -> float:
    text = client.get(f"{server.base_url}/metrics").text
    match = re.search(rf'^{name}(?:_total)?\{{[^}}]*"{label}"\}} ([0-9.e+]+)$', text, re.M)
    return float(match[1]) if match else 0.0


def run_sparkhist(rec: Recorder, logs: corpus.Corpus, work: Path, client: httpx.Client, index_cap: float,
                  env: dict[str, str]) -> None:
    n = logs.apps
    store = work / f"sparkhist-{n}"
    shutil.rmtree(store, ignore_errors=True)
    since = rec.mark()
    with servers.sparkhist(logs.log_dir, store, work, env) as sh:
        listed = servers.wait_listed(sh, n, client, 600 + n * 0.05)
        rec.record(n, "sparkhist", "cold_listed_s", listed, since, cpu_s=sh.cpu_seconds(), rss_mb=sh.peak_rss_mb())
        deadline = time.monotonic() + index_cap
        done: servers.ScanDone | None = None
        while time.monotonic() < deadline:
            try:
                done = servers.wait_first_scan(sh, client, min(30.0, max(1.0, deadline - time.monotonic())))
                break
            except TimeoutError:
                continue
        cpu = sh.cpu_seconds()
        elapsed = sh.since_start()
        if done is not None:
            indexed_fraction = 1.0
            rec.record(n, "sparkhist", "indexed_s", done.since_start, since, cpu_s=done.cpu_seconds,
                       rss_mb=sh.peak_rss_mb())
        else:
            full_events = _metric(client, sh, "sparkhist_events_parsed", "full")
            indexed_fraction = full_events / logs.events
            rec.record(n, "sparkhist", "indexing_cut_s", elapsed, since, cpu_s=cpu, rss_mb=sh.peak_rss_mb(),
                       indexed_fraction=round(indexed_fraction, 4))
        if cpu > 0 and indexed_fraction > 0:
            rec.record(n, "sparkhist", "index_mb_per_cpu_s", logs.raw_mb * indexed_fraction / cpu, since,
                       cpu_s=cpu, wall_s=elapsed, indexed_fraction=round(indexed_fraction, 4))
    since = rec.mark()
    with servers.sparkhist(logs.log_dir, store, work, env) as sh:
        restart = servers.wait_listed(sh, n, client, 600 + n * 0.05)
        rec.record(n, "sparkhist", "restart_listed_s", restart, since, cpu_s=sh.cpu_seconds(), rss_mb=sh.peak_rss_mb())
    shutil.rmtree(store, ignore_errors=True)


def run_shs(rec: Recorder, logs: corpus.Corpus, work: Path, client: httpx.Client) -> None:
    n = logs.apps
    store = work / f"shs-{n}"
    shutil.rmtree(store, ignore_errors=True)
    store.mkdir(parents=True)
    since = rec.mark()
    with servers.shs(logs.log_dir, store) as shs:
        listed = servers.wait_listed(shs, n, client, 900 + n * 0.2)
        rec.record(n, "SHS", "cold_listed_s", listed, since, cpu_s=shs.cpu_seconds(), rss_mb=shs.peak_rss_mb())
    since = rec.mark()
    with servers.shs(logs.log_dir, store) as shs:
        restart = servers.wait_listed(shs, n, client, 900 + n * 0.2)
        rec.record(n, "SHS", "restart_listed_s", restart, since, cpu_s=shs.cpu_seconds(), rss_mb=shs.peak_rss_mb())
    shutil.rmtree(store, ignore_errors=True)


# --------------------------------------------------------------------------- the table

FIGURES = (
    ("cold_listed_s", "Cold start: all listed (s)"),
    ("cold_cpu_s", "  CPU seconds of the process until then"),
    ("cold_rss_mb", "Peak RSS when all are listed (MB)"),
    ("restart_listed_s", "Restart on its store: all listed (s)"),
    ("restart_cpu_s", "  CPU seconds of the process until then"),
    ("indexed_s", "Every app fully indexed (s from start; SHS: never, replays on open)"),
    ("indexed_pct", "  indexing cut after --index-cap: share of the events indexed (%)"),
    ("index_mb_per_cpu_s", "Indexing throughput, whole first scan (uncompressed JSON MB / CPU s since start)"),
    ("index_pass_mb_per_cpu_s", "Indexing throughput, full pass only (MB / CPU s after all were listed)"),
    ("index_rss_mb", "Peak RSS until indexed (server + workers, MB)"),
)


def collect(rows: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, float]]:
    out: dict[tuple[str, int], dict[str, float]] = {}
    for r in rows:
        cell = out.setdefault((r["server"], r["apps"]), {})
        figure = r["figure"]
        cell[figure] = r["value"]
        kind = figure.split("_")[0]
        if figure in ("cold_listed_s", "restart_listed_s"):
            cell[f"{kind}_cpu_s"] = r["cpu_s"]
            cell[f"{kind}_rss_mb"] = r["rss_mb"]
        if figure in ("indexed_s", "indexing_cut_s"):
            cell["index_rss_mb"] = r["rss_mb"]
        if figure == "indexing_cut_s":
            cell["indexed_pct"] = 100 * r["indexed_fraction"]
        if figure == "index_mb_per_cpu_s":  # the full pass alone: CPU since every app was listed
            cell["index_mb"] = r["value"] * r["cpu_s"]
            cell["index_cpu_s"] = r["cpu_s"]
        if "index_mb" in cell and "cold_cpu_s" in cell and cell["index_cpu_s"] > cell["cold_cpu_s"]:
            cell["index_pass_mb_per_cpu_s"] = cell["index_mb"] / (cell["index_cpu_s"] - cell["cold_cpu_s"])
        cell.setdefault("load_max", 0.0)
        cell["load_max"] = max(cell["load_max"], r["load"][0])
        if r.get("others_cores") is not None:
            cell["others_max"] = max(cell.get("others_max", 0.0), r["others_cores"])
    return out


def extrapolate(points: dict[int, float]) -> float | None:
    """The value at 1,000,000 apps on the line through the two largest sizes measured."""
    sizes = sorted(points)
    if len(sizes) < 2:
        return None
    (a, va), (b, vb) = (sizes[-2], points[sizes[-2]]), (sizes[-1], points[sizes[-1]])
    return vb + (vb - va) / (b - a) * (1_000_000 - b)


def markdown(rows: list[dict[str, Any]]) -> str:
    cells = collect(rows)
    sizes = sorted({n for _, n in cells})
    head = "| figure | server | " + " | ".join(f"{n:,} apps" for n in sizes) + " | 1,000,000 (extrapolated) |"
    lines = [head, "|---|---|" + "---:|" * (len(sizes) + 1)]
    for key, label in FIGURES:
        for server in ("SHS", "sparkhist"):
            values = {n: cells[(server, n)][key] for n in sizes if key in cells.get((server, n), {})}
            if not values:
                continue
            shown = [f"{values[n]:,.1f}" if n in values else "n/a" for n in sizes]
            linear = key not in ("index_mb_per_cpu_s", "index_pass_mb_per_cpu_s", "indexed_pct", "indexed_s")
            guess = extrapolate(values) if linear else None
            lines.append(f"| {label} | {server} | " + " | ".join(shown) + f" | {'' if guess is None else f'{guess:,.0f}'} |")
    loads = [f"{n:,}: load ≤{max(cells[(s, n)]['load_max'] for s in ('SHS', 'sparkhist') if (s, n) in cells):.1f}"
             for n in sizes]
    lines.append("")
    lines.append("1-min load average at the end of each measure, highest per size: " + "; ".join(loads))
    return "\n".join(lines)


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def sizes_with_corpora(sizes: list[int], echo: Any) -> Iterator[tuple[int, corpus.Corpus]]:
    big = corpus.ensure_big_log(echo=echo)
    for n in sizes:
        yield n, corpus.ensure_scaled(n, "rolling", big=big, echo=echo)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, action="append", help="sizes (default 1,000, 10,000, 100,000)")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "sparkhist-scale.jsonl")
    parser.add_argument("--index-cap", type=float, default=1200.0, help="seconds of indexing at most per size")
    parser.add_argument("--only", choices=("both", "SHS", "sparkhist"), default="both")
    parser.add_argument("--table", type=Path, help="only print the table of an earlier run's JSON lines")
    args = parser.parse_args(argv)
    if args.table:
        print(markdown(read_rows(args.table)))
        return 0
    sizes = sorted(args.apps or DEFAULT_SIZES)
    work = Path(tempfile.mkdtemp(prefix="sparkhist-scale-"))
    foreign = noise.ForeignLoad()
    rec = Recorder(args.out, foreign)
    # One version of the code for the whole run, as in run.py: edits to the tree meanwhile do not count.
    source, digest = run.freeze_source(work)
    env = {**os.environ, "PYTHONPATH": str(source)}
    print(f"sparkhist source: a frozen copy, sha256 {digest}; load average {os.getloadavg()}", flush=True)
    with foreign, httpx.Client(timeout=600.0) as client:
        try:
            for n, logs in sizes_with_corpora(sizes, print):
                print(f"{n:,} apps: {logs.log_dir} ({logs.apps:,} apps, {logs.raw_mb:,.0f} MB JSON)", flush=True)
                largest = n == sizes[-1]
                order = ("sparkhist", "SHS") if largest else ("SHS", "sparkhist")
                for kind in order:
                    if args.only not in ("both", kind):
                        continue
                    try:
                        if kind == "SHS":
                            run_shs(rec, logs, work, client)
                        else:
                            run_sparkhist(rec, logs, work, client, args.index_cap, env)
                    except Exception as exc:  # noqa: BLE001 - a failing measure is reported; the others go on
                        print(f"FAILED {kind} at {n:,}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(markdown(read_rows(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
