"""On-demand load: a request for an application the scan has not reached yet.

Like SHS 4.1+'s ``onDemandLoadEnabled``, the log is looked up by the names Spark gives
it (``<appId>[_<attempt>][.<codec>][.inprogress]``, ``eventlog_v2_<appId>[_<attempt>]``)
with a few ``stat`` calls instead of a listing, and indexed at once. Misses are
remembered for a while so unknown ids cannot hammer the file system.

Only a plausible id is looked up (:func:`plausible_app_id`): at most
:data:`MAX_APP_ID_LENGTH` characters (Spark's ids are 20 to 40: ``local-1795972896863``,
``application_1713000000000_0001``, ``spark-<32 hex>``), none a control character, and
no file name longer than :data:`MAX_NAME_BYTES`. Anything else is a client's mistake:
it is answered "unknown" from the index alone and never reaches the source, so it can
neither fail a source call (which would mark the log directory degraded) nor fill the
log (one line, the id cut to 100 characters).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

from sparkhist.errors import LogError, SourceError, SourceNotFound
from sparkhist.reader.layout import IN_PROGRESS, KNOWN_CODECS, ROLLING_DIR_PREFIX, EventLog, event_log_at
from sparkhist.source.base import Source
from sparkhist.store.applications import AppEntry, AppLookup

log = logging.getLogger("sparkhist.scan")

_ATTEMPT_SUFFIXES = ("", "_1", "_2")

#: Longest application id looked up on demand, in characters.
MAX_APP_ID_LENGTH = 255
#: Longest file name a candidate may have, in UTF-8 bytes (``NAME_MAX`` of Linux file
#: systems, HDFS's default ``dfs.namenode.fs-limits.max-component-length``).
MAX_NAME_BYTES = 255


def plausible_app_id(app_id: str) -> bool:
    """Whether ``app_id`` may name a log: 1 to :data:`MAX_APP_ID_LENGTH` characters, no
    control character (NUL included), and its file name within :data:`MAX_NAME_BYTES`."""
    if not 0 < len(app_id) <= MAX_APP_ID_LENGTH or not app_id.isprintable():
        return False
    try:
        return len(sanitize(app_id).encode("utf-8")) <= MAX_NAME_BYTES
    except UnicodeEncodeError:  # a lone surrogate
        return False


def sanitize(name: str) -> str:
    """Spark's ``Utils.sanitizeDirName`` (how an app id becomes a file name)."""
    for ch in " :/":
        name = name.replace(ch, "-")
    for ch in ".${}'\"":
        name = name.replace(ch, "_")
    return name.lower()


def candidate_names(app_id: str) -> Iterator[str]:
    """The names the logs of ``app_id`` may have; none for an implausible id."""
    if not plausible_app_id(app_id):
        return
    base = sanitize(app_id)
    for attempt in _ATTEMPT_SUFFIXES:
        stem = base + attempt
        names = [ROLLING_DIR_PREFIX + stem]
        for codec in ("", *(f".{c}" for c in KNOWN_CODECS)):
            names += [stem + codec, stem + codec + IN_PROGRESS]
        yield from (name for name in names if len(name.encode("utf-8")) <= MAX_NAME_BYTES)


def find_logs(source: Source, app_id: str) -> Iterator[EventLog]:
    """The logs of ``app_id`` at the names Spark gives them, one ``stat`` per name.

    A name that is not there is passed over, and so is one whose files do not make a
    log (with a warning); a source that fails ends the search (a warning too).
    """
    for name in candidate_names(app_id):
        path = source.join(source.root_path, name)
        try:
            entry = source.stat(path)
        except SourceNotFound:
            continue
        except SourceError as exc:
            log.warning("on-demand load of %s: %s", app_id, exc)
            return
        try:
            event_log = event_log_at(source, entry)
        except (LogError, SourceError) as exc:
            log.warning("on-demand load of %s: skipping %s: %s", app_id, path, exc)
            continue
        yield event_log


class OnDemandIndex:
    """The application index, plus an on-demand load when an id is not in it yet."""

    def __init__(self, index: AppLookup, load: Callable[[str], bool], *,
                 enabled: Callable[[], bool] = lambda: True, miss_ttl: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.index = index
        self.load = load
        self.enabled = enabled
        self.miss_ttl = miss_ttl
        self.clock = clock
        self._misses: dict[str, float] = {}
        self._lock = threading.Lock()
        self.loads = 0

    def get(self, app_id: str) -> AppEntry | None:
        app = self.index.get(app_id)
        if app is not None or not self.enabled():
            return app
        if not plausible_app_id(app_id):
            log.info("no on-demand load for an implausible application id %r (%d characters)", app_id[:100], len(app_id))
            return None
        now = self.clock()
        with self._lock:
            missed = self._misses.get(app_id)
            if missed is not None and now - missed < self.miss_ttl:
                return None
            if len(self._misses) > 10_000:
                self._misses.clear()
        if self.load(app_id):
            self.loads += 1
            return self.index.get(app_id)
        with self._lock:
            self._misses[app_id] = now
        return None

    def sorted_apps(self) -> list[AppEntry]:
        return self.index.sorted_apps()

    def __len__(self) -> int:
        return len(self.index)

    @property
    def version(self) -> int:
        return self.index.version
