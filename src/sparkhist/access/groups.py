"""A user's groups, as ``spark.user.groups.mapping`` finds them.

Spark's default provider, ``ShellBasedGroupsMappingProvider``, runs ``id -Gn <user>`` on
the server's host and splits its output on spaces; a failure (an unknown user) is logged
and counts as no group. The empty string turns group lookups off. Other providers are
Java classes, which sparkhist cannot load: naming one is a settings error, not a silent
"no groups".

Unlike Spark's provider (which runs ``id`` for every check), answers are kept for
:data:`CACHE_SECONDS`, as Hadoop's group cache does, so a page of requests costs one
``id`` per user.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from sparkhist.errors import ConfigError

log = logging.getLogger("sparkhist.access")

SHELL_PROVIDER = "org.apache.spark.security.ShellBasedGroupsMappingProvider"
CACHE_SECONDS = 60.0
CACHE_ENTRIES = 4096
#: ``id`` answers at once; a host whose name service hangs costs this much per lookup.
ID_TIMEOUT = 5.0


class GroupMapping(Protocol):
    def groups(self, user: str) -> frozenset[str]: ...


class NoGroups:
    """``spark.user.groups.mapping`` set to the empty string: nobody is in any group."""

    def groups(self, user: str) -> frozenset[str]:
        return frozenset()


Run = Callable[[list[str]], str]


def _run_id(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=ID_TIMEOUT, check=True,
                          stdin=subprocess.DEVNULL)
    return done.stdout


class ShellGroups:
    """``id -Gn <user>``, as Spark's ``ShellBasedGroupsMappingProvider``, with a small cache."""

    def __init__(self, run: Run = _run_id, clock: Callable[[], float] = time.monotonic,
                 ttl: float = CACHE_SECONDS, id_path: str | None = None) -> None:
        self._run = run
        self._clock = clock
        self._ttl = ttl
        self._id = id_path or shutil.which("id") or "id"
        self._cache: OrderedDict[str, tuple[float, frozenset[str]]] = OrderedDict()
        self._lock = threading.Lock()

    def groups(self, user: str) -> frozenset[str]:
        now = self._clock()
        with self._lock:
            kept = self._cache.get(user)
            if kept is not None and now - kept[0] < self._ttl:
                return kept[1]
        found = self._lookup(user)
        with self._lock:
            self._cache[user] = (now, found)
            self._cache.move_to_end(user)
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return found

    def _lookup(self, user: str) -> frozenset[str]:
        # "--" ends id's options: a user name starting with "-" is a name, never an option
        # (Spark passes it bare).
        try:
            out = self._run([self._id, "-Gn", "--", user])
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            log.warning("error getting groups for user=%s: %s", user, exc)
            return frozenset()
        return frozenset(part for part in out.rstrip("\n").split(" ") if part)


def group_mapping(provider: str) -> GroupMapping:
    """The mapping named by ``spark.user.groups.mapping`` (raises ConfigError for a Java class)."""
    name = provider.strip()
    if name == "":
        return NoGroups()
    if name == SHELL_PROVIDER:
        return ShellGroups()
    raise ConfigError(f"spark.user.groups.mapping={name} cannot be used: sparkhist runs no Java group provider; "
                      f"use {SHELL_PROVIDER} (id -Gn, the default) or the empty string (no groups)")
