"""Entries of a log directory left out (or read only in part), each with its reason.

One bad entry never stops the rest (DESIGN invariant 7): a source or the scanner that
meets one (a symlink loop, a FIFO, an empty file, a log without an application...)
reports it here and goes on. Each source owns one :class:`SkippedLogs`
(:attr:`Source.skipped <sparkhist.source.base.Source.skipped>`)::

    skipped.report(path, reason, detail)   # one WARNING when new or changed, never again per scan
    skipped.clear(path)                    # readable again (one INFO line if it had been reported)
    skipped.after_listing(directory, present, reported)  # a source's bookkeeping after a listing

``/health/details`` lists the entries and ``sparkhist_skipped_logs`` counts them by
reason (:data:`REASONS`, a fixed set: bounded metric labels). Entries live in memory:
after a restart the scanner reports again what it finds (see ``scan/skips.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "DEGRADED",
    "REASONS",
    "SCAN_REASONS",
    "SOURCE_REASONS",
    "Skip",
    "SkippedLogs",
    "display_path",
]

log = logging.getLogger("sparkhist.skipped")

# -- reasons a source finds while listing or opening -----------------------------------
SYMLINK_LOOP: Final = "symlink_loop"  # ELOOP: a link that points (through others) at itself
DANGLING_LINK: Final = "dangling_link"  # a symbolic link whose target does not exist
OUTSIDE: Final = "outside_directory"  # a symbolic link whose real path leaves its directory
PERMISSION_DENIED: Final = "permission_denied"  # cannot be stat'ed, listed or read by this process
NOT_REGULAR: Final = "not_regular_file"  # a FIFO, a socket, a device
UNDECODABLE_NAME: Final = "undecodable_name"  # a file name that is not valid UTF-8
UNREADABLE: Final = "unreadable"  # any other error of that entry alone (EIO...)
WEBHDFS_UNAVAILABLE: Final = "webhdfs_unavailable"  # in-progress logs read up to their last completed block
# -- reasons the scanner finds in what it reads -------------------------------------------
EMPTY: Final = "empty"  # a file of zero bytes
NO_APPLICATION: Final = "no_application"  # bytes, but no SparkListenerApplicationStart (garbage)
DAMAGED: Final = "damaged"  # undecodable data part-way: the lines before it are used
BAD_LAYOUT: Final = "bad_layout"  # a rolling directory whose files make no log, an unknown codec
DIRECTORY: Final = "directory"  # a directory named like a log (only eventlog_v2_* directories are logs)
DUPLICATE: Final = "duplicate_application"  # another log holds the same application attempt

SOURCE_REASONS: Final = frozenset(
    {SYMLINK_LOOP, DANGLING_LINK, OUTSIDE, PERMISSION_DENIED, NOT_REGULAR, UNDECODABLE_NAME, UNREADABLE}
)
SCAN_REASONS: Final = frozenset({EMPTY, NO_APPLICATION, DAMAGED, BAD_LAYOUT, DIRECTORY, DUPLICATE})
#: Every reason, in the order the metric and the health document show them.
REASONS: Final = (
    SYMLINK_LOOP, DANGLING_LINK, OUTSIDE, PERMISSION_DENIED, NOT_REGULAR, UNDECODABLE_NAME, UNREADABLE,
    WEBHDFS_UNAVAILABLE, EMPTY, NO_APPLICATION, DAMAGED, BAD_LAYOUT, DIRECTORY, DUPLICATE,
)
#: Reasons whose entry is still used, in part (the others are left out entirely).
DEGRADED: Final = frozenset({WEBHDFS_UNAVAILABLE, DAMAGED})

Action = Literal["skipped", "degraded"]


@dataclass(frozen=True, slots=True)
class Skip:
    """One entry left out, or used only in part."""

    path: str  # display form (see display_path)
    reason: str  # one of REASONS
    detail: str  # what was seen, in a sentence (stable: a change of detail is a change)
    since: float  # epoch seconds of the first report of this reason

    @property
    def action(self) -> Action:
        return "degraded" if self.reason in DEGRADED else "skipped"


def display_path(path: str) -> str:
    """``path`` with undecodable bytes (surrogate escapes from the OS) shown as ``\\xNN``:
    safe to log, to JSON-encode and to use as a key."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return path


class SkippedLogs:
    """The skipped entries of one log directory. Thread-safe; every method is cheap."""

    def __init__(self, name: str = "", *, clock: Callable[[], float] = time.time) -> None:
        self.name = name  # the log directory, for log lines
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, Skip] = {}
        self._listed: set[str] = set()  # keys a listing reported (after_listing clears those only)

    def report(self, path: str, reason: str, detail: str = "") -> None:
        """``path`` is skipped (or degraded) for ``reason``: one WARNING when this is new
        or its reason or detail changed; nothing when it is the same as last time."""
        if reason not in REASONS:
            raise ValueError(f"unknown skip reason {reason!r}")
        key = display_path(path)
        with self._lock:
            old = self._entries.get(key)
            if old is not None and old.reason == reason and old.detail == detail:
                return
            since = old.since if old is not None and old.reason == reason else self._clock()
            entry = self._entries[key] = Skip(key, reason, detail, since)
        log.warning("%s %s: %s%s", entry.action, key, reason.replace("_", " "), f" ({detail})" if detail else "",
                    extra={"event": "log_skipped", "log_path": key, "reason": reason, "action": entry.action})

    def clear(self, path: str, reasons: Collection[str] | None = None) -> None:
        """``path`` is fine again (or gone); with ``reasons``, only when it was skipped for one of them."""
        key = display_path(path)
        with self._lock:
            old = self._entries.get(key)
            if old is None or (reasons is not None and old.reason not in reasons):
                return
            del self._entries[key]
            self._listed.discard(key)
        log.info("%s is no longer %s (was: %s)", key, old.action, old.reason.replace("_", " "),
                 extra={"event": "log_unskipped", "log_path": key, "reason": old.reason})

    def after_listing(self, directory: str, present: Iterable[str], reported: Collection[str] = ()) -> None:
        """A source's bookkeeping after a successful listing of ``directory``.

        ``present``: the paths of every entry the listing showed, good or skipped;
        ``reported``: those it reported as skipped. Entries under a child that is gone
        are forgotten; a child that an earlier listing reported and this one did not is
        cleared (what the scanner reported is the scanner's to clear). Costs one pass
        over the entries under ``directory``.
        """
        prefix = display_path(directory).rstrip("/") + "/"
        again = {display_path(p) for p in reported}
        with self._lock:
            self._listed.update(k for k in again if k in self._entries)
            under = [k for k in self._entries if k.startswith(prefix)]
            listed = {k for k in under if k in self._listed}
        if not under:
            return
        shown = {display_path(p) for p in present}
        for key in under:
            child = prefix + key[len(prefix):].split("/", 1)[0]
            if child not in shown:
                self.clear(key)  # gone, with everything under it
            elif key == child and key in listed and key not in again:
                self.clear(key)

    # -- reading ------------------------------------------------------------------------
    def entries(self) -> list[Skip]:
        """Every entry, by path."""
        with self._lock:
            return sorted(self._entries.values(), key=lambda e: e.path)

    def counts(self) -> dict[str, int]:
        """Entries by reason (every reason of :data:`REASONS`, 0 included)."""
        out = dict.fromkeys(REASONS, 0)
        with self._lock:
            for entry in self._entries.values():
                out[entry.reason] += 1
        return out

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, path: str) -> Skip | None:
        return self._entries.get(display_path(path))
