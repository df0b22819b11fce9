"""``sparkhist status``: the health document at a glance.

Two ways to look: ask a running server (``--url``: its ``/health/details``), or read
the store on disk, read-only (the catalog's counts, the quarantine, who holds the
writer lock), which works with no server at all and beside a live one.

Exit status: 0 healthy, 1 degraded or offline, 2 unreachable (no answer, or no store).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

from rich.console import Console
from rich.table import Table

from sparkhist.errors import StoreError
from sparkhist.observability.disk import filesystem_usage, tree_bytes
from sparkhist.observability.probe import FILESYSTEM_FULL
from sparkhist.store.applications import ApplicationIndex
from sparkhist.store.catalog import Catalog
from sparkhist.store.lock import LOCK_FILE
from sparkhist.store.snapshots import QUARANTINE_DIR, SNAPSHOT_DIR

EXIT_OK, EXIT_DEGRADED, EXIT_UNREACHABLE = 0, 1, 2


class Unreachable(Exception):
    """No health document: the server did not answer, or there is no store."""


def fetch(url: str, timeout: float = 5.0) -> dict[str, Any]:
    """The ``/health/details`` document of the server at ``url``."""
    target = url.rstrip("/") + "/health/details"
    try:
        with urllib.request.urlopen(target, timeout=timeout) as response:
            doc = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise Unreachable(f"{target} answered {exc.code}") from exc
    except (OSError, ValueError) as exc:  # URLError, refused, timeout, not JSON
        raise Unreachable(f"cannot reach {target}: {getattr(exc, 'reason', exc)}") from exc
    if not isinstance(doc, dict):
        raise Unreachable(f"{target} did not answer a health document")
    return doc


def writer_pid(store_dir: str) -> int | None:
    """The pid holding the store's writer lock now, or None (nobody writes it)."""
    path = os.path.join(store_dir, LOCK_FILE)
    try:
        st = os.stat(path)
    except OSError:
        return None
    try:
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        return _pid_file_holder(path)
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK":  # "->" lines are waiters
            continue
        try:
            major, minor, inode = fields[5].split(":")
            same = int(inode) == st.st_ino and (int(major, 16), int(minor, 16)) == (os.major(st.st_dev), os.minor(st.st_dev))
            pid = int(fields[4])
        except ValueError:
            continue
        if same:
            return pid or _pid_file_holder(path)  # 0: the holder is in another pid namespace
    return None


def _pid_file_holder(path: str) -> int | None:
    """Without /proc/locks: the pid the lock file names, when that process is alive."""
    try:
        with open(path) as f:
            pid = int(f.read().strip() or 0)
        if pid:
            os.kill(pid, 0)
            return pid
    except (OSError, ValueError):
        pass
    return None


def from_store(store_dir: str) -> dict[str, Any]:
    """A health document read from the store alone (nothing is written)."""
    try:
        catalog = Catalog(store_dir, None, read_only=True)
    except StoreError as exc:
        raise Unreachable(str(exc)) from exc
    try:
        loaded = catalog.load(repair=False)
    finally:
        catalog.close()
    index = ApplicationIndex()
    for record in loaded.records.values():
        index.update(record)
    running = sum(1 for a in index.sorted_apps() if a.running)
    fs = filesystem_usage(store_dir)
    quarantine = os.path.join(store_dir, QUARANTINE_DIR)
    snapshots = os.path.join(store_dir, SNAPSHOT_DIR)
    pid = writer_pid(store_dir)
    reasons = []
    if loaded.corrupt:
        reasons.append(f"{loaded.corrupt} damaged catalog record(s); the writer reads their logs again")
    if fs.ratio >= FILESYSTEM_FULL:
        reasons.append(f"the store's file system is {fs.ratio:.0%} full")
    return {
        "status": "degraded" if reasons else "ok",
        "reasons": reasons,
        "from": "store",
        "writerPid": pid,
        "store": {
            "path": os.path.abspath(store_dir),
            "logs": len(loaded.records),
            "applications": {"completed": len(index) - running, "running": running},
            "damagedRecords": loaded.corrupt,
            "snapshots": len([n for n in _listdir(snapshots) if n.endswith(".snap")]),
            "quarantinedFiles": len(_listdir(quarantine)),
            "diskBytes": tree_bytes(store_dir),
            "filesystemUsageRatio": round(fs.ratio, 4),
            "filesystemFreeBytes": fs.free_bytes,
        },
    }


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def exit_code(doc: dict[str, Any]) -> int:
    return EXIT_OK if doc.get("status") == "ok" and not doc.get("offline") else EXIT_DEGRADED


