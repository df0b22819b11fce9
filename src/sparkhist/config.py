"""Settings: one frozen object, built from defaults < SHS properties file < environment < flags.

Every setting is declared once in :data:`SETTINGS` with its default, its
``SPARKHIST_*`` environment variable, the SHS property it mirrors (so an SHS user can
reuse their ``spark-defaults.conf``) and its help text.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlparse

from sparkhist.errors import ConfigError

log = logging.getLogger("sparkhist.config")


def bundled_samples() -> str:
    """The small directory of real Spark event logs shipped with the package."""
    return str(resources.files("sparkhist") / "samples" / "eventlogs")


def default_store() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "sparkhist", "store")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, None: 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(value: str) -> float:
    """Seconds from a Spark duration (``10s``, ``500ms``, ``1m``; a bare number is seconds)."""
    m = _DURATION.match(value)
    if not m:
        raise ValueError(f"not a duration: {value!r}")
    return float(m.group(1)) * _UNIT_SECONDS[m.group(2)]


_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?)b?\s*$", re.IGNORECASE)


def parse_size(value: str) -> int:
    """Bytes from a Spark size (``10g``, ``512m``, ``64k``; a bare number is bytes)."""
    m = _SIZE.match(value)
    if not m:
        raise ValueError(f"not a size: {value!r}")
    return int(m.group(1)) << (10 * "_kmgt".index(m.group(2).lower() or "_"))


def parse_ratio(value: str) -> float:
    ratio = float(value.strip().rstrip("%")) / (100 if value.strip().endswith("%") else 1)
    if not 0 < ratio <= 1:
        raise ValueError(f"not a ratio between 0 and 1: {value!r}")
    return ratio


def parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def parse_hadoop_conf(value: str) -> tuple[tuple[str, str], ...]:
    """``key=value`` Hadoop properties, one per line or separated by ``;`` (values may hold commas)."""
    pairs: list[tuple[str, str]] = []
    for item in re.split(r"[;\n]", value):
        if not item.strip():
            continue
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"not key=value: {item.strip()!r}")
        pairs.append((key.strip(), val.strip()))
    return tuple(pairs)


def parse_count(value: str) -> int:
    count = int(value)
    if count < 0:
        raise ValueError(f"must not be negative: {count}")
    return count


def parse_positive_count(value: str) -> int:
    count = int(value)
    if count <= 0:
        raise ValueError(f"must be more than 0: {count}")
    return count


def parse_positive_duration(value: str) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"must be more than 0: {value!r}")
    return seconds


def parse_port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise ValueError(f"not a port number: {value!r}") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"port out of range: {port} (1-65535)")
    return port


AUTH_MODES = ("none", "header", "kerberos")


def parse_auth_mode(value: str) -> str:
    mode = value.strip().lower()
    if mode not in AUTH_MODES:
        raise ValueError(f"not one of {', '.join(AUTH_MODES)}")
    return mode


def parse_networks(value: str) -> tuple[str, ...]:
    """Comma-separated addresses or CIDR blocks, each checked (``localhost``: the loopback blocks)."""
    import ipaddress

    out: list[str] = []
    for item in (part.strip() for part in value.split(",")):
        if item in ("localhost", "loopback"):
            out.extend(("127.0.0.0/8", "::1/128"))
        elif item:
            out.append(str(ipaddress.ip_network(item, strict=False)))
    if not out:
        raise ValueError("no address given")
    return tuple(out)


@dataclass(frozen=True)
class Setting:
    name: str
    default: Callable[[], Any]
    parse: Callable[[str], Any]
    env: str
    shs_property: str | None
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("log_dir", bundled_samples, str, "SPARKHIST_LOG_DIR", "spark.history.fs.logDirectory",
            "Event log directory (path or URL), or several separated by commas as the SHS takes them: "
            "applications are listed from all, each attempt shows its own directory. Default: the bundled sample logs."),
    Setting("log_dir_names", lambda: None, str, "SPARKHIST_LOG_DIR_NAMES", "spark.history.fs.logDirectory.names",
            "Display names of the log directories (comma-separated, by position; blank: the path), shown as "
            "each attempt's logSourceName. A count that differs from the directories' is ignored (a warning), "
            "as the SHS does; a name given twice is refused."),
    Setting("store_dir", default_store, str, "SPARKHIST_STORE", "spark.history.store.path",
            "Directory of the persistent store (catalog and snapshots)."),
    Setting("store_sync_interval", lambda: 10.0, parse_positive_duration, "SPARKHIST_STORE_SYNC_INTERVAL", None,
            "A replica (serve --store URL --cache DIR): seconds between looks at the shared store's newest manifest."),
    Setting("host", lambda: "127.0.0.1", str, "SPARKHIST_HOST", None, "Address to listen on."),
    Setting("port", lambda: 18080, parse_port, "SPARKHIST_PORT", "spark.history.ui.port", "Port to listen on."),
    Setting("scan_interval", lambda: 10.0, parse_positive_duration, "SPARKHIST_SCAN_INTERVAL", "spark.history.fs.update.interval",
            "Seconds between scans of the log directory (Spark durations accepted: 10s, 1m)."),
    Setting("store_max_disk", lambda: 10 << 30, parse_size, "SPARKHIST_STORE_MAX_DISK", "spark.history.store.maxDiskUsage",
            "Disk budget of the store's snapshots; least recently used ones are evicted (and rebuilt on demand)."),
    Setting("disk_cleanup_ratio", lambda: 0.80, parse_ratio, "SPARKHIST_DISK_CLEANUP_RATIO", None,
            "File-system fill level at which snapshots start being evicted."),
    Setting("disk_critical_ratio", lambda: 0.90, parse_ratio, "SPARKHIST_DISK_CRITICAL_RATIO", None,
            "File-system fill level above which no snapshot is written."),
    Setting("memory_budget", lambda: 512 << 20, parse_size, "SPARKHIST_MEMORY_BUDGET", None,
            "Memory for cached application states; least recently used ones leave the cache over it."),
    Setting("response_cache", lambda: 32 << 20, parse_size, "SPARKHIST_RESPONSE_CACHE", None,
            "Memory for rendered answers of finished applications, so repeated requests are lookups (0: off)."),
    Setting("analytics_tables", lambda: False, parse_bool, "SPARKHIST_ANALYTICS_TABLES", None,
            "Keep the analytics tables (sparkhist sql, /analytics/sql) beside the snapshots."),
    Setting("index_workers", lambda: os.cpu_count() or 1, parse_positive_count, "SPARKHIST_INDEX_WORKERS", None,
            "Processes that build application states (1: in the server process)."),
    Setting("serve_processes", lambda: min(4, os.cpu_count() or 1), parse_positive_count, "SPARKHIST_SERVE_PROCESSES",
            None, "Processes answering HTTP on the one port (1: the server process alone); the others read the store "
                  "the server process writes. Default: the number of cores, at most 4."),
    Setting("watch_log_dir", lambda: True, parse_bool, "SPARKHIST_WATCH_LOG_DIR", None,
            "Follow a local log directory's file-system notifications, so a new or grown log is listed within "
            "a second (the periodic scan stays as the safety net)."),
    Setting("cleaner_enabled", lambda: False, parse_bool, "SPARKHIST_CLEANER_ENABLED", "spark.history.fs.cleaner.enabled",
            "Delete old applications (their logs too, where permitted)."),
    Setting("cleaner_interval", lambda: 86400.0, parse_positive_duration, "SPARKHIST_CLEANER_INTERVAL",
            "spark.history.fs.cleaner.interval",
            "How often the cleaner runs."),
    Setting("cleaner_max_age", lambda: 7 * 86400.0, parse_duration, "SPARKHIST_CLEANER_MAX_AGE",
            "spark.history.fs.cleaner.maxAge",
            "Applications last updated longer ago than this are deleted."),
    Setting("cleaner_max_num", lambda: 2**31 - 1, parse_count, "SPARKHIST_CLEANER_MAX_NUM", "spark.history.fs.cleaner.maxNum",
            "At most this many logs are kept (oldest completed attempts go first)."),
    Setting("hadoop_conf_dir", lambda: None, str, "SPARKHIST_HADOOP_CONF_DIR", None,
            "Directory of core-site.xml/hdfs-site.xml (nameservices, HA NameNode addresses). "
            "Default: $HADOOP_CONF_DIR, else $HADOOP_HOME/etc/hadoop."),
    Setting("hadoop_conf", lambda: (), parse_hadoop_conf, "SPARKHIST_HADOOP_CONF", None,
            "Hadoop properties on top of the site files: --hadoop-conf key=value (repeatable); "
            "in the environment, pairs separated by ';' or newlines."),
    Setting("source_timeout", lambda: 3.0, parse_positive_duration, "SPARKHIST_SOURCE_TIMEOUT", None,
            "Deadline of each NameNode call (each page of a listing): a hung NameNode costs this much, "
            "then the next one is tried."),
    Setting("source_read_timeout", lambda: 10.0, parse_positive_duration, "SPARKHIST_SOURCE_READ_TIMEOUT", None,
            "Deadline of each read of up to 4 MiB from a DataNode (not of a whole log)."),
    Setting("source_retries", lambda: 3, parse_count, "SPARKHIST_SOURCE_RETRIES", None,
            "Retries of a failed source call, with jittered backoff (0.25 s doubling, at most 2 s); "
            "no retry after a deadline when no NameNode answers at all."),
    Setting("source_breaker_reset", lambda: 10.0, parse_duration, "SPARKHIST_SOURCE_BREAKER_RESET", None,
            "How long the source's open circuit breaker fails calls fast before one trial call."),
    Setting("kerberos_principal", lambda: None, str, "SPARKHIST_KERBEROS_PRINCIPAL", "spark.history.kerberos.principal",
            "Kerberos principal for HDFS (with hadoop.security.authentication=kerberos); needs the keytab. "
            "Without both, the ticket cache (kinit, $KRB5CCNAME) is used."),
    Setting("kerberos_keytab", lambda: None, str, "SPARKHIST_KERBEROS_KEYTAB", "spark.history.kerberos.keytab",
            "Keytab of the Kerberos principal."),
    Setting("http_header_timeout", lambda: 8.0, parse_positive_duration, "SPARKHIST_HTTP_HEADER_TIMEOUT", None,
            "Time a client has to send a request's line and headers, from its first byte (or from connecting); "
            "a slower connection is closed. The SHS's Jetty closes a silent connection after 8 s."),
    Setting("http_keep_alive", lambda: 5.0, parse_positive_duration, "SPARKHIST_HTTP_KEEP_ALIVE", None,
            "How long an idle connection is kept open after an answer, waiting for the next request."),
    Setting("http_max_connections", lambda: 1000, parse_positive_count, "SPARKHIST_HTTP_MAX_CONNECTIONS", None,
            "Open connections (and requests in progress) beyond which a new request is answered 503 at once. "
            "The SHS's Jetty serves with 1000 threads."),
    # Access (sparkhist.access): who may see what, and TLS.
    Setting("ui_acls_enable", lambda: False, parse_bool, "SPARKHIST_UI_ACLS_ENABLE", "spark.history.ui.acls.enable",
            "Check each application's view ACLs (owner, spark.ui.view.acls, spark.admin.acls and their groups) "
            "for the authenticated user, as the SHS does."),
    Setting("ui_admin_acls", lambda: "", str, "SPARKHIST_UI_ADMIN_ACLS", "spark.history.ui.admin.acls",
            "Users (comma-separated) who may view every application."),
    Setting("ui_admin_acls_groups", lambda: "", str, "SPARKHIST_UI_ADMIN_ACLS_GROUPS",
            "spark.history.ui.admin.acls.groups", "Groups whose members may view every application."),
    Setting("user_groups_mapping", lambda: "org.apache.spark.security.ShellBasedGroupsMappingProvider", str,
            "SPARKHIST_USER_GROUPS_MAPPING", "spark.user.groups.mapping",
            "How a user's groups are found: Spark's shell provider (id -Gn on this host) or empty (no groups)."),
    Setting("auth", lambda: None, parse_auth_mode, "SPARKHIST_AUTH", None,
            "Authentication: none, header (a trusted proxy names the user) or kerberos (SPNEGO). "
            "Default: kerberos when spark.ui.filters names Hadoop's AuthenticationFilter, else none."),
    Setting("auth_header", lambda: "X-Forwarded-User", str, "SPARKHIST_AUTH_HEADER", None,
            "The header in which the trusted proxy names the user (auth=header)."),
    Setting("auth_trusted_proxies", lambda: ("127.0.0.0/8", "::1/128"), parse_networks, "SPARKHIST_AUTH_TRUSTED_PROXIES",
            None, "Addresses or CIDR blocks (comma-separated) whose requests may name the user (auth=header); "
            "any other peer gets a 401."),
    Setting("auth_metrics", lambda: False, parse_bool, "SPARKHIST_AUTH_METRICS", None,
            "Whether /metrics needs authentication too (/health and /ready never do)."),
    Setting("auth_kerberos_principal", lambda: None, str, "SPARKHIST_AUTH_KERBEROS_PRINCIPAL", None,
            "The HTTP service principal for SPNEGO (HTTP/host@REALM, or *: any in the keytab). "
            "Default: the AuthenticationFilter's kerberos.principal parameter."),
    Setting("auth_kerberos_keytab", lambda: None, str, "SPARKHIST_AUTH_KERBEROS_KEYTAB", None,
            "The keytab of the SPNEGO principal. Default: the AuthenticationFilter's kerberos.keytab parameter."),
    Setting("tls_cert", lambda: None, str, "SPARKHIST_TLS_CERT", None,
            "PEM certificate (chain) to serve HTTPS with; needs SPARKHIST_TLS_KEY. "
            "Or spark.ssl.historyServer.* with a JKS/PKCS12 key store."),
    Setting("tls_key", lambda: None, str, "SPARKHIST_TLS_KEY", None, "PEM private key of SPARKHIST_TLS_CERT."),
    Setting("tls_key_password", lambda: None, str, "SPARKHIST_TLS_KEY_PASSWORD", None,
            "Password of an encrypted SPARKHIST_TLS_KEY."),
    # Retention while a log is read (RetentionLimits): the server's own, as the SHS replays with its SparkConf.
    Setting("ui_retained_jobs", lambda: 1000, parse_count, "SPARKHIST_UI_RETAINED_JOBS", "spark.ui.retainedJobs",
            "Jobs kept per application (the ones that ended first go). The server's setting, as the SHS's: "
            "an application's own spark.ui.retained* properties do not apply."),
    Setting("ui_retained_stages", lambda: 1000, parse_count, "SPARKHIST_UI_RETAINED_STAGES", "spark.ui.retainedStages",
            "Stage attempts kept per application (the ones that ended first go, with their tasks)."),
    Setting("ui_retained_tasks", lambda: 100000, parse_count, "SPARKHIST_UI_RETAINED_TASKS", "spark.ui.retainedTasks",
            "Tasks kept per stage attempt (the ones that ended first go)."),
    Setting("ui_retained_dead_executors", lambda: 100, parse_count, "SPARKHIST_UI_RETAINED_DEAD_EXECUTORS",
            "spark.ui.retainedDeadExecutors", "Dead executors kept per application."),
    Setting("sql_ui_retained_executions", lambda: 1000, parse_count, "SPARKHIST_SQL_UI_RETAINED_EXECUTIONS",
            "spark.sql.ui.retainedExecutions", "SQL executions kept per application (the ones that ended first go)."),
    Setting("ui_dag_graph_retained_root_rdds", lambda: 2**31 - 1, parse_count, "SPARKHIST_UI_DAG_GRAPH_RETAINED_ROOT_RDDS",
            "spark.ui.dagGraph.retainedRootRDDs", "Root RDDs drawn in a stage's DAG (the others and what only they "
                                                  "lead to are left out)."),
)
_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    log_dir: str
    store_dir: str
    host: str
    port: int
    scan_interval: float
    store_max_disk: int = 10 << 30
    disk_cleanup_ratio: float = 0.80
    disk_critical_ratio: float = 0.90
    memory_budget: int = 512 << 20
    response_cache: int = 32 << 20
    analytics_tables: bool = False
    index_workers: int = 1
    serve_processes: int = 1
    watch_log_dir: bool = True
    cleaner_enabled: bool = False
    cleaner_interval: float = 86400.0
    cleaner_max_age: float = 7 * 86400.0
    cleaner_max_num: int = 2**31 - 1
    hadoop_conf_dir: str | None = None
    hadoop_conf: tuple[tuple[str, str], ...] = ()
    source_timeout: float = 3.0
    source_read_timeout: float = 10.0
    source_retries: int = 3
    source_breaker_reset: float = 10.0
    kerberos_principal: str | None = None
    kerberos_keytab: str | None = None
    http_header_timeout: float = 8.0
    http_keep_alive: float = 5.0
    http_max_connections: int = 1000
    ui_acls_enable: bool = False
    ui_admin_acls: str = ""
    ui_admin_acls_groups: str = ""
    user_groups_mapping: str = "org.apache.spark.security.ShellBasedGroupsMappingProvider"
    auth: str | None = None
    auth_header: str = "X-Forwarded-User"
    auth_trusted_proxies: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    auth_metrics: bool = False
    auth_kerberos_principal: str | None = None
    auth_kerberos_keytab: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_key_password: str | None = None
    #: The properties file as read (the access layer reads spark.ui.filters, spark.ssl.* from it).
    properties: tuple[tuple[str, str], ...] = ()
    log_dir_names: str | None = None
    #: The log directory as configured (``log_dir`` has a ``file:`` scheme stripped) and its display
    #: name: each attempt's ``logSourceFullPath`` and ``logSourceName``. None: not from ``load_settings``.
    log_source: LogSource | LogSources | None = None
    ui_retained_jobs: int = 1000
    ui_retained_stages: int = 1000
    ui_retained_tasks: int = 100000
    ui_retained_dead_executors: int = 100
    sql_ui_retained_executions: int = 1000
    ui_dag_graph_retained_root_rdds: int = 2**31 - 1
    #: A replica's shared store (``serve --store URL --cache DIR``; ``store_dir`` is then the cache). None: a local store.
    shared_store: str | None = None
    store_sync_interval: float = 10.0


def read_properties(path: str) -> dict[str, str]:
    """A Java ``.properties``/``spark-defaults.conf`` file: ``key=value``, ``key: value`` or ``key value``."""
    try:
        text = Path(path).read_text(encoding="utf-8")  # as Spark reads it (Utils.getPropertiesFromFile)
    except OSError as exc:
        raise ConfigError(f"cannot read properties file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"properties file {path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} "
                          f"at offset {exc.start})") from None
    props: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        m = re.match(r"^([^=:\s]+)\s*[=:\s]\s*(.*)$", line)
        if m:
            props[m.group(1)] = m.group(2).strip()
    return props


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    properties_file: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve every setting; a bad value raises :class:`ConfigError` naming where it came from."""
    env = os.environ if environ is None else environ
    props = read_properties(properties_file) if properties_file else {}
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        values[setting.name] = setting.default()
        candidates: list[tuple[str, Any]] = []
        if setting.shs_property and setting.shs_property in props:
            candidates.append((f"{setting.shs_property} in {properties_file}", props[setting.shs_property]))
        if setting.env in env:
            candidates.append((setting.env, env[setting.env]))
        for origin, raw in candidates:
            values[setting.name] = _parse(setting, raw, origin)
    for name, value in (flags or {}).items():
        if isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value):
            value = "\n".join(value) if value else None  # a repeatable flag (click gives a tuple)
        if value is None:
            continue
        setting = _BY_NAME[name]
        # A typed value (an int from click or a caller) is checked by the same parser as text.
        typed = isinstance(value, (int, float)) and not isinstance(value, bool)
        if isinstance(value, str) or typed:
            values[name] = _parse(setting, str(value), "--" + name.replace("_", "-"))
        else:
            values[name] = value
    settings = Settings(**values, properties=tuple(props.items()))
    log_dir, source = log_source(settings.log_dir, settings.log_dir_names)
    if not settings.store_dir:
        raise ConfigError("the store directory is empty")
    read = ",".join(_strip_file_scheme(d) for d in log_directories(log_dir))  # each directory as it is read
    return replace(settings, log_dir=read, log_source=source)


