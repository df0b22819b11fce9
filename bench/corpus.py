"""Benchmark corpora: many real Spark applications, and one big one.

* **Scaled corpora.** The finished logs of the conformance set (real Spark 4.0.1
  logs: 101 events, ~485 kB of JSON each) are copied N times with fresh application
  ids by :func:`sparkhist.devtools.scale.scale`, either in Spark 4's default layout
  (``rolling``: an ``eventlog_v2_*`` directory with one zstd events file) or as
  ``plain`` uncompressed single files. ``--templates corpus`` uses the generated test
  corpus (``tests/support/corpus.py``) instead.
* **The big log.** A real application run once with pyspark in local mode
  (``bench/bigapp.py``): one stage of 12,000 tiny tasks, ~56 MB of JSON, written as
  Spark 4 writes it by default (rolling + zstd). Nothing in it is synthesized.

Everything is cached under ``~/.cache/sparkhist/``, keyed by what produced it, and
built in a temporary sibling renamed into place when complete (a crashed build never
leaves half a corpus). ``python bench/corpus.py [--apps N]`` builds and prints paths.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT / "tests", ROOT / "src"):
    if str(extra) not in sys.path:
        sys.path.append(str(extra))

from sparkhist.devtools import scale as scaler  # noqa: E402
from support.corpus import cache_root, ensure_corpus, spark_home  # noqa: E402

BIG_TASKS = 12_000
BIG_TIMEOUT_S = 1800
CONFORMANCE_LOGS = ROOT.parent / "shared" / "conformance" / "spark-4.0.1" / "eventlogs"
LAYOUTS = {"rolling": ("zstd", "rolling"), "plain": (None, "single")}
#: Bump when the way corpora are laid out changes (part of every cache key).
CORPUS_FORMAT = 1
MANIFEST = "bench-corpus.json"
#: File times of the scaled apps: fixed, so runs list them in the same order.
MTIME_BASE = 1_750_000_000.0


@dataclass(frozen=True)
class Corpus:
    """One directory of event logs and what it holds."""

    log_dir: Path
    layout: str  # rolling | plain | big
    apps: int  # applications in log_dir (scaled ones plus the big one, if any)
    stored_bytes: int  # bytes on disk (compressed where the layout compresses)
    raw_bytes: int  # bytes of JSON lines once decompressed
    events: int  # lines (events)
    big_app_id: str | None = None

    @property
    def raw_mb(self) -> float:
        return self.raw_bytes / 1e6


# --------------------------------------------------------------------------- big log


def big_key(tasks: int) -> str:
    digest = hashlib.sha256((ROOT / "bench" / "bigapp.py").read_bytes())
    digest.update(f"{tasks}|{importlib.metadata.version('pyspark')}".encode())
    return digest.hexdigest()[:12]


def ensure_big_log(tasks: int = BIG_TASKS, *, echo: Callable[[str], None] = print) -> Corpus:
    """The directory holding only the big application's log (generated once, minutes)."""
    final = cache_root() / f"bench-big-{tasks}-{big_key(tasks)}"
    if not (final / MANIFEST).is_file():
        echo(f"generating the big log ({tasks:,} tasks) with pyspark local mode; cached in {final}")
        with _building(final) as tmp:
            _run_big_app(tasks, tmp)
    return _load(final)


