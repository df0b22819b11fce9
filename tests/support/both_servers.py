"""The real SHS and ``sparkhist serve`` side by side over one corpus, for the real-client tests.

The corpora the clients are run over: the generated 4.3.0 logs (``support/corpus.py``),
the rich corpus (``support/rich_corpus.py``), the Spark 4.0.1 logs and Apache's
HistoryServerSuite logs from the shared conformance data (copied, as the shared copy is
read-only). Both servers are real processes on loopback ports reading the same directory.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx

from support.conformance import APACHE, SPARK401
from support.real_shs import RealShs, run_real_shs
from support.server import copy_logs
from support.serving import sparkhist_serve

CORPORA = ("generated-4.3.0", "rich", "spark-4.0.1", "apache")


def corpus_log_dir(corpus: str, tmp: Path) -> Path:
    """The event-log directory of ``corpus`` (the generated ones are built on first use)."""
    if corpus == "generated-4.3.0":
        from support.corpus import ensure_corpus

        return ensure_corpus()
    if corpus == "rich":
        from support.rich_corpus import ensure_rich_corpus

        return ensure_rich_corpus()
    if corpus not in CORPORA:
        raise ValueError(corpus)
    source = SPARK401 / "eventlogs" if corpus == "spark-4.0.1" else APACHE / "spark-events"
    return copy_logs(source, tmp / "logs")


@contextlib.contextmanager
def both_servers(logs: Path, tmp: Path) -> Iterator[tuple[RealShs, str]]:
    """(the real SHS, sparkhist's base URL) over ``logs``, once both list the same number of apps.

    Both are given the log directory as the same string, ``file:<absolute path>``: each
    attempt's ``logSourceName``/``logSourceFullPath`` echo it as configured."""
    store = tmp / "store"
    args = ["--log-dir", f"file:{logs.resolve()}", "--store", str(store), "--host", "127.0.0.1", "--scan-interval", "1",
            "--log-level", "warning"]
    with run_real_shs(logs) as shs, sparkhist_serve(tmp, args, os.environ) as url:
        ours = len(httpx.get(f"{url}/api/v1/applications", timeout=30).json())
        shs.wait_until_listed(ours)
        yield shs, url
