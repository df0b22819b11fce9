"""The writer's buffer of pending rows: several attempts per pending file.

Creating a file costs the kernel 0.05-0.6 ms on this kind of disk, as much as making the
rows; one file per indexed attempt was most of what the tables added to indexing. So the
rows of indexed attempts (:func:`~sparkhist.analytics.pending.entry_of`, tombstones too)
are kept here, one entry per attempt (the latest), and written as one batch file
(:func:`~sparkhist.analytics.pending.write_batch`) by a thread of their own (while
there are rows to write) every
:data:`MAX_ATTEMPTS` attempts (or :data:`MAX_BYTES` of rows) or :data:`MAX_AGE_S` seconds
after the first one, so indexing never waits on the file; and at once by :meth:`RowBuffer.flush`
(the end of a scan's builds, the writer's shutdown, the repair, the process's exit).

One buffer per store per process (:func:`buffer_for`): indexing workers send their rows
back with their build's summary, so the scanning process writes every pending file, in
order. A crash loses only the buffered rows: their attempts have snapshots and neither
pending rows nor rows in the tables as recent, which the writer's repair makes again
(:mod:`sparkhist.analytics.repair`).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable

from sparkhist.analytics.pending import Entry, write_batch
from sparkhist.errors import StoreError

log = logging.getLogger("sparkhist.analytics")

MAX_ATTEMPTS = 256
MAX_BYTES = 32 << 20
MAX_AGE_S = 2.0


class RowBuffer:
    """Entries of the store at ``store_dir`` not yet in a pending file."""

    def __init__(self, store_dir: str, *, max_attempts: int = MAX_ATTEMPTS, max_bytes: int = MAX_BYTES,
                 max_age: float = MAX_AGE_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.store_dir = store_dir
        self.max_attempts = max_attempts
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.clock = clock
        self.files = 0  # batch files written
        self.failures = 0  # batches that could not be written (their attempts: the next repair's)
        self._entries: dict[str, Entry] = {}
        self._bytes = 0
        self._since = 0.0  # when the oldest buffered entry came
        self._changed = threading.Condition()
        self._writing = threading.Lock()  # one batch file written at a time: in the order taken
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        with self._changed:
            return len(self._entries)

    def add(self, entry: Entry) -> None:
        """Buffer ``entry`` (replacing the attempt's earlier one); written within :data:`MAX_AGE_S`."""
        with self._changed:
            first = not self._entries
            if first:
                self._since = self.clock()
            held = self._entries.pop(entry.key, None)
            if held is not None and held.payload is not None:
                self._bytes -= len(held.payload)
            self._entries[entry.key] = entry
            if entry.payload is not None:
                self._bytes += len(entry.payload)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sparkhist-analytics-rows", daemon=True)
                self._thread.start()
            if first or self._full():  # the thread's timer starts, or it writes now
                self._changed.notify()

    def _full(self) -> bool:
        return len(self._entries) >= self.max_attempts or self._bytes >= self.max_bytes

    def _take(self) -> list[Entry]:
        """(Under the condition.) The buffered entries, the buffer emptied."""
        taken = list(self._entries.values())
        self._entries.clear()
        self._bytes = 0
        return taken

    def flush(self) -> int:
        """Write the buffered entries now, as one file; how many. A failure is logged (the
        next repair writes them from the snapshots)."""
        with self._writing:
            with self._changed:
                taken = self._take()
            return self._write(taken)

    def _write(self, taken: list[Entry]) -> int:
        """(Holding ``_writing``.)"""
        if not taken:
            return 0
        try:
            write_batch(self.store_dir, taken)
        except StoreError as exc:
            self.failures += 1
            log.warning("%s; the repair writes them again", exc)
            return 0
        self.files += 1
        return len(taken)

    def _run(self) -> None:
        while True:
            with self._changed:
                while True:
                    if self._entries:
                        left = self._since + self.max_age - self.clock()
                        if left <= 0 or self._full():
                            break
                        self._changed.wait(left)
                    else:  # nothing buffered: the thread ends, the next add starts another
                        self._thread = None
                        return
            try:
                self.flush()  # taken under the write lock: a flush meanwhile keeps the files in order
            except Exception:  # never let the thread die: rows would stay buffered
                log.exception("analytics rows not written")


_buffers: dict[str, RowBuffer] = {}
_buffers_lock = threading.Lock()


def buffer_for(store_dir: str) -> RowBuffer:
    """This process's buffer of the store at ``store_dir``."""
    with _buffers_lock:
        held = _buffers.get(store_dir)
        if held is None:
            held = _buffers[store_dir] = RowBuffer(store_dir)
        return held


def flush(store_dir: str) -> int:
    """Write this process's buffered rows of ``store_dir``, if any; how many attempts."""
    with _buffers_lock:
        held = _buffers.get(store_dir)
    return held.flush() if held is not None else 0


@atexit.register
def flush_all() -> None:
    """Every buffer of this process written (at exit)."""
    with _buffers_lock:
        held = list(_buffers.values())
    for buffer in held:
        buffer.flush()
