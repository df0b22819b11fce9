"""The one exception tree of sparkhist.

    SparkhistError
    ├── ConfigError              bad configuration: one clear line, exit 2
    ├── SourceError              a log source failed
    │   ├── SourceUnavailable    retryable: timeout, refused, NameNode hung
    │   └── SourceNotFound       permanent: the path does not exist
    ├── LogError                 one event log cannot be used (the scan goes on)
    │   ├── LayoutError          a rolling directory is malformed (missing index, no appstatus)
    │   ├── CodecError           compressed bytes are damaged (bad magic, checksum, framing)
    │   └── LineTooLongError     a line exceeds the configured maximum
    ├── StoreError               the persistent store failed
    │   └── StoreCorrupt         a checksum did not match
    └── ApiError                 an API answer other than 200 (status + plain-text message)
        ├── NotFound             404 (JerseyNotFound: 404 as an HTML page)
        ├── BadParameter         400 (BadDate: 400 with a JSON content type)
        ├── ServiceUnavailable   503
        └── JerseyServerError    500 as an HTML page (requests the SHS fails with an exception)

Foreign exceptions are translated at the edge (``source/faults.py`` for every log
source, ``reader/codecs.py``) and re-raised ``from`` the original, so callers catch a
category, never a library's class.
"""

from __future__ import annotations


class SparkhistError(Exception):
    """Base of every error sparkhist raises on purpose."""


class ConfigError(SparkhistError):
    """The configuration cannot be used."""


class SourceError(SparkhistError):
    """A log source (local, HDFS, WebHDFS, S3) failed."""

    retryable = False


class SourceUnavailable(SourceError):
    """The source did not answer in time or refused; trying again may work."""

    retryable = True


class SourceNotFound(SourceError):
    """The path does not exist on the source."""


class LogError(SparkhistError):
    """One event log cannot be used; the scan skips it with a logged reason."""


class LayoutError(LogError):
    """A log's files do not form a valid layout (e.g. a rolling log with a missing index)."""


class CodecError(LogError):
    """Compressed bytes are damaged: bad magic, bad checksum or broken framing."""


class LineTooLongError(LogError):
    """A line is longer than the configured maximum."""


class StoreError(SparkhistError):
    """The persistent store failed."""


class StoreCorrupt(StoreError):
    """Stored bytes do not match their checksum."""


class ApiError(SparkhistError):
    """An error the REST API turns into a status code and a plain-text body."""

    status = 500


class NotFound(ApiError):
    """404 with the SHS's message, e.g. ``unknown app: X``."""

    status = 404


class BadParameter(ApiError):
    """400 with the SHS's message, e.g. ``Bad value for parameter "quantiles"...``."""

    status = 400


class ServiceUnavailable(ApiError):
    """503, e.g. ``Thread dumps not available through the history server.``"""

    status = 503


class JerseyServerError(ApiError):
    """500 rendered as the servlet container's HTML page: the SHS fails this request
    with an exception (e.g. ``sql?length=0``, ``taskList?length=-1``)."""

    status = 500


class JerseyNotFound(NotFound):
    """404 rendered as the servlet container's HTML page, as the SHS does when a query
    parameter fails conversion (``?status=bogus``) or a path segment fails its pattern."""


class BadDate(BadParameter):
    """400 for an unparseable date parameter; the SHS sends it with a JSON content type."""