class RetentionLimits(NamedTuple):
    """What a state keeps while its log is read: Spark's ``spark.ui.retained*``,
    ``spark.sql.ui.retainedExecutions`` and ``spark.ui.dagGraph.retainedRootRDDs``.

    The SHS replays every log with its own ``SparkConf`` (``FsHistoryProvider.rebuildAppStore``
    gives ``AppStatusListener``, ``ElementTrackingStore`` and the SQL listener the server's
    conf), so these are the server's settings, never an application's own properties.
    """

    # Spark's defaults, as the settings have them.
    jobs: int = Settings.ui_retained_jobs
    stages: int = Settings.ui_retained_stages
    tasks: int = Settings.ui_retained_tasks
    dead_executors: int = Settings.ui_retained_dead_executors
    executions: int = Settings.sql_ui_retained_executions
    root_rdds: int = Settings.ui_dag_graph_retained_root_rdds

    @classmethod
    def of(cls, settings: Settings) -> RetentionLimits:
        return cls(settings.ui_retained_jobs, settings.ui_retained_stages, settings.ui_retained_tasks,
                   settings.ui_retained_dead_executors, settings.sql_ui_retained_executions,
                   settings.ui_dag_graph_retained_root_rdds)

    def variant(self) -> str:
        """The limits that differ from Spark's defaults, as a part of the parse variant ("" for none)."""
        changed = [f"{name}={value}" for name, value, default in zip(self._fields, self, RetentionLimits(), strict=True)
                   if value != default]
        return f"+retained({','.join(changed)})" if changed else ""


