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
from rich.text import Text

from sparkhist.errors import StoreError
from sparkhist.files import filesystem_usage
from sparkhist.observability.disk import tree_bytes
from sparkhist.observability.probe import FILESYSTEM_FULL
from sparkhist.render.terminal import text
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


def _num(value: Any, spec: str) -> str:
    """A number of the document formatted with ``spec``; anything else (a server may send
    anything) shown as it is."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, spec)
    return str(value)


def render(doc: dict[str, Any], console: Console) -> None:
    """The document as a few lines and tables a person reads in seconds.

    Every string of the document (paths, messages, whatever a server answered) is printed
    as plain :func:`~sparkhist.render.terminal.text`: never markup, controls made visible.
    """
    status = str(doc.get("status", "?"))
    offline = bool(doc.get("offline"))
    colour = "green" if status == "ok" and not offline else "red" if offline else "yellow"
    title = status.upper() + (" (OFFLINE: serving from the store)" if offline else "")
    console.print(text(title, style=f"bold {colour}"), soft_wrap=True)
    for reason in _list(doc.get("reasons")):
        console.print(text(f"  - {reason}", style=colour), soft_wrap=True, highlight=False)

    store = _dict(doc.get("store"))
    apps = _dict(store.get("applications"))
    rows: list[tuple[str, str]] = []
    if doc.get("from") == "store":
        pid = doc.get("writerPid")
        rows.append(("writer", f"pid {pid}" if pid else "none (no server writes this store)"))
    else:
        rows.append(("role", f"{doc.get('role')} (pid {doc.get('pid')}, up {_num(doc.get('uptimeSeconds', 0), '.0f')}s, "
                             f"{doc.get('takeovers', 0)} takeovers, recovery {_num(doc.get('recoverySeconds', 0), '.2f')}s)"))
    rows.append(("store", str(store.get("path"))))
    rows.append(("applications", f"{apps.get('completed', 0)} completed, {apps.get('running', 0)} running "
                                 f"({store.get('logs', 0)} logs)"))
    budget = store.get("diskBudgetBytes")
    rows.append(("disk", f"{_bytes(store.get('diskBytes'))}" + (f" (snapshot budget {_bytes(budget)})" if budget else "")
                 + f"; file system {_num(store.get('filesystemUsageRatio', 0), '.0%')} used, "
                 f"{_bytes(store.get('filesystemFreeBytes'))} free"))
    corrupt = _dict(store.get("corruptions")) or {"catalog_record": store.get("damagedRecords", 0)}
    rebuilding = _list(store.get("rebuilding"))
    rows.append(("integrity", ", ".join(f"{v} {str(k).replace('_', ' ')}" for k, v in corrupt.items()) + " corrupt; "
                 f"{store.get('quarantinedFiles', 0)} quarantined files"
                 + (f", {len(rebuilding)} rebuilding" if rebuilding else "")))
    scan = _dict(doc.get("scan"))
    if scan:
        duration, lag = _num(scan.get("lastDurationSeconds") or 0, ".2f"), _num(scan.get("lagSeconds", 0), ".0f")
        rows.append(("scan", f"last {scan.get('lastScan') or 'never'} ({duration}s), "
                             f"last success {scan.get('lastSuccess') or 'never'}, lag {lag}s"))
    memory = _dict(doc.get("memory"))
    if memory:
        cache_budget = memory.get("cacheBudgetBytes")
        rows.append(("memory", f"cache {_bytes(memory.get('cacheBytes'))}"
                     + (f" of {_bytes(cache_budget)}" if cache_budget else "")
                     + f" ({memory.get('cachedApplications', 0)} apps), RSS {_bytes(memory.get('rssBytes'))}"))
    facts = Table(show_header=False, box=None, pad_edge=False)
    facts.add_column(style="bold")
    facts.add_column()
    for label, value in rows:
        facts.add_row(label, text(value))
    console.print(facts)

    sources = [_dict(s) for s in _list(doc.get("sources"))]
    if sources:
        table = Table("log directory", "state", "since", "breaker", "last error")
        for s in sources:
            state = s.get("state", "?")
            style = {"ok": "green", "degraded": "yellow"}.get(str(state), "red")
            table.add_row(text(s.get("logDirectory", "?")), text(state, style=style), text(s.get("since") or ""),
                          text(s.get("breaker", "")), text(s.get("lastError") or ""))
        console.print(table)


def _dict(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


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
            console.print(Text.assemble(("UNREACHABLE", "bold red"), ": ", text(exc)), soft_wrap=True, highlight=False)
        return EXIT_UNREACHABLE
    if as_json:
        console.file.write(json.dumps(doc, indent=2) + "\n")
    else:
        render(doc, console)
    return exit_code(doc)
