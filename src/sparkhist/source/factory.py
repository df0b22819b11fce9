"""Pick a Source for a log-directory URL."""

from __future__ import annotations

from urllib.parse import urlparse

from sparkhist.errors import ConfigError
from sparkhist.source.base import Source
from sparkhist.source.local import LocalSource


def open_source(url: str) -> Source:
    """A source for ``url``: a plain path or ``file:`` URL, ``hdfs://`` or ``(s)webhdfs://`` (S3 comes later)."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        path = parsed.path if parsed.scheme == "file" else url
        if not path:
            raise ConfigError(f"empty log directory: {url!r}")
        return LocalSource(path)
    if parsed.scheme == "hdfs":
        from sparkhist.source.hdfs import HdfsSource  # lazy: loads the native client

        return HdfsSource(url)
    if parsed.scheme in ("webhdfs", "swebhdfs"):
        from sparkhist.source.webhdfs import WebHdfsSource

        return WebHdfsSource(url)
    raise ConfigError(f"unsupported log directory scheme {parsed.scheme!r} in {url!r} (supported: local paths, file:, hdfs:, webhdfs:)")