#: RetentionLimits field <- its setting (whose environment variable carries it to indexing processes).
_RETENTION_SETTINGS = dict(zip(RetentionLimits._fields, ("ui_retained_jobs", "ui_retained_stages", "ui_retained_tasks",
                                                          "ui_retained_dead_executors", "sql_ui_retained_executions",
                                                          "ui_dag_graph_retained_root_rdds"), strict=True))
_retention: RetentionLimits | None = None


def retention_limits() -> RetentionLimits:
    """The limits logs are read with in this process: those :func:`use_retention_limits` was
    given, else (an indexing process) the ``SPARKHIST_*`` variables of its environment."""
    global _retention
    if _retention is None:
        values: dict[str, int] = {}
        for field_name, setting_name in _RETENTION_SETTINGS.items():
            setting = _BY_NAME[setting_name]
            raw = os.environ.get(setting.env)
            values[field_name] = setting.default() if raw is None else _parse(setting, raw, setting.env)
        _retention = RetentionLimits(**values)
    return _retention


def use_retention_limits(settings: Settings) -> RetentionLimits:
    """Read logs with the limits of ``settings`` from now on, in this process and in the processes
    it starts (spawned indexing workers, Spark tasks): their environment carries the values."""
    global _retention
    _retention = RetentionLimits.of(settings)
    for field_name, setting_name in _RETENTION_SETTINGS.items():
        value, default = getattr(_retention, field_name), _BY_NAME[setting_name].default()
        if value == default:
            os.environ.pop(_BY_NAME[setting_name].env, None)
        else:
            os.environ[_BY_NAME[setting_name].env] = str(value)
    return _retention