def _bytes(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def render(doc: dict[str, Any], console: Console) -> None:
    """The document as a few lines and tables a person reads in seconds."""
    status = str(doc.get("status", "?"))
    offline = bool(doc.get("offline"))
    colour = "green" if status == "ok" and not offline else "red" if offline else "yellow"
    title = status.upper() + (" (OFFLINE: serving from the store)" if offline else "")
    console.print(f"[bold {colour}]{title}[/]", soft_wrap=True)
    for reason in doc.get("reasons", []):
        console.print(f"  [{colour}]- {reason}[/]", soft_wrap=True, highlight=False)

    facts = Table(show_header=False, box=None, pad_edge=False)
    facts.add_column(style="bold")
    facts.add_column()
    store = doc.get("store", {})
    apps = store.get("applications", {})
    if doc.get("from") == "store":
        pid = doc.get("writerPid")
        facts.add_row("writer", f"pid {pid}" if pid else "none (no server writes this store)")
    else:
        facts.add_row("role", f"{doc.get('role')} (pid {doc.get('pid')}, up {doc.get('uptimeSeconds', 0):.0f}s, "
                              f"{doc.get('takeovers', 0)} takeovers, recovery {doc.get('recoverySeconds', 0):.2f}s)")
    facts.add_row("store", str(store.get("path")))
    facts.add_row("applications", f"{apps.get('completed', 0)} completed, {apps.get('running', 0)} running "
                                  f"({store.get('logs', 0)} logs)")
    budget = store.get("diskBudgetBytes")
    facts.add_row("disk", f"{_bytes(store.get('diskBytes'))}" + (f" (snapshot budget {_bytes(budget)})" if budget else "")
                  + f"; file system {store.get('filesystemUsageRatio', 0):.0%} used, {_bytes(store.get('filesystemFreeBytes'))} free")
    corrupt = store.get("corruptions") or {"catalog_record": store.get("damagedRecords", 0)}
    rebuilding = store.get("rebuilding", [])
    facts.add_row("integrity", ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in corrupt.items()) + " corrupt; "
                  f"{store.get('quarantinedFiles', 0)} quarantined files" + (f", {len(rebuilding)} rebuilding" if rebuilding else ""))
    scan = doc.get("scan")
    if scan:
        facts.add_row("scan", f"last {scan.get('lastScan') or 'never'} ({scan.get('lastDurationSeconds') or 0:.2f}s), "
                              f"last success {scan.get('lastSuccess') or 'never'}, lag {scan.get('lagSeconds', 0):.0f}s")
    memory = doc.get("memory")
    if memory:
        cache_budget = memory.get("cacheBudgetBytes")
        facts.add_row("memory", f"cache {_bytes(memory.get('cacheBytes'))}"
                      + (f" of {_bytes(cache_budget)}" if cache_budget else "")
                      + f" ({memory.get('cachedApplications', 0)} apps), RSS {_bytes(memory.get('rssBytes'))}")
    console.print(facts)

    sources = doc.get("sources", [])
    if sources:
        table = Table("log directory", "state", "since", "breaker", "last error")
        for s in sources:
            state = s.get("state", "?")
            style = {"ok": "green", "degraded": "yellow"}.get(state, "red")
            table.add_row(s.get("logDirectory", "?"), f"[{style}]{state}[/]", s.get("since") or "",
                          s.get("breaker", ""), s.get("lastError") or "")
        console.print(table)


def run_status(store_dir: str, url: str | None, *, as_json: bool = False, console: Console | None = None) -> int:
    """Print the status; returns the exit code."""
    # Not a terminal (a pipe, a file): don't squeeze paths into 80 columns.
    console = console or Console(width=None if sys.stdout.isatty() else 200)
    try:
        doc = fetch(url) if url else from_store(store_dir)
    except Unreachable as exc:
        doc = {"status": "unreachable", "reasons": [str(exc)]}
        if as_json:
            console.file.write(json.dumps(doc, indent=2) + "\n")
        else:
            console.print(f"[bold red]UNREACHABLE[/]: {exc}", soft_wrap=True, highlight=False)
        return EXIT_UNREACHABLE
    if as_json:
        console.file.write(json.dumps(doc, indent=2) + "\n")
    else:
        render(doc, console)
    return exit_code(doc)
