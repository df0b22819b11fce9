"""Comparing sparkhist with the real SHS, request by request.

Both differential tests (the base corpus and the rich one) ask the two servers the
same paths and compare status, content type and body (parsed JSON, error text, zip
entries). What may differ is only what the wall clock decides: ``lastUpdated``, and
the durations of applications still running (the SHS measures them at request time).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.conformance import blank_last_updated

APP_LIST_QUERIES = [
    "", "?status=completed", "?status=running", "?status=RUNNING&status=Completed", "?limit=2", "?limit=-1",
    "?minDate=2020-01-01", "?maxDate=2015-02-11T20:41:30.000GMT", "?minEndDate=2020-01-01",
    "?maxEndDate=2099-01-01T00:00:00.000GMT", "?minDate=2026-01-01T00:00:00.000PST",
    "?status=bogus", "?minDate=notadate", "?limit=abc",
]
PER_APP = [
    "", "/jobs", "/jobs?status=succeeded", "/jobs?status=failed", "/jobs?status=running", "/jobs/999", "/jobs/abc",
    "/stages", "/stages?status=complete", "/stages?status=failed", "/stages?status=active", "/stages?status=skipped",
    "/stages?status=pending", "/stages?details=true", "/stages?withSummaries=true", "/stages?details=true&taskStatus=FAILED",
    "/stages?status=bogus", "/stages/99", "/stages/flimflam",
    "/executors", "/allexecutors", "/executors/driver/threads", "/allmiscellaneousprocess",
    "/storage/rdd", "/storage/rdd/999", "/environment",
    "/sql", "/sql?details=false&planDescription=false", "/sql?offset=1&length=1", "/sql?offset=1&length=0", "/sql/99", "/sql/abc",
    "/streaming/statistics", "/1", "/1/jobs", "/jobs/", "/executors/",
]
PER_STAGE = [
    "", "?details=true", "/0", "/0?withSummaries=true&quantiles=0.01,0.5,0.99", "/0/taskSummary",
    "/0/taskSummary?quantiles=0.1,0.9", "/0/taskSummary?quantiles=0.05,%200.5", "/0/taskSummary?quantiles=abc",
    "/0/taskList", "/0/taskList?offset=1&length=2&sortBy=-runtime", "/0/taskList?sortBy=runtime",
    "/0/taskList?status=success", "/0/taskList?status=FAILED", "/0/taskList?sortBy=bogus", "/7",
]
WALL_CLOCK_WHEN_RUNNING = {"totalDuration", "duration"}


#: The log directory an attempt shows (SPARK-55793): what differs between two copies of one log
#: set served from two places (an object store and a local copy), never between the two servers.
LOG_SOURCE_KEYS = frozenset(("logSourceName", "logSourceFullPath"))


def corpus_paths(shs: Any, manifest: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    """Every request of the differential suite over the apps of ``manifest`` (the generated
    corpus's), each with whether its app is still running: the list and its queries, unknown
    ids and paths, every per-app and per-stage resource, each job; stage and job ids from the
    real SHS ``shs`` (a client of its ``/api/v1``)."""
    running = {e["app_id"] for e in manifest if e["state"] != "finished"}
    paths: list[tuple[str, bool]] = [("/version", False)]
    paths += [("/applications" + q, False) for q in APP_LIST_QUERIES]
    paths += [("/applications/nope-app", False), ("/applications/nope-app/jobs", False), ("/foobar", False)]
    for entry in manifest:
        app = entry["app_id"]
        base = f"/applications/{app}"
        paths += [(base + p, app in running) for p in PER_APP]
        paths += [(base + "/logs", False)]
        for stage in {s["stageId"] for s in shs.get(base + "/stages").json()}:
            paths += [(f"{base}/stages/{stage}{p}", app in running) for p in PER_STAGE]
        for job in {j["jobId"] for j in shs.get(base + "/jobs").json()}:
            paths.append((f"{base}/jobs/{job}", app in running))
    return paths


def without_log_source(body: Any) -> Any:
    """``body`` with the attempts' log directory fields left out (see :data:`LOG_SOURCE_KEYS`)."""
    if isinstance(body, dict):
        return {k: without_log_source(v) for k, v in body.items() if k not in LOG_SOURCE_KEYS}
    if isinstance(body, list):
        return [without_log_source(v) for v in body]
    return body


def as_configured(log_dir: Path) -> str:
    """The log directory as ``support.real_shs`` configures the real SHS with it (``file:`` and the
    resolved path): sparkhist is given the same string, so each attempt's ``logSourceFullPath`` and
    ``logSourceName`` (the directory as written) are compared as they are."""
    return f"file:{log_dir.resolve()}"


def normalize(body: Any, running: bool) -> Any:
    """``lastUpdated`` blanked; for a running app its request-time durations masked too."""
    body = blank_last_updated(body)
    if not running:
        return body

    def mask(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: ("<now>" if k in WALL_CLOCK_WHEN_RUNNING else mask(x)) for k, x in v.items()}
        if isinstance(v, list):
            return [mask(x) for x in v]
        return v

    return mask(body)


def _content_type(value: str) -> str:
    return value.split(";")[0].strip().lower()


def compare(ours: Any, theirs: Any, running: bool) -> str | None:
    """None when two responses are the same answer, else what differs first."""
    if ours.status_code != theirs.status_code:
        return f"status {ours.status_code} != {theirs.status_code}"
    ct_ours = _content_type(ours.headers.get("content-type", ""))
    ct_theirs = _content_type(theirs.headers.get("content-type", ""))
    if ct_ours != ct_theirs:
        return f"content type {ct_ours} != {ct_theirs}"
    if ct_theirs == "text/html":
        return None  # Jetty's error page: same status and type is the contract
    if ct_theirs == "application/octet-stream":
        a, b = zipfile.ZipFile(io.BytesIO(ours.content)), zipfile.ZipFile(io.BytesIO(theirs.content))
        if [i.filename for i in a.infolist()] != [i.filename for i in b.infolist()]:
            return "zip entries differ"
        if any(a.read(n) != b.read(n) for n in a.namelist()):
            return "zip contents differ"
        return None
    if ours.status_code == 200 and ct_theirs == "application/json":
        if normalize(ours.json(), running) != normalize(theirs.json(), running):
            return "body differs"
        return None
    return None if ours.text == theirs.text else f"text {ours.text!r} != {theirs.text!r}"


def differences(ours: Any, theirs: Any, where: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(json path, SHS value, sparkhist value) for every leaf that differs."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for key in sorted(set(ours) | set(theirs), key=str):
            yield from differences(ours.get(key, "<absent>"), theirs.get(key, "<absent>"), f"{where}.{key}")
    elif isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            yield from differences(a, b, f"{where}[{i}]")
    elif ours != theirs:
        if isinstance(ours, list) and isinstance(theirs, list):
            yield f"{where} (length)", len(theirs), len(ours)
        else:
            yield where or "<body>", theirs, ours


@dataclass
class Comparison:
    """The outcome of asking both servers every path: counts by endpoint, and mismatches."""

    template: Callable[[str], str]
    allowed: dict[str, str]
    results: Counter[str] = field(default_factory=Counter)
    mismatches: dict[str, str] = field(default_factory=dict)
    details: dict[str, list[tuple[str, Any, Any]]] = field(default_factory=dict)

    def run(self, paths: Iterable[tuple[str, bool]], ours: Any, shs: Any) -> Comparison:
        """``ours`` is a client of sparkhist's root, ``shs`` one of the SHS's ``/api/v1``."""
        for path, running in paths:
            theirs, mine = shs.get(path), ours.get("/api/v1" + path)
            problem = compare(mine, theirs, running)
            if problem is None:
                self.results[self.template(path)] += 1
            elif any(re.fullmatch(pattern, path) for pattern in self.allowed):
                self.results[f"{self.template(path)} (allowed)"] += 1
            else:
                self.mismatches[path] = problem
                if problem == "body differs":
                    self.details[path] = list(differences(normalize(mine.json(), running), normalize(theirs.json(), running)))
        return self

    def report(self) -> None:
        total = sum(self.results.values()) + len(self.mismatches)
        print(f"\n{total} requests, {total - len(self.mismatches)} identical or allowed, {len(self.mismatches)} different")
        for template, n in sorted(self.results.items()):
            print(f"  {n:4d}  {template}")
        for path, problem in sorted(self.mismatches.items()):
            print(f"  DIFFERENT {path}: {problem}")
            for where, shs_value, our_value in self.details.get(path, [])[:8]:
                print(f"      {where}: SHS {shs_value!r:.300} | sparkhist {our_value!r:.300}")
