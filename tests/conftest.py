"""Session fixtures shared by all tests: real Spark parts and the conformance data.

``tests/`` is on ``sys.path`` (pytest's rootdir conftest insertion), so helpers
live in the ``support`` namespace package: ``from support.corpus import ...``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.bench_smoke import QUICK_RUN, start_quick_run
from support.conformance import APACHE, SPARK401
from support.corpus import ensure_corpus, load_manifest
from support.real_shs import RealShs
from support.server import copy_logs
from support.spark_setup import real_shs_listing, require_spark

#: The repository root, wherever CI cloned it; ``shared/`` sits beside it.
REPO_ROOT = Path(__file__).resolve().parents[1]

# A ``sparkhist serve`` a test starts is one process unless the test asks for more (the serving
# processes have tests of their own, tests/server/test_serving_processes.py): the default,
# min(4, cores), would add a process to every server of the suite on CI's 2 cores.
os.environ.setdefault("SPARKHIST_SERVE_PROCESSES", "1")


def pytest_collection_finish(session: pytest.Session) -> None:
    """The benchmark smoke run starts now, in the background, when its test is to run (it is
    mostly waiting: tests/support/bench_smoke.py); its test collects the result."""
    if any(item.path.name == "test_bench_smoke.py" for item in session.items) and not session.config.option.collectonly:
        if importlib.util.find_spec("pyspark") is not None:  # else its test skips (a failure on CI)
            session.config.stash[QUICK_RUN] = start_quick_run()


def pytest_sessionfinish(session: pytest.Session) -> None:
    run = session.config.stash.get(QUICK_RUN, None)
    if run is not None:
        run.stop()  # a session that never reached the test (-x, interrupted): no run left behind


#: How long the end of a session waits for threads the interpreter's exit would wait for.
EXIT_THREADS_GRACE = 60.0


def pytest_unconfigure(config: pytest.Config) -> None:
    """A thread left running (a pool's manager thread joining a worker that never exits, a
    server thread never stopped) makes the interpreter's exit wait for it, for ever: the
    run would pass every test and then hang until CI's time ran out. Such threads get a
    grace period; any still alive then is printed with its stack and the run fails."""
    import sys
    import threading
    import time
    import traceback

    deadline = time.monotonic() + EXIT_THREADS_GRACE
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    left = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if not left:
        return
    frames = sys._current_frames()
    sys.stderr.write(f"\n{len(left)} thread(s) still running at the end of the session; "
                     "the interpreter's exit would wait for them for ever:\n")
    for thread in left:
        stack = "".join(traceback.format_stack(frames[thread.ident])) if thread.ident in frames else ""
        sys.stderr.write(f"--- {thread.name}\n{stack}")
    sys.stderr.flush()
    os._exit(3)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """With ``SPARKHIST_NO_SKIPS=1`` (CI sets it) a skip is a failure: a machine that
    lacks Java, Maven or pyspark must not pass by running less."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("SPARKHIST_NO_SKIPS") == "1" and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, and SPARKHIST_NO_SKIPS=1 forbids it: {report.longrepr}"


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    """``<repo>/../shared/conformance``: logs, answers recorded from the stock SHS 4.0.1, Apache's golden files."""
    path = REPO_ROOT.parent / "shared" / "conformance"
    if not path.is_dir():
        pytest.fail(f"conformance data not found at {path}: shared/ must be checked out beside the repo")
    return path


@pytest.fixture(scope="session")
def spark_corpus() -> Path:
    """Directory of real event logs written by the installed pyspark (cached; first run takes minutes). Read-only."""
    require_spark()
    return ensure_corpus()


@pytest.fixture(scope="session")
def corpus_manifest(spark_corpus: Path) -> list[dict[str, Any]]:
    """One entry per log in ``spark_corpus``: path, app_id, name, codec, layout, state, files, bytes."""
    return load_manifest(spark_corpus)


@pytest.fixture(scope="session")
def real_shs_on_corpus(spark_corpus: Path, corpus_manifest: list[dict[str, Any]]) -> Iterator[RealShs]:
    """The stock SHS serving ``spark_corpus``, started once and waited on until every app is listed."""
    with real_shs_listing(spark_corpus, len(corpus_manifest)) as shs:
        yield shs


@pytest.fixture(scope="session")
def spark401_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the 4.0.1 conformance logs, served by both sparkhist and the real SHS (same directory)."""
    return copy_logs(SPARK401 / "eventlogs", tmp_path_factory.mktemp("spark401") / "logs")


@pytest.fixture(scope="session")
def apache_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of Apache's HistoryServerSuite logs, served by both sparkhist and the real SHS (same directory)."""
    return copy_logs(APACHE / "spark-events", tmp_path_factory.mktemp("apache") / "logs")


#: How many applications the SHS lists for each conformance log set (its recorded listings:
#: 13 logs, 13 apps; 18 logs, 16 apps, as one app has two attempts and one log has no app id).
LISTED = {"spark401": 13, "apache": 16}


def _real_shs(logs: Path, apps: int) -> Iterator[RealShs]:
    require_spark()
    with real_shs_listing(logs, apps) as shs:
        yield shs


@pytest.fixture(scope="session")
def real_shs_spark401(spark401_logs: Path) -> Iterator[RealShs]:
    """The real SHS of the installed pyspark (4.3.0, the reference) over ``spark401_logs``."""
    yield from _real_shs(spark401_logs, LISTED["spark401"])


@pytest.fixture(scope="session")
def real_shs_apache(apache_logs: Path) -> Iterator[RealShs]:
    """The real SHS of the installed pyspark (4.3.0, the reference) over ``apache_logs``."""
    yield from _real_shs(apache_logs, LISTED["apache"])
