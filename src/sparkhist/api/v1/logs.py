"""``/applications/{id}[/{attempt}]/logs``: the event logs as a zip, as the SHS sends them.

A single-file log is one entry named after the file; a rolling log is a directory
entry ``eventlog_v2_<id>/`` followed by its ``appstatus_*`` and ``events_*`` files
(``RollingEventLogFilesFileReader.zipEventLogFiles``). Without an attempt, every
attempt is included.

Only the log's own regular files go in. The source lists and opens nothing else (a
local source leaves out FIFOs, sockets, devices and symbolic links whose real path
leaves their directory, and opens only a regular file inside the directory it is
named in: a ``shadow -> /etc/shadow`` link in a rolling directory is never read);
here, a child must also be named directly inside its rolling directory. A file that
cannot be opened is left out of the zip, with a warning, and the others still go in.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from typing import IO

from sparkhist.errors import SourceError
from sparkhist.reader.layout import log_files
from sparkhist.source.base import Source
from sparkhist.store.applications import AttemptEntry

log = logging.getLogger("sparkhist.api")

_CHUNK = 1 << 20


def _add_file(archive: zipfile.ZipFile, source: Source, path: str, arcname: str) -> None:
    try:
        src = source.open(path)
    except SourceError as exc:
        log.warning("event-log download: %s left out of the zip: %s", path, exc)
        return
    with src, archive.open(zipfile.ZipInfo(arcname), "w") as dst:
        shutil.copyfileobj(src, dst, _CHUNK)


def write_logs_zip(out: IO[bytes], source: Source, attempts: Sequence[AttemptEntry]) -> None:
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for attempt in attempts:
            name = attempt.log_path.rstrip("/").rsplit("/", 1)[-1]
            if attempt.log_kind == "rolling":
                archive.writestr(zipfile.ZipInfo(name + "/"), b"")
                # The directory's files in the file system's listing order, as the SHS zips
                # ``fs.listStatus(rootPath)`` (whose checksum file system hides .crc files).
                for child in log_files(source.list(attempt.log_path)):
                    if "/" in child.name or child.path != source.join(attempt.log_path, child.name):
                        log.warning("event-log download: %s is not a file of %s; left out", child.path, attempt.log_path)
                        continue
                    _add_file(archive, source, child.path, f"{name}/{child.name}")
            else:
                _add_file(archive, source, attempt.log_path, name)


def logs_zip_chunks(source: Source, attempts: Sequence[AttemptEntry]) -> Iterator[bytes]:
    """The zip's bytes, built in a spooled temp file so big logs never sit in memory."""
    with tempfile.SpooledTemporaryFile(max_size=8 << 20) as spool:
        write_logs_zip(spool, source, attempts)
        spool.seek(0)
        while chunk := spool.read(_CHUNK):
            yield chunk


def zip_file_name(app_id: str, attempt_id: str | None) -> str:
    return f"eventLogs-{app_id}.zip" if attempt_id is None else f"eventLogs-{app_id}-{attempt_id}.zip"
