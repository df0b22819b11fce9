"""The local file-system source.

One bad entry never fails a listing: each entry is stat'ed on its own, and one that
cannot be used is left out of the listing and reported to :attr:`LocalSource.skipped`
(one warning per entry and change, ``/health/details``, ``sparkhist_skipped_logs``):

* a symbolic link that loops (``ELOOP``), dangles, or whose real path leaves the
  directory it is listed in (the log directory, or a rolling log's directory);
* anything but a regular file or a directory: FIFOs, sockets, devices;
* an entry this process may not read (its mode bits; ACLs show when it is opened);
* a name that is not valid UTF-8.

An entry removed between the listing and its stat is simply not listed.

Only regular files are opened, and opening never blocks: :meth:`LocalSource.open` opens
the path with ``O_NOFOLLOW | O_NONBLOCK`` (a FIFO swapped in after the listing opens at
once, without waiting for a writer) and refuses anything ``fstat`` does not call a regular
file. A last component that is not a link cannot leave its directory, so the usual open
costs one ``open`` and one ``fstat``, plus one ``lstat`` of a rolling log's directory
(a directory swapped for a link is refused when its real path leaves the log directory,
whose real path is resolved once). Only a last component that is a link is resolved:
refused when its real path leaves the directory of the path asked for, else its target
opened as above.
"""

from __future__ import annotations

import builtins
import errno
import os
import shutil
import stat
from collections import Counter
from collections.abc import Callable

from sparkhist.errors import SourceError
from sparkhist.files import write_file_atomically
from sparkhist.source import skipped as why
from sparkhist.source.base import ByteStream, FileEntry, SourceHealth
from sparkhist.source.faults import os_error
from sparkhist.source.skipped import SkippedLogs

#: Open flags: never follow a last symbolic link (a link is resolved and checked first), never wait.
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
#: What ``open`` with ``O_NOFOLLOW`` fails with when the last component is a link (Linux, BSDs).
_LINK_ERRNOS = frozenset({errno.ELOOP, errno.EMLINK, getattr(errno, "EFTYPE", errno.ELOOP)})


