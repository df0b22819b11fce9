"""Start-up checks: a setting that cannot work stops the command before anything is bound or written.

Each check raises :class:`~sparkhist.errors.ConfigError`, which the command line prints
as one line on stderr with exit status 2 (README: "A bad value is one clear error line
and exit status 2"), instead of a traceback from deep inside the start:

- the store of a writer (``serve``, ``scan``) is a directory that exists or can be
  created, and that this process may write in (not a read-only mount);
- the store of a reader (``apps``, ``verify``) is a directory;
- the listen address of ``serve`` resolves and its port is free;
- a local log directory exists, as the SHS requires (``Logging directory specified
  does not exist``), unless the store already holds applications indexed from it:
  those are then served offline, which :func:`check_log_dir` reports; of several log
  directories, one at least (``None of the specified log directories exist``).

Remote log directories (``hdfs://``...) are not checked here: a NameNode that is down
at start is a source outage, served through and reported by the health document.
"""

from __future__ import annotations

import logging
import os
import socket
from urllib.parse import urlparse

from sparkhist.config import log_directories
from sparkhist.errors import ConfigError, StoreError

log = logging.getLogger("sparkhist.server")


def check_writable_store(store_dir: str) -> None:
    """The store directory exists (created if need be) and this process can write in it."""
    if os.path.lexists(store_dir) and not os.path.isdir(store_dir):
        raise ConfigError(f"store directory {store_dir} is not a directory")
    try:
        os.makedirs(store_dir, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"store directory {store_dir} cannot be created: {exc.strerror or exc}") from None
    if not os.access(store_dir, os.W_OK | os.X_OK):
        raise ConfigError(f"store directory {store_dir} is not writable: {_why_not_writable(store_dir)}")


def check_listen(host: str, port: int) -> None:
    """The address can be listened on (resolvable, local, port free): each address
    uvicorn's server will bind (asyncio's ``create_server``: every address the host
    resolves to, ``SO_REUSEADDR``) is bound by a socket closed at once. A port taken
    between this check and the server's bind is still uvicorn's error and exit status."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    for family, kind, proto, _name, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # as asyncio's create_server binds it
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def check_readable_store(store_dir: str) -> None:
    """The store directory of a command that only reads it exists (nothing is created)."""
    if not os.path.exists(store_dir):
        raise ConfigError(f"store directory {store_dir} does not exist")
    if not os.path.isdir(store_dir):
        raise ConfigError(f"store directory {store_dir} is not a directory")


def check_log_dir(log_dir: str, store_dir: str) -> int | None:
    """A local log directory exists; if not, the store must hold applications from it.

    Returns None when the directory is there (or remote), else the number of
    applications the store holds from it: the caller serves them offline and says so.
    """
    dirs = log_directories(log_dir)
    if len(dirs) > 1:
        return _check_log_dirs(dirs, log_dir, store_dir)
    parsed = urlparse(log_dir)
    if parsed.scheme not in ("", "file"):
        return None
    path = parsed.path if parsed.scheme == "file" else log_dir
    if os.path.isdir(path):
        return None
    if os.path.exists(path):
        raise ConfigError(f"log directory {path} is not a directory")
    held = applications_from(path, store_dir)
    if not held:
        raise ConfigError(f"log directory {path} does not exist (and the store {store_dir} holds no application "
                          "indexed from it)")
    return held


def _check_log_dirs(dirs: list[str], log_dir: str, store_dir: str) -> int | None:
    """Several log directories: as the SHS, a local one that is missing (or not a directory) is a
    warning while another may be read; none of them there stops the start, unless the store holds
    applications indexed from them (served offline)."""
    missing: list[str] = []
    for directory in dirs:
        parsed = urlparse(directory)
        if parsed.scheme not in ("", "file"):
            continue
        if not os.path.isdir(parsed.path if parsed.scheme == "file" else directory):
            missing.append(directory)
    if len(missing) < len(dirs):
        for directory in missing:
            log.warning("log directory %s does not exist or is not a directory; the others are read", directory)
        return None
    held = applications_from(log_dir, store_dir)
    if not held:
        raise ConfigError(f"none of the log directories exist: {', '.join(dirs)} (and the store {store_dir} "
                          "holds no application indexed from them)")
    return held


def applications_from(log_dir: str, store_dir: str) -> int:
    """How many applications the store's catalog lists from the local ``log_dir`` (read only)."""
    from sparkhist.source.factory import open_source
    from sparkhist.store.catalog import CATALOG_FILE, Catalog

    if not os.path.exists(os.path.join(store_dir, CATALOG_FILE)):
        return 0
    try:
        catalog = Catalog(store_dir, None, read_only=True)
    except StoreError:
        return 0  # unreadable: it holds nothing that can be served
    try:
        source = open_source(log_dir)  # local: nothing is read; the root as the catalog records it
        root = source.root
        source.close()
        if catalog.meta.get("log_dir") != root:
            return 0  # indexed from elsewhere: a writer would empty it for this directory
        return len({entry.app_id for entry in catalog.load_listing(repair=False).entries})
    except StoreError:
        return 0
    finally:
        catalog.close()


def _why_not_writable(path: str) -> str:
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "read-only file system"
    except OSError:
        pass
    return "permission denied"