def _run_big_app(tasks: int, out: Path) -> None:
    log_dir = out / "eventlogs"
    work = out / "work"
    log_dir.mkdir()
    work.mkdir()
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    env.pop("JDK_JAVA_OPTIONS", None)
    cmd = [sys.executable, str(ROOT / "bench" / "bigapp.py"), str(tasks), str(log_dir), str(work)]
    with (out / "spark-output.log").open("wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=work, start_new_session=True)
        try:
            rc: int | None = proc.wait(timeout=BIG_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            rc = None
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the driver JVM shares the session we created
            proc.wait()
    result = work / "result.json"
    if rc != 0 or not result.exists():
        tail = (out / "spark-output.log").read_text(errors="replace")[-4000:]
        raise RuntimeError(f"big app failed (rc={rc}):\n{tail}")
    app_id = json.loads(result.read_text())["app_id"]
    shutil.rmtree(work)
    for crc in log_dir.rglob(".*.crc"):  # Hadoop's checksum side files; no reader needs them
        crc.unlink()
    (path,) = list(log_dir.iterdir())
    template = scaler.load_template(path)
    if template.in_progress:
        raise RuntimeError(f"big app {app_id}: log still in progress")
    _write_manifest(out, Corpus(log_dir, "big", 1, _stored_bytes(log_dir), _raw(template), len(template.lines), app_id))


# --------------------------------------------------------------------------- scaled corpora


def templates(source: str = "conformance") -> list[scaler.Template]:
    """The finished real logs the scaler copies (in-progress ones are left out)."""
    if source == "conformance":
        directory = CONFORMANCE_LOGS
    elif source == "corpus":
        directory = ensure_corpus()
    else:
        raise ValueError(f"unknown template source {source!r}")
    loaded = [scaler.load_template(p) for p in sorted(directory.iterdir()) if not p.name.startswith(".")]
    # The corpus's multi-file app carries 24 MB of padding: it would dominate every figure.
    chosen = [t for t in loaded if not t.in_progress and sum(map(len, t.lines)) < 5_000_000]
    if not chosen:
        raise RuntimeError(f"no finished templates in {directory}")
    return chosen


def ensure_scaled(
    apps: int,
    layout: str,
    *,
    source: str = "conformance",
    big: Corpus | None = None,
    echo: Callable[[str], None] = print,
) -> Corpus:
    """``apps`` scaled applications in ``layout`` (plus a copy of ``big``'s log, if given)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {sorted(LAYOUTS)}")
    chosen = templates(source)
    digest = hashlib.sha256(f"{CORPUS_FORMAT}|{apps}|{layout}|{source}".encode())
    digest.update((ROOT / "src" / "sparkhist" / "devtools" / "scale.py").read_bytes())
    for template in chosen:
        digest.update(f"{template.path.name}|{len(template.lines)}".encode())
    if big is not None:
        digest.update(f"big|{big.log_dir}|{big.big_app_id}".encode())
    prefix = f"bench-{layout}-{apps}{f'-big{big.events}' if big else ''}-"
    final = cache_root() / f"{prefix}{digest.hexdigest()[:12]}"
    if not (final / MANIFEST).is_file():
        for stale in cache_root().glob(f"{prefix}*"):  # an older build of the same shape
            if stale.name != final.name and not stale.name.endswith(".lock"):
                shutil.rmtree(stale, ignore_errors=True)
        echo(f"building {apps:,} {layout} apps from {len(chosen)} templates; cached in {final}")
        with _building(final) as tmp:
            _build_scaled(tmp, chosen, apps, layout, big)
    return _load(final)


def _build_scaled(out: Path, chosen: list[scaler.Template], apps: int, layout: str, big: Corpus | None) -> None:
    log_dir = out / "eventlogs"
    codec, kind = LAYOUTS[layout]
    scaler.scale(chosen, log_dir, apps, codec=codec, kind=kind, id_prefix="local-9", mtime_base=MTIME_BASE)
    raw = sum(_raw(chosen[i % len(chosen)]) for i in range(apps))
    events = sum(len(chosen[i % len(chosen)].lines) for i in range(apps))
    count, big_id = apps, None
    if big is not None:
        (source,) = list(big.log_dir.iterdir())
        shutil.copytree(source, log_dir / source.name)
        raw, events, count, big_id = raw + big.raw_bytes, events + big.events, count + 1, big.big_app_id
    _write_manifest(out, Corpus(log_dir, layout, count, _stored_bytes(log_dir), raw, events, big_id))


# --------------------------------------------------------------------------- helpers


def _raw(template: scaler.Template) -> int:
    return sum(len(line) + 1 for line in template.lines)


def _stored_bytes(log_dir: Path) -> int:
    return sum(p.stat().st_size for p in log_dir.rglob("*") if p.is_file())


def _write_manifest(out: Path, corpus: Corpus) -> None:
    data = asdict(corpus)
    data["log_dir"] = corpus.log_dir.name  # relative: the directory is renamed into place
    (out / MANIFEST).write_text(json.dumps(data, indent=2) + "\n")


def _load(final: Path) -> Corpus:
    data = json.loads((final / MANIFEST).read_text())
    data["log_dir"] = final / data["log_dir"]
    return Corpus(**data)


@contextlib.contextmanager
def _building(final: Path) -> Iterator[Path]:
    """A temporary sibling of ``final``, renamed to it only if the body succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f".{final.name}.tmp-*"):  # left by a crashed build
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--big-tasks", type=int, default=BIG_TASKS)
    parser.add_argument("--templates", choices=("conformance", "corpus"), default="conformance")
    args = parser.parse_args()
    big = ensure_big_log(args.big_tasks)
    for corpus in (big, ensure_scaled(args.apps, "rolling", source=args.templates, big=big),
                   ensure_scaled(args.apps, "plain", source=args.templates)):
        print(f"{corpus.layout:8} {corpus.apps:>7,} apps {corpus.stored_bytes / 1e6:10.1f} MB stored "
              f"{corpus.raw_mb:10.1f} MB raw {corpus.events:>10,} events  {corpus.log_dir}")


if __name__ == "__main__":
    main()
