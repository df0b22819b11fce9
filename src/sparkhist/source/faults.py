"""Backend exceptions into the :mod:`sparkhist.errors` tree: the one place that knows them.

A source raises :class:`~sparkhist.errors.SourceError` subclasses only. This module turns
a library's exception (hdfs-native, httpx, WebHDFS answers, the OS) into one, so the
sources re-raise it ``from`` the original (as httpx's ``map_httpcore_exceptions``)::

    what the backend said                                   raised as
    ----------------------------------------------------    ------------------------------
    FileNotFoundError; Hadoop FileNotFoundException;        SourceNotFound
      HTTP 404
    refused, reset, broken pipe, timed out (OSError,         SourceUnavailable (retryable)
      hdfs-native's transport errors, httpx's); a
      transient Hadoop exception (TRANSIENT_EXCEPTIONS);
      HTTP 5xx
    no answer within the deadline; httpx timeouts            DeadlineExceeded (a SourceUnavailable)
    an object store's 429, or 503 SlowDown/ServerBusy        Throttled (a SourceUnavailable: retried
                                                               with backoff, not an endpoint failure)
    an object store's 412 (the object changed while read)    SourceError (this read; the scan retries)
    a Rust panic (BackendPanic); permissions; anything       SourceError (permanent)
      else

Entry points: :func:`translating` (a ``with`` block around backend calls) and
:func:`translate_error` for hdfs-native and anything else; :func:`webhdfs_error` for a
WebHDFS error answer; :func:`http_error` for httpx transport errors;
:func:`object_store_error` for ``obstore`` (S3, GCS, Azure); :func:`os_error` for
local disk, where the operation decides (a failed ``list``/``stat`` is the directory
being unavailable, retryable; a file that cannot be opened or deleted is that file's
problem).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal, TypeGuard

from sparkhist.errors import SourceError, SourceNotFound, SourceUnavailable
from sparkhist.source.deadline import BackendPanic, DeadlineExceeded, is_panic

if TYPE_CHECKING:
    import httpx

__all__ = [
    "NOT_FOUND_EXCEPTION",
    "STANDBY_EXCEPTION",
    "TRANSIENT_EXCEPTIONS",
    "Throttled",
    "http_error",
    "http_status",
    "object_store_error",
    "os_error",
    "translate_error",
    "translating",
    "webhdfs_error",
]

#: The Hadoop exception of a missing path.
NOT_FOUND_EXCEPTION = "FileNotFoundException"
#: A standby NameNode's answer: another NameNode may be active.
STANDBY_EXCEPTION = "StandbyException"
#: Hadoop exceptions (RPC ``RemoteException`` class names, WebHDFS ``RemoteException.exception``)
#: after which the same call may succeed: a NameNode in transition, starting up, or busy.
TRANSIENT_EXCEPTIONS = (
    STANDBY_EXCEPTION,
    "RetriableException",
    "SafeModeException",
    "ObserverRetryOnActiveException",
)
#: Markers, in hdfs-native's error text (``RuntimeError("<HdfsError debug>")``), of a
#: connection or DataNode transfer that failed: worth retrying, elsewhere.
_TRANSPORT_MARKERS = (
    "IOError",
    "DataTransferError",
    "ChecksumError",
    "BlocksNotFound",
    "InvalidRPCResponse",
    "ConnectionClosed",
    "Connection refused",
    "Connection reset",
    "Broken pipe",
    "timed out",
)
_RETRYABLE_MARKERS = TRANSIENT_EXCEPTIONS + _TRANSPORT_MARKERS

#: Local errors that say something about the file, not about the source answering.
_PERMANENT_OS_ERRORS = (IsADirectoryError, NotADirectoryError, PermissionError, FileExistsError, NotImplementedError)


class Throttled(SourceUnavailable):
    """The endpoint answered "slow down" (S3 503 SlowDown, HTTP 429, Azure ServerBusy):
    retried with jittered backoff, and not counted against the circuit breaker (the
    endpoint is up, only busy: :class:`~sparkhist.source.guard.SourceGuard`)."""


def translate_error(exc: BaseException, what: str) -> SourceError:
    """The :mod:`sparkhist.errors` class for a backend error (returned, never raised).

    ``what`` names the call (``"hdfs://ns stat /x"``) and starts the message.
    """
    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, FileNotFoundError):
        return SourceNotFound(f"{what}: no such file or directory")
    if isinstance(exc, BackendPanic):
        return SourceError(f"{what}: {exc}")
    if isinstance(exc, _PERMANENT_OS_ERRORS):
        return SourceError(f"{what}: {type(exc).__name__}: {exc}")
    if isinstance(exc, (OSError, ConnectionError, TimeoutError)):
        return SourceUnavailable(f"{what}: {exc}")
    if _is_http_transport_error(exc):
        return http_error(exc, what)
    text = str(exc)
    if NOT_FOUND_EXCEPTION in text:
        return SourceNotFound(f"{what}: {text[:300]}")
    if any(marker in text for marker in _RETRYABLE_MARKERS):
        return SourceUnavailable(f"{what}: {text[:300]}")
    return SourceError(f"{what}: {type(exc).__name__}: {text[:300]}")


@contextmanager
def translating(what: str) -> Iterator[None]:
    """Re-raises any exception of the block (a Rust panic included) as :func:`translate_error`'s.

    :class:`~sparkhist.errors.SourceError` passes unchanged, and so do the
    ``BaseException``s that are not errors (``KeyboardInterrupt``, ``SystemExit``,
    cancellation).
    """
    try:
        yield
    except SourceError:
        raise
    except Exception as exc:
        raise translate_error(exc, what) from exc
    except BaseException as exc:
        if is_panic(exc):
            raise translate_error(exc, what) from exc
        raise


def webhdfs_error(status: int, exception: str, message: str, what: str) -> SourceError:
    """A WebHDFS error answer: HTTP ``status`` and its ``RemoteException`` (``exception``, ``message``)."""
    detail = f"WebHDFS {what}: HTTP {status} {exception} {message}".strip()
    if status == 404 or exception == NOT_FOUND_EXCEPTION:
        return SourceNotFound(detail)
    if status >= 500 or exception in TRANSIENT_EXCEPTIONS:
        return SourceUnavailable(detail)
    return SourceError(detail)


def http_error(exc: httpx.TransportError, what: str) -> SourceUnavailable:
    """An httpx transport error: no answer in time (:class:`DeadlineExceeded`), or none at all."""
    import httpx  # here: a local-only process never loads httpx

    if isinstance(exc, httpx.TimeoutException):
        return DeadlineExceeded(f"{what}: timed out: {exc!r}")
    return SourceUnavailable(f"{what}: unreachable: {exc!r}")


def _is_http_transport_error(exc: BaseException) -> TypeGuard[httpx.TransportError]:
    httpx = sys.modules.get("httpx")  # not loaded: the error cannot be one of its
    return httpx is not None and isinstance(exc, httpx.TransportError)


#: An HTTP status in object_store's error text ("status code: 503", "status: 503").
_STATUS = re.compile(r"status(?: code)?: (\d{3})\b")
#: Throttling answers: S3 (SlowDown, 503), GCS (rateLimitExceeded, 429), Azure (ServerBusy, 503).
_THROTTLE_MARKERS = ("SlowDown", "Throttl", "TooManyRequests", "RequestLimitExceeded", "rateLimitExceeded", "ServerBusy")
#: object_store's words for a request that got no (complete) answer in time: in its message,
#: or as the error kind in its debug dump ("kind: Timeout", reqwest's "TimedOut").
_TIMEOUT_MARKERS = ("timed out", "deadline has elapsed")
_TIMEOUT_KINDS = ("kind: Timeout", "TimedOut")
_OBJECT_TRANSPORT_MARKERS = (
    "error sending request",
    "HTTP error",
    "connection",
    "Connection",
    "error decoding response body",
    "error reading a body",
    "end of file",
    "incomplete",
    "reset by peer",
    "refused",
    "Broken pipe",
    "dispatch task is gone",
)


def _body(head: str) -> str:
    """The answer's body in obstore's error text ("... status code: 503 Service Unavailable: <body>")."""
    match = re.search(r"status code: \d{3}[^:]*:(.*)$", head, re.DOTALL)
    return match.group(1).strip() if match else ""


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of an ``obstore`` error's answer; None when there was no answer."""
    match = _STATUS.search(str(exc))
    return int(match.group(1)) if match else None


