"""File-system notifications of a local log directory: which root entries to check now.

The periodic scan sees every change, but only once per interval. On a local directory,
:class:`LogDirWatch` follows the kernel's notifications (``watchfiles``: inotify on
Linux) and hands the scan loop the root entries they name (a file, or a rolling
directory for any change inside it), debounced: changes are gathered until none came
for ``step`` ms (at most ``debounce`` ms). The loop checks just those entries
(:meth:`~sparkhist.scan.scanner.Scanner.check_entries`), so a new or grown log is
listed well within a second, without listing the directory again.

Notifications are a hint, never the truth: the scan still runs every interval and
alone drops vanished logs. A batch naming more than ``STORM`` entries (10,000 files
copied in) asks for a full scan instead (one listing beats thousands of stats). When
the watch fails (the directory deleted or replaced by a file, inotify limits), it says
so once and tries again every ``RETRY_EVERY`` seconds while the scan goes on.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger("sparkhist.scan")

#: More entries than this in one batch: a full scan instead of one check per entry.
STORM = 256
#: Gathering of notifications: a batch is handed over once none came for STEP_MS, at most after DEBOUNCE_MS.
STEP_MS = 30
DEBOUNCE_MS = 150
#: A failed or ended watch is started again after RETRY_EVERY seconds, doubling while it keeps failing.
RETRY_EVERY = 1.0
RETRY_CAP = 60.0

#: What the watch hands over: the root entries to check, or None for "scan everything".
Changed = Callable[[set[str] | None], None]


def top_entry(root: str, path: str) -> str | None:
    """The root entry a notified path lies in (``root/<name>``), or None outside the root or for the root itself."""
    rel = os.path.relpath(path, root)
    if rel == "." or rel.startswith(".." + os.sep) or rel == "..":
        return None
    return os.path.join(root, rel.split(os.sep, 1)[0])


class LogDirWatch:
    """Notifications of ``root`` (recursive, so rolling directories' files count) handed to ``changed``."""

    def __init__(self, root: str, changed: Changed, *, step_ms: int = STEP_MS, debounce_ms: int = DEBOUNCE_MS,
                 storm: int = STORM) -> None:
        self.root = root
        self.changed = changed
        self.step_ms = step_ms
        self.debounce_ms = debounce_ms
        self.storm = storm
        self.batches = 0
        self.storms = 0
        self.failures = 0
        self.watching = threading.Event()  # set while notifications are being followed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sparkhist-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        failing = 0  # failures in a row
        while not self._stop.is_set():
            try:
                self._follow()
            except Exception as exc:  # noqa: BLE001 - the scan goes on without notifications; tried again
                self.failures += 1
                failing += 1
                if failing == 1:
                    log.warning("cannot follow notifications of %s (%s); the periodic scan goes on, and the watch is "
                                "tried again", self.root, exc, extra={"event": "watch_failed"})
            else:
                failing = 0
            self.watching.clear()
            self._stop.wait(min(RETRY_CAP, RETRY_EVERY * 2 ** max(0, failing - 1)))

    def _follow(self) -> None:
        import watchfiles

        logging.getLogger("watchfiles").setLevel(logging.WARNING)  # not a line per batch of changes
        identity = _identity(self.root)  # the directory watched: deleted or replaced, it is watched again
        watcher = watchfiles.watch(self.root, watch_filter=None, stop_event=self._stop, step=self.step_ms,
                                   debounce=self.debounce_ms, recursive=True, raise_interrupt=False,
                                   yield_on_timeout=True, rust_timeout=500, ignore_permission_denied=True)
        try:
            self.watching.set()
            for batch in watcher:
                entries = {e for _, path in batch if (e := top_entry(self.root, path)) is not None}
                if not entries:  # a timeout, or the root itself changed
                    if _identity(self.root) != identity:
                        raise FileNotFoundError(f"{self.root} was deleted or replaced")
                    continue
                self.batches += 1
                if len(entries) > self.storm:
                    self.storms += 1
                    self.changed(None)
                else:
                    self.changed(entries)
        finally:
            watcher.close()


def _identity(path: str) -> tuple[int, int]:
    """The directory at ``path`` (device, inode); FileNotFoundError when it is not a directory."""
    st = os.stat(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path} is not a directory")
    return st.st_dev, st.st_ino
