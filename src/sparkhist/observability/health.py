"""The health document of ``/health/details`` and ``sparkhist status``.

``status`` is ``ok`` or ``degraded``; ``reasons`` says why in plain sentences (one
per problem), so an operator reads the answer instead of deriving it. ``offline``
is true when a log directory cannot be reached: the server then serves what its
store holds, and says so here (invariant 1).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from sparkhist import __version__
from sparkhist.observability.probe import FILESYSTEM_FULL, Probe, report_end, rss_bytes
from sparkhist.observability.sources import OUTCOMES, SourceStatus


def iso(epoch: float | None) -> str | None:
    """``2026-11-29T18:37:00.123Z`` (UTC, milliseconds), or None."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _source(status: SourceStatus) -> dict[str, Any]:
    requests = {outcome: 0 for outcome in OUTCOMES}
    for (_op, outcome), count in status.requests.items():
        requests[outcome] = requests.get(outcome, 0) + count
    return {
        "logDirectory": status.log_dir,
        "state": status.state,
        "since": iso(status.since),
        "lastError": status.last_error,
        "lastErrorAt": iso(status.last_error_at),
        "breaker": status.breaker,
        "requests": requests,
    }


#: Skipped entries listed in the document at most (the counts cover them all).
SKIPPED_LISTED = 100


def _skipped(probe: Probe) -> dict[str, Any]:
    """Entries left out of the listing or read in part, with why: never a reason to be degraded
    (one bad entry does not make the server unhealthy), but always shown."""
    figures = probe.skipped()
    entries = [e for f in figures for e in f.entries]
    by_reason: dict[str, int] = {}
    for f in figures:
        for reason, count in f.counts.items():
            if count:
                by_reason[reason] = by_reason.get(reason, 0) + count
    return {
        "count": len(entries),
        "byReason": by_reason,
        "entries": [
            {"path": e.path, "reason": e.reason, "action": e.action, "detail": e.detail, "since": iso(e.since)}
            for e in entries[:SKIPPED_LISTED]
        ],
        "truncated": len(entries) > SKIPPED_LISTED,
    }


def health_document(probe: Probe) -> dict[str, Any]:
    """Everything an operator asks first, computed now (the disk walk is cached)."""
    now = probe.clock()
    sources = probe.source_statuses()
    records = probe.records()
    fs = probe.filesystem()
    disk = probe.disk_bytes()
    budget = probe.disk_figures()
    cache = probe.cache()
    rebuilding = probe.rebuilding()
    stalled = probe.stalled_for()
    ready = probe.ready()
    last, success = probe.history.last, probe.history.last_success

    reasons: list[str] = []
    if not ready:
        reasons.append("starting: the store is not open or start-up recovery is not done")
    for s in sources:
        if s.state != "ok":
            reasons.append(f"log directory {s.log_dir} is {s.state}" + (f": {s.last_error}" if s.last_error else ""))
    if stalled is not None:
        reasons.append(f"no successful scan for {stalled:.0f}s (interval {probe.scan_interval:g}s)")
    if rebuilding:
        reasons.append(f"{len(rebuilding)} application(s) being rebuilt after a corrupt snapshot")
    if fs.ratio >= FILESYSTEM_FULL:
        reasons.append(f"the store's file system is {fs.ratio:.0%} full")
    if budget.budget and budget.snapshot_bytes > budget.budget:
        reasons.append(f"snapshots use {budget.snapshot_bytes} bytes, over the disk budget of {budget.budget}")
    if budget.critical:
        reasons.append("the store's file system is over its critical watermark: no snapshot is written")
    if cache.budget and cache.bytes > cache.budget:
        reasons.append(f"the state cache holds {cache.bytes} bytes, over its budget of {cache.budget}")

    return {
        "status": "degraded" if reasons else "ok",
        "offline": any(s.state == "offline" for s in sources),
        "ready": ready,
        "reasons": reasons,
        "version": __version__,
        "pid": os.getpid(),
        "startedAt": iso(probe.started),
        "uptimeSeconds": round(now - probe.started, 3),
        "role": probe.role,
        "takeovers": probe.takeovers,
        "recoverySeconds": round(probe.recovery_seconds, 6),
        "sources": [_source(s) for s in sources],
        "skipped": _skipped(probe),
        "scan": {
            "intervalSeconds": probe.scan_interval,
            "lagSeconds": round(probe.scan_lag(records), 3),
            "lastScan": iso(report_end(last)),
            "lastDurationSeconds": None if last is None else round(last.duration, 6),
            "lastSuccess": iso(report_end(success)),
            "scans": dict(probe.history.counts),
            "last": None if last is None else {
                "listed": last.listed, "new": last.new, "grown": last.grown, "unchanged": last.unchanged,
                "removed": last.removed, "indexed": last.indexed, "failed": last.failed,
                "sourceError": last.source_error,
            },
        },
        "store": {
            "path": probe.store_dir,
            "logs": len(records),
            "applications": probe.applications(),
            "diskBytes": disk,
            "diskBudgetBytes": budget.budget,
            "snapshotBytes": budget.snapshot_bytes,
            "diskCritical": budget.critical,
            "diskEvictions": budget.evictions,
            "snapshotWriteFailures": budget.write_failures,
            "filesystemUsageRatio": round(fs.ratio, 4),
            "filesystemFreeBytes": fs.free_bytes,
            "corruptions": probe.corruptions(),
            "quarantinedFiles": probe.quarantined_files(),
            "rebuilding": [{"logPath": r.log_path, "appId": r.app_id, "reason": r.reason} for r in rebuilding],
        },
        "memory": {
            "cacheBytes": cache.bytes,
            "cacheBudgetBytes": cache.budget,
            "cachedApplications": cache.entries,
            "evictions": cache.evictions,
            "rssBytes": rss_bytes(),
        },
    }