def object_store_error(exc: BaseException, what: str) -> SourceError:
    """An ``obstore`` error (S3, GCS, Azure), from its class and the HTTP status in its text.

    404 is :class:`SourceNotFound`; 429 and 503 "slow down" answers are
    :class:`Throttled` (a 503 without a body too: S3 answers a throttled HEAD so); other
    5xx, 408, transport failures and timeouts are :class:`SourceUnavailable`
    (:class:`DeadlineExceeded` for timeouts); 401, 403
    (credentials, permissions), 412 (changed while being read) and everything else are
    permanent :class:`SourceError`.
    """
    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, FileNotFoundError):
        return SourceNotFound(f"{what}: no such object")
    kind = type(exc).__name__
    text = str(exc)
    head = text.split("\n\nDebug source:", 1)[0][:400]  # obstore appends a long debug dump
    status = http_status(exc)
    if kind in ("PermissionDeniedError", "UnauthenticatedError") or status in (401, 403):
        return SourceError(f"{what}: access denied ({kind}): {head}")
    if kind == "PreconditionError" or status == 412:
        return SourceError(f"{what}: the object changed while it was read: {head}")
    if status == 404 or kind == "NotFoundError":
        return SourceNotFound(f"{what}: no such object")
    if status == 429 or (status == 503 and (any(m in text for m in _THROTTLE_MARKERS) or not _body(head))):
        return Throttled(f"{what}: throttled (HTTP {status}): {head}")
    if status is not None and (status >= 500 or status == 408):
        return SourceUnavailable(f"{what}: HTTP {status}: {head}")
    if status is None and (any(m in head for m in _TIMEOUT_MARKERS) or any(k in text for k in _TIMEOUT_KINDS)):
        return DeadlineExceeded(f"{what}: no answer in time: {head}")
    if status is None and any(m in head for m in _OBJECT_TRANSPORT_MARKERS):
        return SourceUnavailable(f"{what}: unreachable: {head}")
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return SourceUnavailable(f"{what}: {head}")
    return SourceError(f"{what}: {kind}: {head}")


def os_error(exc: OSError, op: Literal["list", "stat", "open", "delete", "put"], path: str) -> SourceError:
    """A local file-system error of ``op`` on ``path``."""
    if isinstance(exc, FileNotFoundError):
        return SourceNotFound(f"no such {'directory' if op == 'list' else 'file'}: {path}")
    if op == "list" and isinstance(exc, NotADirectoryError):
        return SourceNotFound(f"not a directory: {path}")
    if op in ("list", "stat"):
        return SourceUnavailable(f"cannot {op} {path}: {exc}")
    return SourceError(f"cannot {op} {path}: {exc}")
