"""The ``sparkhist`` command: serve, scan, apps."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import click

import sparkhist
from sparkhist import __version__
from sparkhist.config import Settings, load_settings
from sparkhist.errors import ConfigError, SparkhistError
from sparkhist.render.terminal import visible

if TYPE_CHECKING:
    from types import FrameType

    from sparkhist.analytics.query import Engine
    from sparkhist.scan.scanner import Scanner
    from sparkhist.scan.workers import BuildPool
    from sparkhist.server import Runtime


def _setup_logging(level: str, fmt: str = "plain") -> None:
    from sparkhist.observability.logs import setup_logging

    setup_logging(level, fmt, sys.stderr)


def _common(fn: Callable[..., Any]) -> Callable[..., Any]:
    @click.option("--log-dir", help="Event log directory (path or file: URL). Default: bundled sample logs.")
    @click.option("--store", "store_dir", help="Store directory (catalog and snapshots).")
    @click.option("--properties-file", type=str, help="An SHS properties file (spark.history.* settings).")
    @click.option("--hadoop-conf-dir", help="Directory of core-site.xml/hdfs-site.xml (default: $HADOOP_CONF_DIR).")
    @click.option("--hadoop-conf", multiple=True, metavar="KEY=VALUE", help="A Hadoop property (repeatable).")
    @click.option("--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"]))
    @click.option("--log-format", default="plain", show_default=True, type=click.Choice(["plain", "json"]),
                  help="Log lines for people, or one JSON object per line for log collectors.")
    @functools.wraps(fn)
    def wrapper(log_dir: str | None, store_dir: str | None, properties_file: str | None, log_level: str, log_format: str,
                **kw: Any) -> Any:
        _setup_logging(log_level, log_format)
        flags = {"log_dir": log_dir, "store_dir": store_dir, **{k: kw.pop(k) for k in list(kw) if k in _FLAG_NAMES}}
        try:
            settings = load_settings(flags, properties_file=properties_file)
            return fn(settings, **kw)
        except ConfigError as exc:
            click.echo(f"sparkhist: configuration error: {visible(exc)}", err=True)
            sys.exit(2)
        except SparkhistError as exc:
            click.echo(f"sparkhist: {visible(exc)}", err=True)
            sys.exit(1)

    return wrapper


_FLAG_NAMES = {"host", "port", "scan_interval", "hadoop_conf_dir", "hadoop_conf"}


class _OneLineErrors(click.Group):
    """A usage error (an unknown option, a value click itself rejects) is one line and
    exit status 2 too, like a bad setting, instead of click's usage block."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:  # a bare ``sparkhist``: the help, as click shows it
            exc.show()
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            where = f" (see {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
            click.echo(f"sparkhist: usage error: {visible(exc.format_message())}{where}", err=True)
            sys.exit(2)
        except click.ClickException as exc:
            click.echo(f"sparkhist: {visible(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            sys.exit(1)


@click.group(cls=_OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sparkhist")
def main() -> None:
    """sparkhist: a resilient, fast Spark History Server."""


@main.command()
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", help="Port, 1-65535 (default 18080).")
@click.option("--scan-interval", type=str, help="Seconds between scans (default 10; Spark durations accepted).")
@click.option("--cache", "cache_dir", help="With --store URL (a shared store index-on-spark writes): this replica's "
                                           "cache directory.")
@_common
def serve(settings: Settings, cache_dir: str | None) -> None:
    """Scan in the background and serve the REST API (SIGTERM or Ctrl-C stops cleanly within 3 s).

    With --store URL --cache DIR: a replica of the shared store URL, served from its cache DIR.
    """
    from sparkhist.server import serve as run

    run(_replica(settings, cache_dir))  # checks the settings first: a bad one is a ConfigError before anything is bound


def _replica(settings: Settings, cache_dir: str | None) -> Settings:
    """``serve --store URL --cache DIR``: the settings of a replica of URL; a plain --store path: unchanged."""
    if "://" not in settings.store_dir and cache_dir is None:
        return settings  # a store directory: nothing more imported on the way to the first answer
    from sparkhist.server.shared_store import replica_settings
    from sparkhist.store.remote import is_store_url

    if not is_store_url(settings.store_dir):
        if cache_dir is not None:
            raise ConfigError("--cache is the cache of a shared store: give --store a URL (file://, hdfs://, s3a://...)")
        return settings
    if not cache_dir:
        raise ConfigError(f"--store {settings.store_dir} is a shared store: --cache DIR (this replica's cache) is needed")
    source = click.get_current_context().get_parameter_source("log_dir")
    if source is click.core.ParameterSource.COMMANDLINE:
        raise ConfigError("a replica (--store URL) reads no log directory: index-on-spark indexes the logs into "
                          "the shared store; drop --log-dir")
    from sparkhist.config import bundled_samples

    if settings.log_dir != bundled_samples():  # from the environment or a properties file
        logging.getLogger("sparkhist").info("replica of %s: the configured log directory %s is not read",
                                            settings.store_dir, settings.log_dir)
    return replica_settings(settings, settings.store_dir, cache_dir)


@main.command()
@_common
def scan(settings: Settings) -> None:
    """Scan the log directory once, with a progress bar, and exit (SIGTERM or Ctrl-C: after the log at hand)."""
    _scan_once(settings)


@main.command("index-on-spark")
@click.option("--master", default=None, help="Spark master URL (default: spark-submit's, else local[*]).")
@click.option("--conf", "confs", multiple=True, metavar="KEY=VALUE", help="A Spark property (repeatable).")
@click.option("--cache", "cache_dir", default=None, help="With --store URL: the driver's local copy of the store's "
                                                         "catalog (default: a temporary directory).")
@_common
def index_on_spark(settings: Settings, master: str | None, confs: tuple[str, ...], cache_dir: str | None) -> None:
    """Scan the log directory once with the full indexing run as a Spark job (also under spark-submit).

    The driver lists the logs and keeps the store's catalog; every lagging log is built by a
    Spark task (sparkhist must be installed in the executors' Python). A re-run builds only
    new and grown logs. --store DIR: a directory every executor reaches at the same path.
    --store URL (hdfs://, s3a://, gs://, abfs://, file://): executors upload each snapshot
    there; the driver works on a local cache of the catalog (--cache) synced from the store,
    and publishes one catalog segment and a manifest when the run changed something.
    """
    try:
        import pyspark
        from pyspark import SparkConf, SparkContext
    except ImportError:
        click.echo("sparkhist: index-on-spark needs pyspark (pip install pyspark, or run it with spark-submit)", err=True)
        sys.exit(2)
    import dataclasses
    import tempfile

    from sparkhist.scan.on_spark import SparkIndexPool, begin_run, finish_run
    from sparkhist.source.factory import SourceOptions
    from sparkhist.store.remote import RemoteStore, is_store_url

    submitted = "PYSPARK_GATEWAY_PORT" in os.environ  # under spark-submit: its master, home and Python
    conf = SparkConf().setAppName("sparkhist index-on-spark")
    if master is not None:
        conf.setMaster(master)
    elif not submitted and not conf.contains("spark.master"):
        conf.setMaster("local[*]")
    for item in confs:
        key, sep, value = item.partition("=")
        if not sep or not key:
            click.echo(f"sparkhist: usage error: --conf {visible(item)}: KEY=VALUE expected", err=True)
            sys.exit(2)
        conf.set(key, value)
    if not submitted:
        # pyspark's own directory ships bin/ and jars/: a Spark home for the driver and local-cluster's workers
        os.environ.setdefault("SPARK_HOME", os.path.dirname(os.path.abspath(pyspark.__file__)))
    if conf.get("spark.master", "").startswith("local"):
        # one machine: the executors run this very Python and import this very sparkhist
        if "PYSPARK_PYTHON" not in os.environ and not conf.contains("spark.pyspark.python"):
            os.environ["PYSPARK_PYTHON"] = sys.executable
        if not conf.contains("spark.executorEnv.PYTHONPATH"):
            conf.set("spark.executorEnv.PYTHONPATH", os.path.dirname(os.path.dirname(os.path.abspath(sparkhist.__file__))))
    if not sys.stderr.isatty() and not conf.contains("spark.ui.showConsoleProgress"):
        conf.set("spark.ui.showConsoleProgress", "false")  # no progress bar redrawn into a log file
    pools: list[SparkIndexPool] = []
    options = SourceOptions.from_settings(settings)
    with contextlib.ExitStack() as stack:
        remote_url: str | None = None
        if is_store_url(settings.store_dir):
            remote = stack.enter_context(RemoteStore.open(settings.store_dir, options))
            remote_url = remote.url
            if cache_dir is None:
                cache_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="sparkhist-index-cache-"))
            before = begin_run(remote, cache_dir)
            settings = dataclasses.replace(settings, store_dir=cache_dir)
        elif cache_dir is not None:
            raise ConfigError("--cache is the local copy of a store location's catalog: give --store a URL "
                              "(hdfs://, s3a://, file://...)")

        def pool(runtime: Runtime) -> SparkIndexPool:
            pools.append(SparkIndexPool(lambda: SparkContext.getOrCreate(conf), runtime.source.root, settings.store_dir,
                                        options, remote_url=remote_url))
            return pools[0]

        try:
            _scan_once(settings, pool)
        finally:
            for started in pools:
                if started.started:
                    started.context.stop()
        for done in pools:
            click.echo(f"{done.logs_built} logs built by {done.jobs_run} Spark jobs in {done.job_seconds:.2f}s"
                       if done.started else "no Spark job run")
        if remote_url is not None and pools:
            published = finish_run(remote, settings.store_dir, before, log_dir=pools[0].root, log_source=settings.log_source)
            click.echo(f"published {published.manifest}: {published.records} records, {published.deleted} deleted "
                       f"in {published.seconds:.2f}s" if published.records or published.deleted
                       else f"nothing to publish ({published.manifest or 'no manifest'})")


