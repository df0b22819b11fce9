"""The results: one table (rich on the terminal, Markdown in ``bench/RESULTS.md``).

Each row holds the figure of both servers as measured in this run, the ratio
(oriented so that higher always means sparkhist is better: SHS/sparkhist for times
and memory, sparkhist/SHS for throughput), the target copied from the issue, and
whether sparkhist met it. A figure that was not measured is shown as ``n/a``.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

Check = Callable[[float | None, float | None], bool | None]


@dataclass
class Row:
    metric: str
    unit: str
    shs: float | None
    sparkhist: float | None
    target: str = ""
    check: Check | None = None
    higher_is_better: bool = False
    note: str = ""
    #: The figure is a lower bound (a percentile over requests unanswered when the run ended).
    shs_at_least: bool = False
    sparkhist_at_least: bool = False

    @property
    def ratio(self) -> float | None:
        if self.shs is None or self.sparkhist is None or self.shs <= 0 or self.sparkhist <= 0:
            return None
        if self.sparkhist_at_least:  # sparkhist's own figure unknown above its bound: no ratio
            return None
        return self.sparkhist / self.shs if self.higher_is_better else self.shs / self.sparkhist

    @property
    def ratio_at_least(self) -> bool:
        """The ratio is a lower bound: the SHS's time is one (sparkhist's is exact)."""
        return self.shs_at_least and not self.higher_is_better

    @property
    def verdict(self) -> str:
        if self.check is None:
            return ""
        met = self.check(self.shs, self.sparkhist)
        return "" if met is None else ("met" if met else "MISSED")


# Target checks ------------------------------------------------------------------------------


def faster_by(times: float) -> Check:
    return lambda shs, mine: None if not shs or not mine else shs / mine >= times


def at_most(limit: float) -> Check:
    return lambda shs, mine: None if mine is None else mine <= limit


def at_least(limit: float) -> Check:
    return lambda shs, mine: None if mine is None else mine >= limit


def both(*checks: Check) -> Check:
    def check(shs: float | None, mine: float | None) -> bool | None:
        results = [c(shs, mine) for c in checks]
        return None if None in results else all(results)
    return check


# Rendering ----------------------------------------------------------------------------------


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    if unit == "ms":
        return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"
    if unit in ("MB", "MB/s", "MB/s/core"):
        return f"{value:.1f} {unit}"
    if unit in ("events/s/core", "req/s"):
        return f"{value:,.0f} {unit}"
    return f"{value:g} {unit}"


def fmt_ratio(ratio: float | None, at_least: bool = False) -> str:
    if ratio is None:
        return ""
    return ("≥" if at_least else "") + (f"{ratio:.1f}×" if ratio < 100 else f"{ratio:.0f}×")


def fmt_bound(value: float | None, unit: str, at_least: bool) -> str:
    """:func:`fmt`, with ``≥`` before a lower bound."""
    return ("≥" if at_least and value is not None else "") + fmt(value, unit)


#: The SHS column names the release run: the installed pyspark's (the dev pin, 4.3.0).
HEADERS = ("Metric", f"SHS {importlib.metadata.version('pyspark')}", "sparkhist", "× (higher = sparkhist better)",
           "Target (issue)", "Verdict")


def cells(row: Row) -> tuple[str, ...]:
    metric = row.metric + (f" ({row.note})" if row.note else "")
    return (metric, fmt_bound(row.shs, row.unit, row.shs_at_least), fmt_bound(row.sparkhist, row.unit, row.sparkhist_at_least),
            fmt_ratio(row.ratio, row.ratio_at_least), row.target, row.verdict)


def print_table(rows: list[Row], title: str) -> None:
    console = Console(width=None if sys.stdout.isatty() else 220)
    table = Table(title=title, show_lines=False)
    for i, header in enumerate(HEADERS):
        table.add_column(header, justify="right" if 0 < i < 4 else "left", overflow="fold")
    for row in rows:
        style = "red" if row.verdict == "MISSED" else ("green" if row.verdict == "met" else None)
        table.add_row(*cells(row), style=style)
    console.print(table)


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "|".join(["---", "---:", "---:", "---:", "---", "---"]) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells(row)) + " |" for row in rows]
    return "\n".join(lines)


@dataclass
class RunInfo:
    title: str
    settings: dict[str, str]
    notes: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)


def append_results(path: Path, info: RunInfo, rows: list[Row]) -> None:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(info.started))
    text = [f"## {when}: {info.title}", ""]
    text += [f"- **{key}**: {value}" for key, value in machine().items()]
    text += [f"- **{key}**: {value}" for key, value in info.settings.items()]
    text += ["", markdown_table(rows), ""]
    if info.notes:
        text += [f"- {note}" for note in info.notes] + [""]
    if not path.exists():
        path.write_text("# Benchmark results\n\nAppended by `bench/run.py` (newest last). "
                        "See `bench/README.md` for what each figure means.\n\n")
    with path.open("a") as out:
        out.write("\n".join(text) + "\n")


# Machine and versions -----------------------------------------------------------------------


def machine() -> dict[str, str]:
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return {
        "load average at the end (1/5/15 min)": load,
        "machine": f"{os.cpu_count()} CPUs ({_cpu_model()}), {_ram_gb():.1f} GB RAM, {platform.system()} {platform.release()}",
        "versions": (f"Python {platform.python_version()}; sparkhist {_version('sparkhist')} ({_git_head()}); "
                     f"pyspark/SHS {_version('pyspark')}; {_java_version()}"),
    }


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _ram_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _java_version() -> str:
    try:
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired):
        return "java: unknown"
    return out.splitlines()[0].strip() if out else "java: unknown"


def _git_head() -> str:
    """The checked-out commit, read from ``.git`` directly (no git process is run)."""
    git = Path(__file__).resolve().parents[1] / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return f"commit {head[:12]}"
        ref = head[5:]
        ref_file = git / ref
        if ref_file.is_file():
            return f"{ref.rsplit('/', 1)[-1]} @ {ref_file.read_text().strip()[:12]}"
        packed = git / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return f"{ref.rsplit('/', 1)[-1]} @ {line[:12]}"
        return f"{ref.rsplit('/', 1)[-1]} (no commit yet)"
    except OSError:
        return "no git checkout"
