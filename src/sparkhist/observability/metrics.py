"""Prometheus metrics: one registry per runtime, read from the runtime at scrape time.

Why a registry per runtime (not prometheus_client's global one): tests build several
runtimes in one process, and a standby beside a writer must not share counters.

Most metrics come from :class:`RuntimeCollector`, which reads the runtime's own
counters through the :class:`~sparkhist.observability.probe.Probe` when scraped, so
no module of the data path calls ``inc()``. Only what needs every observation (the
scan-duration and request-latency histograms, and the request counter) is recorded
at the event, through the scanner's report observers and the HTTP middleware.

Names follow the Prometheus conventions: ``sparkhist_`` prefix, base units
(seconds, bytes, ratios in 0..1), ``_total`` for counters. Label values are bounded:
route *templates*, fixed outcome and reason sets, one ``log_dir`` per source.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sparkhist import __version__
from sparkhist.observability.probe import Probe, report_end
from sparkhist.observability.sources import BREAKER_STATES, OUTCOMES

SCAN_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
API_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
ROLES = ("writer", "standby")


class RuntimeCollector(Collector):
    """Every runtime figure, read from the probe when Prometheus scrapes."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe

    def collect(self) -> Iterator[Metric]:
        p = self.probe
        yield _gauge("sparkhist_build_info", "Version of this sparkhist (value 1).", 1, version=__version__)
        yield _gauge("sparkhist_ready", "1 once the store is open and start-up recovery is done.", int(p.ready()))
        yield _gauge("sparkhist_store_recovery_seconds", "Time the last start took to open the store and recover.",
                     p.recovery_seconds)

        role = GaugeMetricFamily("sparkhist_role", "1 for this process's current role on its store.", labels=["store", "role"])
        for name in ROLES:
            role.add_metric([p.store_dir, name], int(p.role == name))
        yield role
        yield _counter("sparkhist_takeovers", "Times this process took over as the store's writer.", p.takeovers)

        yield from self._sources()
        yield from self._scan()
        yield from self._store()
        yield from self._cache()
        yield from self._responses()

    def _sources(self) -> Iterator[Metric]:
        statuses = self.probe.source_statuses()
        requests = CounterMetricFamily("sparkhist_source_requests", "Calls to the log source by operation and outcome.",
                                       labels=["log_dir", "op", "outcome"])
        up = GaugeMetricFamily("sparkhist_source_up", "1 while the log directory can be listed (0: offline).", labels=["log_dir"])
        breaker = GaugeMetricFamily("sparkhist_source_breaker_state",
                                    "Circuit breaker of the log source: 0 closed, 1 half-open, 2 open.", labels=["log_dir"])
        state = GaugeMetricFamily("sparkhist_source_state", "1 for the log directory's current state.",
                                  labels=["log_dir", "state"])
        for s in statuses:
            for op in ("list", "stat", "open"):
                for outcome in OUTCOMES:
                    requests.add_metric([s.log_dir, op, outcome], s.requests.get((op, outcome), 0))
            up.add_metric([s.log_dir], int(s.up))
            breaker.add_metric([s.log_dir], BREAKER_STATES.index(s.breaker))
            for name in ("ok", "degraded", "offline"):
                state.add_metric([s.log_dir, name], int(s.state == name))
        yield from (requests, up, breaker, state)
        yield _gauge("sparkhist_offline", "1 while a log directory is offline (serving from the store only).",
                     int(any(s.state == "offline" for s in statuses)))
        skipped = GaugeMetricFamily("sparkhist_skipped_logs",
                                    "Entries of the log directory left out, or read only in part, by reason "
                                    "(/health/details lists them).", labels=["log_dir", "reason"])
        for figures in self.probe.skipped():
            for reason, count in figures.counts.items():
                skipped.add_metric([figures.log_dir, reason], count)
        yield skipped

    def _scan(self) -> Iterator[Metric]:
        p = self.probe
        records = p.records()
        history = p.history
        yield _gauge("sparkhist_scan_interval_seconds", "Configured time between scans.", p.scan_interval)
        yield _gauge("sparkhist_scan_lag_seconds", "Age of the oldest log change not indexed yet (0: up to date).",
                     p.scan_lag(records))
        yield _gauge("sparkhist_scan_last_timestamp_seconds", "When the last scan finished (0: none yet).",
                     report_end(history.last) or 0)
        yield _gauge("sparkhist_scan_last_success_timestamp_seconds",
                     "When the last scan with a successful listing finished (0: none yet).",
                     report_end(history.last_success) or 0)
        yield _gauge("sparkhist_scan_failed_logs", "Logs the last scan could not read.",
                     0 if history.last is None else history.last.failed)
        scans = CounterMetricFamily("sparkhist_scans", "Scans by outcome (failed: the listing failed).", labels=["outcome"])
        for outcome, count in history.counts.items():
            scans.add_metric([outcome], count)
        yield scans
        apps = GaugeMetricFamily("sparkhist_applications", "Applications listed, by status.", labels=["status"])
        for status, count in p.applications().items():
            apps.add_metric([status], count)
        yield apps
        yield _gauge("sparkhist_event_logs", "Event logs in the catalog.", len(records))
        events = CounterMetricFamily("sparkhist_events_parsed", "Event lines read, by pass (listing, full).", labels=["pass"])
        read = CounterMetricFamily("sparkhist_log_bytes_read", "Stored event-log bytes read, by pass.", labels=["pass"])
        for name, (lines, nbytes) in p.parsed().items():
            events.add_metric([name], lines)
            read.add_metric([name], nbytes)
        yield from (events, read)

    def _store(self) -> Iterator[Metric]:
        p = self.probe
        fs = p.filesystem()
        yield _gauge("sparkhist_store_disk_bytes", "Bytes the store directory occupies (walked at most every 30 s).",
                     p.disk_bytes())
        disk = p.disk_figures()
        yield _gauge("sparkhist_store_disk_budget_bytes", "Disk budget of the store's snapshots (0: none).", disk.budget)
        yield _gauge("sparkhist_store_snapshot_bytes", "Bytes of snapshots counted against the disk budget.",
                     disk.snapshot_bytes)
        yield _gauge("sparkhist_store_disk_critical", "1 while the file system is over the critical watermark "
                     "(no snapshot is written).", int(disk.critical))
        yield _counter("sparkhist_store_snapshot_write_failures", "Snapshots that could not be written.",
                       disk.write_failures)
        evictions = CounterMetricFamily("sparkhist_store_evictions", "Snapshots evicted from disk, by reason.",
                                        labels=["reason"])
        for reason in sorted({"budget", "watermark", *disk.evictions}):
            evictions.add_metric([reason], disk.evictions.get(reason, 0))
        yield evictions
        yield _gauge("sparkhist_store_filesystem_usage_ratio", "Used fraction of the store's file system.", fs.ratio)
        yield _gauge("sparkhist_store_filesystem_free_bytes", "Bytes still available on the store's file system.",
                     fs.free_bytes)
        corrupt = CounterMetricFamily("sparkhist_corruptions", "Damaged store items detected, by kind.", labels=["kind"])
        for kind, count in p.corruptions().items():
            corrupt.add_metric([kind], count)
        yield corrupt
        yield _gauge("sparkhist_store_rebuilding_applications",
                     "Applications whose snapshot was quarantined and is not rebuilt yet.", len(p.rebuilding()))

    def _cache(self) -> Iterator[Metric]:
        cache = self.probe.cache()
        yield _gauge("sparkhist_cache_memory_bytes", "Estimated bytes of the application states cached in memory.",
                     cache.bytes)
        yield _gauge("sparkhist_cache_memory_budget_bytes", "Memory budget of the state cache (0: none).", cache.budget)
        yield _gauge("sparkhist_cache_applications", "Application states cached in memory.", cache.entries)
        requests = CounterMetricFamily("sparkhist_cache_requests", "State lookups: hit (memory), load (snapshot), "
                                       "build (from the log).", labels=["result"])
        for result, count in cache.requests.items():
            requests.add_metric([result], count)
        yield requests
        evictions = CounterMetricFamily("sparkhist_cache_evictions", "States dropped from the cache, by reason.",
                                        labels=["reason"])
        for reason in sorted({"capacity", "stale", "invalidated", *cache.evictions}):
            evictions.add_metric([reason], cache.evictions.get(reason, 0))
        yield evictions

    def _responses(self) -> Iterator[Metric]:
        cache = self.probe.response_cache
        if cache is None:
            return
        yield _gauge("sparkhist_response_cache_bytes", "Bytes of rendered answers kept (finished applications).",
                     cache.bytes)
        yield _gauge("sparkhist_response_cache_max_bytes", "Bound of the kept rendered answers.", cache.max_bytes)
        requests = CounterMetricFamily("sparkhist_response_cache_requests",
                                       "Requests of finished applications: answered from a kept rendering (hit) or "
                                       "rendered (miss).", labels=["result"])
        requests.add_metric(["hit"], cache.hits)
        requests.add_metric(["miss"], cache.misses)
        yield requests


def _gauge(name: str, documentation: str, value: float, **labels: str) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


class Metrics:
    """A runtime's registry, plus the few metrics recorded at the event."""

    def __init__(self, probe: Probe) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.registry.register(RuntimeCollector(probe))
        self.scan_duration = Histogram("sparkhist_scan_duration_seconds", "Duration of each scan.",
                                       buckets=SCAN_BUCKETS, registry=self.registry)
        self.api_requests = Counter("sparkhist_api_requests", "HTTP requests by route template and status.",
                                    ["route", "status"], registry=self.registry)
        self.api_latency = Histogram("sparkhist_api_request_duration_seconds", "HTTP request latency by route template.",
                                     ["route"], buckets=API_BUCKETS, registry=self.registry)
        probe.history.observers.append(lambda report: self.scan_duration.observe(report.duration))

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        self.api_requests.labels(route, str(status)).inc()
        self.api_latency.labels(route).observe(seconds)

    def exposition(self, accept: str) -> tuple[bytes, str]:
        """The registry in the format the scraper asked for (OpenMetrics or text 0.0.4/1.0.0)."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type