class LogSource(NamedTuple):
    """A configured log directory: ``logSourceName`` and ``logSourceFullPath`` of its attempts."""

    name: str
    full_path: str


@dataclass(frozen=True)
class LogSources:
    """Several configured log directories, in their order: each attempt shows the one its log is in."""

    sources: tuple[LogSource, ...]

    def for_path(self, path: str) -> LogSource:
        """The directory holding the log at ``path`` (a local path or a URL, as its source names it):
        the deepest whose path holds it, one on the same host first; else the first directory, as
        ``FsHistoryProvider.getLogDirInfo`` falls back."""
        host, where = _location(path)
        best: tuple[bool, int] | None = None
        found = self.sources[0]
        for source in self.sources:
            dir_host, directory = _location(source.full_path)
            inside = where == directory or where.startswith(directory.rstrip("/") + "/")
            rank = (dir_host == host, len(directory))
            if inside and (best is None or rank > best):
                best, found = rank, source
        return found

    def index_of(self, path: str) -> int:
        """The position of the directory holding the log at ``path`` (see :meth:`for_path`)."""
        return self.sources.index(self.for_path(path))

    def __iter__(self) -> Iterator[list[str]]:
        """Each directory as ``[name, full path]`` (what a store records of the directories)."""
        return iter([list(source) for source in self.sources])