class LocalSource:
    """Reads a log directory on local disk.

    ``opens``, ``lists`` and ``calls`` (per operation) count what the source was asked
    for, so tests (and metrics) can prove that unchanged logs are never opened again.
    """

    def __init__(self, root: str) -> None:
        self.root_path = os.path.abspath(root)
        self.root = "file:" + self.root_path
        self.opens = 0
        self.lists = 0
        self.calls: Counter[str] = Counter()  # list / stat / open
        self.skipped = SkippedLogs(self.root)
        self._uid = os.geteuid()
        self._groups = frozenset({os.getegid(), *os.getgroups()})
        self._real_root: str | None = None  # the log directory's real path, resolved at the first need

    def list(self, path: str) -> builtins.list[FileEntry]:
        self.lists += 1
        self.calls["list"] += 1
        entries: builtins.list[FileEntry] = []
        present: builtins.list[str] = []
        reported: builtins.list[str] = []
        real_dir: builtins.list[str] = []  # realpath of ``path``, computed at the first symbolic link

        def directory() -> str:
            if not real_dir:
                real_dir.append(os.path.realpath(path))
            return real_dir[0]

        try:
            with os.scandir(path) as it:
                for d in it:
                    present.append(d.path)
                    result = self._examine(d, directory)
                    if isinstance(result, FileEntry):
                        entries.append(result)
                    elif result is not None:
                        reported.append(d.path)
                        self.skipped.report(d.path, *result)
        except OSError as exc:
            raise os_error(exc, "list", path) from exc
        self.skipped.after_listing(path, present, reported)
        return entries

    def _examine(self, d: os.DirEntry[str], directory: Callable[[], str]) -> FileEntry | tuple[str, str] | None:
        """The entry, or why it is skipped (reason, detail), or None when it is gone."""
        if not _decodable(d.name):
            return why.UNDECODABLE_NAME, "the file name is not valid UTF-8"
        try:
            link = d.is_symlink()
        except OSError:
            link = False
        try:
            st = d.stat()  # follows a symbolic link
        except FileNotFoundError:
            if link and os.path.lexists(d.path):
                return why.DANGLING_LINK, "a symbolic link whose target does not exist"
            return None  # removed between the listing and the stat
        except PermissionError as exc:
            return why.PERMISSION_DENIED, f"cannot stat: {exc.strerror}"
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return why.SYMLINK_LOOP, f"cannot stat: {exc.strerror}"
            return why.UNREADABLE, f"cannot stat: {exc.strerror}"
        if link and not _inside(os.path.realpath(d.path), directory()):
            return why.OUTSIDE, "a symbolic link whose real path leaves its directory"
        mode = st.st_mode
        is_dir = stat.S_ISDIR(mode)
        if not is_dir and not stat.S_ISREG(mode):
            return why.NOT_REGULAR, f"not a regular file: {_kind(mode)}"
        if not self._may_read(st, is_dir):
            return why.PERMISSION_DENIED, f"no read permission (mode {stat.filemode(mode)}, owner uid {st.st_uid})"
        return FileEntry(path=d.path, name=d.name, size=0 if is_dir else st.st_size,
                         mtime_ms=st.st_mtime_ns // 1_000_000, is_dir=is_dir)

    def _may_read(self, st: os.stat_result, is_dir: bool) -> bool:
        """Whether this process may read the entry (a directory: read and search), by its mode bits."""
        if self._uid == 0:
            return True  # CAP_DAC_OVERRIDE: an open that fails anyway is reported by the scanner
        if st.st_uid == self._uid:
            bits = st.st_mode >> 6
        elif st.st_gid in self._groups:
            bits = st.st_mode >> 3
        else:
            bits = st.st_mode
        need = 0o5 if is_dir else 0o4
        return bits & need == need

    def stat(self, path: str) -> FileEntry:
        """One entry, under the listing's rules: a link whose real path leaves its directory,
        or anything but a file or a directory, is refused (:class:`SourceError`)."""
        self.calls["stat"] += 1
        try:
            st = os.stat(path)
            link = os.path.islink(path)
        except OSError as exc:
            raise os_error(exc, "stat", path) from exc
        if link and not _inside(os.path.realpath(path), os.path.realpath(os.path.dirname(path))):
            raise SourceError(f"cannot use {path}: its real path leaves its directory")
        is_dir = stat.S_ISDIR(st.st_mode)
        if not is_dir and not stat.S_ISREG(st.st_mode):
            raise SourceError(f"cannot use {path}: not a regular file ({_kind(st.st_mode)})")
        return FileEntry(path, os.path.basename(path), 0 if is_dir else st.st_size, st.st_mtime_ns // 1_000_000, is_dir)

    def open(self, path: str, offset: int = 0) -> ByteStream:
        """A regular file inside its directory, opened without following a last link or blocking."""
        self.opens += 1
        self.calls["open"] += 1
        parent = os.path.dirname(path)
        if parent != self.root_path:
            self._check_parent(path, parent)
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as exc:
            if exc.errno not in _LINK_ERRNOS:
                raise os_error(exc, "open", path) from exc
            fd = self._open_link(path, parent)  # a link (or a loop): resolved and checked
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise SourceError(f"cannot open {path}: not a regular file ({_kind(mode)})")
            f = os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise
        if offset:
            try:
                f.seek(offset)
            except BaseException:
                f.close()  # the caller never gets it: close it here, not at garbage collection
                raise
        return f

    def _check_parent(self, path: str, parent: str) -> None:
        """A file of a rolling log's directory: that directory, when it is a link, must stay in
        the log directory (the listing's rule; a directory swapped for a link after it)."""
        if os.path.dirname(parent) != self.root_path:
            return  # not a log directory's entry: the path's own directory is the only bound
        try:
            link = stat.S_ISLNK(os.lstat(parent).st_mode)
        except OSError as exc:
            raise os_error(exc, "open", path) from exc
        if link and not _inside(os.path.realpath(parent), self._root_real()):
            raise SourceError(f"cannot open {path}: its directory's real path leaves the log directory")

    def _root_real(self) -> str:
        if self._real_root is None:
            self._real_root = os.path.realpath(self.root_path)
        return self._real_root

    def _open_link(self, path: str, parent: str) -> int:
        """Open the target of the link ``path`` when its real path stays in ``parent``."""
        real = os.path.realpath(path)
        if not _inside(real, os.path.realpath(parent)):
            raise SourceError(f"cannot open {path}: its real path leaves its directory")
        try:
            return os.open(real, _OPEN_FLAGS)
        except OSError as exc:
            raise os_error(exc, "open", path) from exc

    def delete(self, path: str) -> None:
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)  # a file, or a link (never what it points to)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise os_error(exc, "delete", path) from exc

    def join(self, parent: str, name: str) -> str:
        return os.path.join(parent, name)

    def put_atomic(self, path: str, data: bytes) -> None:
        """Write ``path`` whole or not at all (a store location's write side, not a log
        source's): a temporary name beside it, fsync, rename over, fsync of the directory;
        missing parent directories are made."""
        directory = os.path.dirname(path)
        try:
            os.makedirs(directory, exist_ok=True)
            write_file_atomically(path, data, os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp"))
        except OSError as exc:
            raise os_error(exc, "put", path) from exc

    def health(self) -> SourceHealth:
        """Local disk has no endpoint state: always ``ok`` here (call outcomes tell the rest)."""
        return SourceHealth(source=self.root, state="ok", since=None, last_error=None, last_error_at=None, breaker=None)

    def close(self) -> None:
        """Nothing to release: each stream is closed by its reader."""


def _decodable(name: str) -> bool:
    """False for a name with bytes that are not UTF-8 (the OS hands them over as surrogate escapes)."""
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _inside(real: str, directory: str) -> bool:
    return real.startswith(directory.rstrip(os.sep) + os.sep)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISDIR(mode):
        return "a directory"
    return f"file type {stat.S_IFMT(mode):o}"