def _scan_once(settings: Settings, pool: Callable[[Runtime], BuildPool] | None = None) -> None:
    """One scan of the log directory with a progress bar; its full indexing on ``pool(runtime)`` when given."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from sparkhist.server import build_runtime
    from sparkhist.server.preflight import check_log_dir, check_writable_store

    offline = check_log_dir(settings.log_dir, settings.store_dir)
    check_writable_store(settings.store_dir)
    if offline is not None:
        logging.getLogger("sparkhist").warning("log directory %s does not exist; the %d applications the store "
                                               "holds from it are kept", settings.log_dir, offline)
    runtime = build_runtime(settings)
    if not runtime.loop.lock.try_acquire():
        click.echo(f"sparkhist: store {visible(settings.store_dir)} is being written by pid {runtime.loop.lock.holder_pid()}; "
                   "that process keeps it up to date, nothing to do", err=True)
        sys.exit(0)
    if pool is not None:
        if runtime.scanner.pool is not None:
            runtime.scanner.pool.close()
        runtime.scanner.pool = pool(runtime)
    with Progress(TextColumn("[bold]indexing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("scan", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        stopped_by = _stop_scan_on_signals(runtime.scanner)
        report = runtime.scanner.scan_once(progress)
    runtime.close()
    if stopped_by:
        click.echo(f"sparkhist: scan stopped by {signal.Signals(stopped_by[0]).name}; what was read is stored, "
                   "the next scan goes on from there", err=True)
        sys.exit(128 + stopped_by[0])
    click.echo(f"{report.listed} logs listed: {report.new} new, {report.grown} grown, {report.unchanged} unchanged, "
               f"{report.removed} removed, {report.failed} skipped; {len(runtime.index)} applications; {report.duration:.2f}s")
    for path, why in sorted(report.errors.items()):
        click.echo(f"  skipped {visible(path)}: {visible(why)}")
    if report.source_error:
        click.echo(f"sparkhist: listing failed: {visible(report.source_error)}", err=True)
        sys.exit(1)


def _stop_scan_on_signals(scanner: Scanner) -> list[int]:
    """SIGINT/SIGTERM end the scan after the log at hand; returns the signals received."""
    received: list[int] = []

    def handle(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        scanner.stopping.set()
        if scanner.pool is not None:  # not here: the main thread may hold the pool's lock
            threading.Thread(target=scanner.pool.stop, name="sparkhist-stop", daemon=True).start()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handle)
    return received


@main.command()
@_common
def apps(settings: Settings) -> None:
    """A table of the indexed applications (read from the store only)."""
    from rich.console import Console
    from rich.table import Table

    from sparkhist.render.encode import format_date
    from sparkhist.render.terminal import text
    from sparkhist.server.preflight import check_readable_store
    from sparkhist.store.applications import ApplicationIndex
    from sparkhist.store.catalog import Catalog

    check_readable_store(settings.store_dir)
    catalog = Catalog(settings.store_dir, None, read_only=True)
    index = ApplicationIndex()
    for record in catalog.load(repair=False).records.values():
        index.update(record)
    catalog.close()
    # Every cell a rich Text: ids, names and users come from the logs, and a str cell is markup.
    table = Table(title=text(f"{len(index)} applications in {settings.store_dir}"))
    for column in ("App ID", "Name", "Attempt", "Status", "Started (GMT)", "Duration", "User"):
        table.add_column(column, overflow="fold")  # a narrow terminal folds an id, never cuts it
    for app in index.sorted_apps():
        for attempt in app.attempts:
            item = attempt.listing
            cells = (app.id, app.name or "", item.attempt_id or "", "completed" if item.completed else "running",
                     format_date(item.start_time)[:-3].replace("T", " "),
                     f"{item.duration / 1000:.1f}s" if item.completed else "", item.spark_user or "")
            table.add_row(*(text(cell) for cell in cells))
    # Not a terminal (a pipe, a file): don't squeeze the ids to 80 columns.
    Console(width=None if sys.stdout.isatty() else 200).print(table)


@main.command()
@_common
def verify(settings: Settings) -> None:
    """Check every checksum of the store (read-only); exit 1 when anything is damaged."""
    from sparkhist.server.preflight import check_readable_store
    from sparkhist.store.verify import verify_store

    check_readable_store(settings.store_dir)
    report = verify_store(settings.store_dir)
    click.echo(f"catalog: {report.records} records, {report.damaged_records} damaged")
    click.echo(f"snapshots: {report.snapshots_ok} ok, {len(report.damaged_snapshots)} damaged, "
               f"{report.snapshots_missing} not built yet, {len(report.orphans)} orphaned, "
               f"{len(report.temp_files)} half-written")
    for label, why in sorted(report.damaged_snapshots.items()):
        click.echo(f"  DAMAGED {visible(label)}: {visible(why)}")
    click.echo(f"application list file: {visible(report.list_file)}")
    if not report.ok:
        sys.exit(1)
    click.echo("store ok")


@main.command()
@click.option("--url", help="Ask a running server (e.g. http://127.0.0.1:18080); without it, read the store on disk.")
@click.option("--json", "as_json", is_flag=True, help="Print the health document as JSON.")
@_common
def status(settings: Settings, url: str | None, as_json: bool) -> None:
    """Health at a glance. Exit 0 healthy, 1 degraded or offline, 2 unreachable."""
    from sparkhist.observability.status import run_status

    sys.exit(run_status(settings.store_dir, url, as_json=as_json))


if __name__ == "__main__":  # pragma: no cover
    main()


@main.command()
@click.option("--format", "fmt", default="table", show_default=True, type=click.Choice(["table", "json", "csv"]))
@click.option("--timeout", default=60.0, show_default=True, help="Seconds before the query is stopped.")
@click.option("--max-rows", default=1_000_000, show_default=True, help="More rows than this is an error.")
@click.argument("query")
@_common
def sql(settings: Settings, fmt: str, timeout: float, max_rows: int, query: str) -> None:
    """Run one read-only SQL query (SELECT or WITH) over the analytics tables (see the README).

    A refused or failing query is one error line and exit status 2.
    """
    from sparkhist.analytics.query import QueryError

    with _analytics(settings, QueryError, "", timeout=timeout, max_rows=max_rows) as engine:
        result = engine.run(query)
    for fragment in result.damaged:
        click.echo(f"sparkhist: warning: damaged {visible(fragment.path)} left out (rebuilt by the next scan)", err=True)
    _print_result(result.columns, result.rows, fmt)


@main.command("export-tables")
@click.argument("directory", type=click.Path(file_okay=False))
@_common
def export_tables(settings: Settings, directory: str) -> None:
    """Write every analytics table as DIRECTORY/<table>.parquet (pandas, Spark, BI tools read them).

    The documented columns of every attempt indexed so far; a file is replaced whole.
    """
    with _analytics(settings, OSError, f"cannot export to {visible(directory)}: ") as engine:
        counts = engine.export(directory)
    for table, rows in counts.items():
        click.echo(f"{visible(os.path.join(directory, table + '.parquet'))}\t{rows} rows")


@contextlib.contextmanager
def _analytics(settings: Settings, error: type[Exception], prefix: str, **limits: Any) -> Iterator[Engine]:
    """The analytics engine over a readable store, closed after use: an ``error`` raised in the
    block is one line (``prefix`` and the error) and exit status 2."""
    from sparkhist.analytics.query import Engine
    from sparkhist.server.preflight import check_readable_store

    check_readable_store(settings.store_dir)
    engine = Engine(settings.store_dir, **limits)
    try:
        yield engine
    except error as exc:
        click.echo(f"sparkhist: {prefix}{visible(exc)}", err=True)
        sys.exit(2)
    finally:
        engine.close()


def _print_result(columns: list[str], rows: list[tuple[Any, ...]], fmt: str) -> None:
    """Rows as a table, JSON (one array of objects) or CSV; every string made terminal-safe."""
    def cell(value: Any) -> Any:
        return visible(value) if isinstance(value, str) else value

    if fmt == "json":
        import orjson

        body = [{c: cell(v) for c, v in zip(columns, row, strict=True)} for row in rows]
        sys.stdout.write(orjson.dumps(body, default=str, option=orjson.OPT_INDENT_2).decode() + "\n")
    elif fmt == "csv":
        import csv

        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([visible(c) for c in columns])
        writer.writerows([["" if v is None else cell(v) for v in row] for row in rows])
    else:
        from rich.console import Console
        from rich.table import Table

        from sparkhist.render.terminal import text

        table = Table()
        for column in columns:
            table.add_column(text(column), overflow="fold")
        for row in rows:
            table.add_row(*(text("" if v is None else v) for v in row))
        Console(width=None if sys.stdout.isatty() else 200).print(table)