def recorded_log_source(value: object) -> LogSource | LogSources | None:
    """The log directories as a store records them (``list(source)``): ``[name, path]`` for one,
    ``[[name, path], ...]`` for several; None for anything else."""

    def pair(item: object) -> LogSource | None:
        if isinstance(item, list) and len(item) == 2 and all(isinstance(s, str) for s in item):
            return LogSource(item[0], item[1])
        return None

    if (one := pair(value)) is not None:
        return one
    several = [pair(item) for item in value] if isinstance(value, list) and value else []
    if several and all(s is not None for s in several):
        return LogSources(tuple(s for s in several if s is not None))
    return None


def _location(url: str) -> tuple[str, str]:
    """(host, path) of a directory or a log as written: a local one's absolute path, a URL's path."""
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return "", os.path.abspath(_strip_file_scheme(url))
    return parsed.netloc, parsed.path or "/"


def log_directories(value: str) -> list[str]:
    """``spark.history.fs.logDirectory`` as the SHS splits it: comma-separated, trimmed, blanks dropped.

    A comma in a URL's authority is part of it (a WebHDFS list of NameNodes,
    ``webhdfs://nn1:9870,nn2:9870/logs``, is one directory).
    """
    dirs: list[str] = []
    for piece in (p.strip() for p in value.split(",")):
        last = dirs[-1] if dirs else ""
        in_authority = "://" in last and "/" not in last.split("://", 1)[1]
        if in_authority and _HOST_AND_PATH.match(piece):
            dirs[-1] = last + "," + piece
        elif piece:
            dirs.append(piece)
    return dirs


