"""Pick a Source for a log-directory URL, with the fault-handling settings applied."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from sparkhist.errors import ConfigError
from sparkhist.source.base import Source
from sparkhist.source.local import LocalSource

__all__ = ["SourceOptions", "open_source"]

#: The settings (config.SETTINGS names) that shape a remote source.
_FIELDS = {
    "hadoop_conf_dir": "hadoop_conf_dir",
    "hadoop_conf": "hadoop_conf",
    "timeout": "source_timeout",
    "read_timeout": "source_read_timeout",
    "retries": "source_retries",
    "breaker_reset": "source_breaker_reset",
    "kerberos_principal": "kerberos_principal",
    "kerberos_keytab": "kerberos_keytab",
}


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """What a remote source takes from the settings (defaults: config.SETTINGS)."""

    hadoop_conf_dir: str | None = None
    hadoop_conf: tuple[tuple[str, str], ...] = ()
    timeout: float = 3.0  # each NameNode RPC / listing page
    read_timeout: float = 10.0  # each ranged read of up to chunk_size bytes
    retries: int = 3  # after the first attempt
    breaker_reset: float = 10.0
    kerberos_principal: str | None = None
    kerberos_keytab: str | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> SourceOptions:
        """From a :class:`~sparkhist.config.Settings` (or anything with the same attributes)."""
        values = {field: getattr(settings, name) for field, name in _FIELDS.items() if hasattr(settings, name)}
        # spark.hadoop.<key> in the properties file is a Hadoop property, as for Spark; the
        # --hadoop-conf pairs (flags, environment) come after it, so they win.
        prefix = "spark.hadoop."
        spark_hadoop = tuple((k[len(prefix):], v) for k, v in getattr(settings, "properties", ())
                             if k.startswith(prefix) and len(k) > len(prefix))
        if spark_hadoop:
            values["hadoop_conf"] = spark_hadoop + tuple(values.get("hadoop_conf", ()))
        return cls(**values)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> SourceOptions:
        """From the ``SPARKHIST_*`` variables alone (e.g. in an indexing worker process)."""
        from sparkhist.config import SETTINGS

        env = os.environ if environ is None else environ
        by_name = {s.name: s for s in SETTINGS}
        values: dict[str, Any] = {}
        for field, name in _FIELDS.items():
            setting = by_name[name]
            if setting.env in env:
                try:
                    values[field] = setting.parse(env[setting.env])
                except ValueError as exc:
                    raise ConfigError(f"bad value for {setting.env}: {env[setting.env]!r} ({exc})") from None
        return cls(**values)

    def object_store_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :class:`~sparkhist.source.objectstore.ObjectStoreSource`."""
        from sparkhist.source.guard import default_retry

        return {
            "timeout": self.timeout,
            "read_timeout": self.read_timeout,
            "retry": default_retry(retries=self.retries, timeout=self.timeout),
            "breaker_reset": self.breaker_reset,
        }

    def remote_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :class:`HdfsSource` / :class:`WebHdfsSource`."""
        from sparkhist.source.guard import default_retry

        return {
            "conf_dir": self.hadoop_conf_dir,
            "overrides": dict(self.hadoop_conf),
            "rpc_timeout": self.timeout,
            "read_timeout": self.read_timeout,
            "retry": default_retry(retries=self.retries, timeout=self.timeout),
            "breaker_reset": self.breaker_reset,
        }


def open_source(url: str, settings: Any = None) -> Source:
    """A source for ``url``: a plain path or ``file:`` URL, ``hdfs://``, ``(s)webhdfs://``, ``s3a://``/``s3://``,
    ``gs://``, ``abfs[s]://`` or ``wasb[s]://``.

    ``settings`` (a :class:`~sparkhist.config.Settings` or :class:`SourceOptions`) gives
    the Hadoop configuration, deadlines, retries and breaker reset; without it they come
    from the ``SPARKHIST_*`` environment variables, else their defaults.

    Several directories separated by commas (``spark.history.fs.logDirectory`` as a list, or
    a :class:`~sparkhist.source.multi.SourceSet`'s root) make one source per directory,
    read together as a :class:`~sparkhist.source.multi.SourceSet`.
    """
    from sparkhist.config import log_directories

    dirs = log_directories(url)
    if len(dirs) > 1:
        from sparkhist.source.multi import SourceSet

        opened: list[Source] = []
        try:
            for directory in dirs:
                opened.append(open_source(directory, settings))
        except BaseException:
            for source in opened:
                source.close()
            raise
        return SourceSet(opened)
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        path = parsed.path if parsed.scheme == "file" else url
        if not path:
            raise ConfigError(f"empty log directory: {url!r}")
        return LocalSource(path)
    if settings is None:
        options = SourceOptions.from_environ()
    elif isinstance(settings, SourceOptions):
        options = settings
    else:
        options = SourceOptions.from_settings(settings)
    if parsed.scheme == "hdfs":
        from sparkhist.source.hdfs import HdfsSource  # lazy: loads the native client

        return HdfsSource(url, kerberos_principal=options.kerberos_principal, kerberos_keytab=options.kerberos_keytab,
                          **options.remote_kwargs())
    if parsed.scheme in ("webhdfs", "swebhdfs"):
        from sparkhist.source.webhdfs import WebHdfsSource

        kwargs = options.remote_kwargs()
        kwargs["timeout"] = kwargs.pop("rpc_timeout")
        return WebHdfsSource(url, **kwargs)
    if parsed.scheme in ("s3a", "s3", "s3n", "gs", "abfs", "abfss", "wasb", "wasbs"):
        from sparkhist.source.hadoop_conf import load_conf
        from sparkhist.source.objectstore import ObjectStoreSource, StoreTarget

        conf = load_conf(options.hadoop_conf_dir, dict(options.hadoop_conf))
        target: StoreTarget
        if parsed.scheme == "gs":
            from sparkhist.source.gcs import gcs_target

            target = gcs_target(url, conf)
        elif parsed.scheme in ("abfs", "abfss", "wasb", "wasbs"):
            from sparkhist.source.azure import azure_target

            target = azure_target(url, conf)
        else:
            from sparkhist.source.s3a import s3_target

            target = s3_target(url, conf)
        return ObjectStoreSource(target, **options.object_store_kwargs())
    raise ConfigError(
        f"unsupported log directory scheme {parsed.scheme!r} in {url!r} "
        "(supported: local paths, file:, hdfs:, webhdfs:, s3a:, s3:, gs:, abfs:, abfss:, wasb:, wasbs:)"
    )