#: The rest of a URL after a comma in its authority: another host (and port), then the path.
_HOST_AND_PATH = re.compile(r"^[A-Za-z0-9.\-]+(:\d+)?(/|$)")


def log_source(log_dir: str, names: str | None) -> tuple[str, LogSource | LogSources]:
    """The log directories of ``log_dir`` (as written, joined by commas) and what their attempts show:
    a :class:`LogSource` for one directory, :class:`LogSources` for several.

    ``FsHistoryProvider``'s rules for the names: one per directory by position, a blank one
    is the path; another count is ignored with a warning (the paths are shown); a name given
    twice is refused.
    """
    dirs = log_directories(log_dir)
    if not dirs:
        raise ConfigError("the log directory is empty")
    display = list(dirs)
    if names is not None:
        given = [n.strip() for n in names.split(",")]
        if len(given) == len(dirs):
            display = [n or d for d, n in zip(dirs, given, strict=True)]
            duplicates = sorted({n for n in display if display.count(n) > 1})
            if duplicates:
                raise ConfigError("Duplicate display names found in spark.history.fs.logDirectory.names: "
                                  + ", ".join(duplicates))
        else:
            log.warning("spark.history.fs.logDirectory.names has %d names but %d directories were specified. "
                        "Falling back to full paths.", len(given), len(dirs))
    named = dict(zip(dirs, display, strict=True))  # a directory given twice is read once (its last name)
    if len(named) == 1:
        return dirs[0], LogSource(named[dirs[0]], dirs[0])
    return ",".join(named), LogSources(tuple(LogSource(n, d) for d, n in named.items()))


def _parse(setting: Setting, raw: str, origin: str) -> Any:
    try:
        return setting.parse(raw)
    except ValueError as exc:
        raise ConfigError(f"bad value for {origin}: {raw!r} ({exc})") from None


def _strip_file_scheme(url: str) -> str:
    if url.startswith("file://"):
        return url[len("file://"):]
    if url.startswith("file:"):
        return url[len("file:"):]
    return url
