"""A real client, run as users run it: ``spark-history-cli`` against the real SHS and sparkhist.

``spark-history-cli`` (PyPI, pinned 1.5.0 in the dev extras) is a click CLI over the
REST API: it lists apps, jobs, stages, executors, SQL executions and RDDs, shows
details, task quantiles and plans, as tables or (``--json``) as the raw answers. Every
command runs against the stock SHS 4.3.0 and against ``sparkhist serve`` (real processes
on loopback ports), both over each corpus (``support.both_servers``: the generated 4.3.0
logs, the rich corpus, the 4.0.1 logs, Apache's HistoryServerSuite logs); stdout, the exit
code and the last line of stderr (the error, after any traceback) must be identical.

The listing commands run for every app; the detail commands (app, attempts, summary,
jobs and stages by status, job/stage/SQL details, task lists, plans, RDDs, environment)
for four representative apps of the generated corpus (finished single file, rolling
multi-file, killed single file, killed rolling directory) and for every app of the others.

Hundreds of commands per server: one process each would cost minutes of interpreter
start-up on a 2-core box, so they run through the CLI's own entry point
(``spark_history_cli.cli.main``), one after another, in one subprocess per server
(:data:`BATCH`: argv set, stdout/stderr captured, exit code and uncaught exception kept
as the interpreter would). A handful also run as separate ``spark-history-cli``
processes, and must match their batched run exactly, so the batch cannot drift from the
real script.

What is normalised, and why (nothing else is):

- ``--json`` output: ``lastUpdated``/``lastUpdatedEpoch`` are blanked, as the API
  differential tests do (Apache's ``HistoryServerSuite`` too): for a running app the SHS
  sets them to the wall-clock time of its scan, for a finished one to the log's mtime
  as that server saw it.
- For the still-running (killed-driver) apps only: ``--json`` values under
  ``duration``/``totalDuration`` (same rule as ``test_differential``), and in tables the
  Duration cell of a RUNNING task, which the SHS computes as "now" minus launch time.
- The server URL, which differs by construction, where the CLI echoes it (errors).
- In ``--json`` output, the order *among* an attempt's ``startTimeEpoch``, ``endTimeEpoch``
  and ``lastUpdatedEpoch`` (:data:`GETTER_KEYS`): the SHS's Jackson writes these from the
  getters of ``ApplicationAttemptInfo``, in the order ``Class.getDeclaredMethods`` returns
  them, which the JVM leaves unspecified and which changed between two runs of the same SHS
  4.3.0 on the same logs (one CI run: ``lastUpdatedEpoch`` first). The three keep the
  places they hold in the answer and their values; only which of them sits in which place
  is put in one order on both sides.

The text tables themselves are compared byte for byte: they carry the formatted
numbers, the sort orders and the 404/400 error texts of both servers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from support.both_servers import CORPORA
from support.conformance import blank_last_updated
from support.real_shs import RealShs
from support.spark_setup import corpus_servers

pytestmark = [pytest.mark.spark, pytest.mark.slow]

CLI_VERSION = "1.5.0"
WALL_CLOCK_WHEN_RUNNING = {"duration", "totalDuration"}
#: Runs ``spark-history-cli`` commands (JSON list of argv lists on stdin) through its entry
#: point, one after another; prints a JSON list of [exit code, stdout, stderr].
BATCH = r"""
import contextlib, io, json, sys, traceback
from spark_history_cli.cli import main
results = []
for argv in json.load(sys.stdin):
    out, err = io.StringIO(), io.StringIO()
    sys.argv = ["spark-history-cli", *argv]
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        except Exception:
            traceback.print_exc()
            code = 1
    results.append([code, out.getvalue(), err.getvalue()])
json.dump(results, sys.__stdout__)
"""


def _cli_executable() -> str:
    """The ``spark-history-cli`` script of this interpreter's environment (skip if not installed)."""
    try:
        from importlib.metadata import PackageNotFoundError, version

        installed = version("spark-history-cli")
    except PackageNotFoundError:
        pytest.skip(f"spark-history-cli is not installed (pip install spark-history-cli=={CLI_VERSION})")
    if installed != CLI_VERSION:
        pytest.skip(f"spark-history-cli {installed} is installed; these expectations are for {CLI_VERSION}")
    script = Path(sys.executable).with_name("spark-history-cli")
    return str(script) if script.exists() else shutil.which("spark-history-cli") or pytest.skip("no spark-history-cli script")


@pytest.fixture(scope="module", params=CORPORA)
def servers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, RealShs, str]]:
    """(corpus, the real SHS, sparkhist's URL), both serving the corpus and listing the same apps."""
    yield from corpus_servers(request, tmp_path_factory, "cli")


#: The generated corpus's representative apps (by name) that get every detail command.
REPRESENTATIVE = ("finished-none-single", "finished-zstd-rolling-multifile", "killed-none-single", "killed-zstd-rolling")


def _commands(corpus: str, apps: list[dict[str, Any]], stage_ids: dict[str, list[int]]) -> list[tuple[list[str], bool]]:
    """(arguments, app is running) for every invocation; ``apps`` and ``stage_ids`` as the real SHS lists them."""
    running = {a["id"] for a in apps if not a["attempts"][0]["completed"]}
    commands: list[tuple[list[str], bool]] = [
        (["version"], False), (["apps"], False), (["apps", "--status", "running"], False),
        (["apps", "--status", "completed"], False), (["apps", "--limit", "3"], False), (["--json", "apps"], False),
        (["app", "nope-app"], False), (["-a", "nope-app", "jobs"], False),
    ]
    # Listing commands for every app.
    for app in (a["id"] for a in apps):
        live = app in running
        commands += [(["-a", app, *args], live) for args in (["jobs"], ["stages"], ["executors", "--all"], ["sql"])]
    # Everything else for the representative apps of the generated corpus, every app of the others.
    detailed = [a["id"] for a in apps if corpus != "generated-4.3.0" or a["name"] in REPRESENTATIVE]
    for app in detailed:
        live = app in running
        commands += [(args, live) for args in (
            ["app", app], ["-a", app, "attempts"], ["-a", app, "summary"], ["-a", app, "executors"],
            ["-a", app, "jobs", "--status", "failed"], ["-a", app, "jobs", "--status", "running"],
            ["-a", app, "stages", "--status", "active"], ["-a", app, "stages", "--status", "failed"],
            ["-a", app, "job", "0"], ["-a", app, "job", "99"], ["-a", app, "job-stages", "1"],
            ["-a", app, "stage", "0"], ["-a", app, "stage", "1", "--attempt", "0"], ["-a", app, "stage", "99"],
            ["-a", app, "stage-summary", "0"], ["-a", app, "stage-tasks", "0"],
            ["-a", app, "stage-tasks", "0", "--sort-by", "ID", "--length", "3", "--offset", "1"],
            ["-a", app, "sql", "0"], ["-a", app, "sql-plan", "0"], ["-a", app, "sql-plan", "0", "--view", "final"],
            ["-a", app, "sql-plan", "0", "--dot"], ["-a", app, "sql-jobs", "0"], ["-a", app, "rdds"],
            ["-a", app, "env"], ["-a", app, "processes"],
            ["--json", "-a", app, "jobs"], ["--json", "-a", app, "stages"], ["--json", "-a", app, "executors", "--all"],
            ["--json", "-a", app, "sql"], ["--json", "-a", app, "summary"], ["--json", "-a", app, "stage-tasks", "0"],
        )]
        # The last stage: for a killed app, the one left running with its hanging task.
        last_stage = max(stage_ids[app], default=0)
        commands += [(["-a", app, "stage-tasks", str(last_stage)], live),
                     (["-a", app, "stage", str(last_stage)], live)]
    return commands


def _normalize_output(text: str, args: list[str], running: bool, url: str) -> str:
    text = text.replace(url, "<server>")
    if "--json" in args:
        try:
            body = json.loads(text)
        except ValueError:
            return text
        body = _getters_in_one_order(blank_last_updated(body))
        if running:
            body = _mask(body)
        return json.dumps(body, indent=2)
    if running:
        # A RUNNING task's Duration cell ("now" minus its launch time), and the column
        # padding that follows the width of that cell.
        text = re.sub(r"(│\s*RUNNING\s*│(?:[^│\n]*│){2}\s*)([^│\n]*?)(\s*│)", r"\1<now>\3", text)
        text = re.sub(r"─+", "─", re.sub(r" *│ *", " │ ", text))
        text = "\n".join(line.rstrip() for line in text.splitlines())
    return text


#: Attempt keys the SHS writes from getters, whose relative order varies between JVM runs.
GETTER_KEYS = ("startTimeEpoch", "endTimeEpoch", "lastUpdatedEpoch")


def _getters_in_one_order(value: Any) -> Any:
    """``value`` with :data:`GETTER_KEYS` refilled, in that order, into the places they hold."""
    if isinstance(value, list):
        return [_getters_in_one_order(v) for v in value]
    if not isinstance(value, dict):
        return value
    getters = iter([k for k in GETTER_KEYS if k in value])
    keys = [next(getters) if k in GETTER_KEYS else k for k in value]
    return {k: _getters_in_one_order(value[k]) for k in keys}


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("<now>" if k in WALL_CLOCK_WHEN_RUNNING else _mask(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPARK_HISTORY")}
    env.update(HOME=str(home), NO_COLOR="1", COLUMNS="200", LINES="50", PYTHONIOENCODING="utf-8")
    return env


def _run(cli: str, url: str, args: list[str], home: Path) -> tuple[int, str, str]:
    """One command as its own ``spark-history-cli`` process."""
    done = subprocess.run([cli, "--server", url, *args], capture_output=True, text=True, timeout=120,
                          env=_env(home), stdin=subprocess.DEVNULL)
    return done.returncode, done.stdout, done.stderr


def _run_batch(url: str, commands: list[list[str]], home: Path) -> list[tuple[int, str, str]]:
    """Every command through the CLI's entry point, in one subprocess (see :data:`BATCH`)."""
    done = subprocess.run([sys.executable, "-c", BATCH], input=json.dumps([["--server", url, *c] for c in commands]),
                          capture_output=True, text=True, timeout=900, env=_env(home))
    assert done.returncode == 0, done.stderr[-4000:]
    return [tuple(r) for r in json.loads(done.stdout)]


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def test_spark_history_cli_reads_sparkhist_like_the_real_shs(servers: tuple[str, RealShs, str], tmp_path: Path) -> None:
    cli = _cli_executable()
    corpus, shs, sparkhist_url = servers
    shs_url = shs.base_url
    apps = shs.get("/applications").json()
    stage_ids = {a["id"]: [s["stageId"] for s in shs.get(f"/applications/{a['id']}/stages").json()]
                 if shs.get(f"/applications/{a['id']}/stages").status_code == 200 else [] for a in apps}
    commands = _commands(corpus, apps, stage_ids)

    argvs = [args for args, _ in commands]
    with ThreadPoolExecutor(2) as pool:  # the two servers at once
        theirs_all, ours_all = pool.map(lambda url: _run_batch(url, argvs, tmp_path), (shs_url, sparkhist_url))
    results = [(args, running, theirs, ours)
               for (args, running), theirs, ours in zip(commands, theirs_all, ours_all, strict=True)]

    # The batch is the real CLI: some commands (version, apps, an unknown app's error, the
    # running stage of a killed app) run as separate processes give the batch's output.
    for index in (0, 1, 6, len(commands) - 2):
        args, running = commands[index]
        for url, batched in ((shs_url, theirs_all[index]), (sparkhist_url, ours_all[index])):
            alone = _run(cli, url, args, tmp_path)
            assert ((alone[0], _normalize_output(alone[1], args, running, url), _last_line(alone[2]))
                    == (batched[0], _normalize_output(batched[1], args, running, url), _last_line(batched[2]))), args

    different: list[str] = []
    exit_codes: dict[int, int] = {}
    for args, running, theirs, ours in results:
        exit_codes[theirs[0]] = exit_codes.get(theirs[0], 0) + 1
        out_theirs, out_ours = (_normalize_output(r[1], args, running, url)
                                for r, url in ((theirs, shs_url), (ours, sparkhist_url)))
        err_theirs, err_ours = (_last_line(r[2]).replace(url, "<server>")
                                for r, url in ((theirs, shs_url), (ours, sparkhist_url)))
        if (theirs[0], out_theirs, err_theirs) != (ours[0], out_ours, err_ours):
            shown = " ".join(args)
            diff = [f"exit {theirs[0]} vs {ours[0]}"] if theirs[0] != ours[0] else []
            a, b = out_theirs.splitlines(), out_ours.splitlines()
            diff += [f"  SHS       {x!r}\n  sparkhist {y!r}" for x, y in zip(a, b, strict=False) if x != y][:6]
            if len(a) != len(b):
                diff.append(f"  {len(a)} vs {len(b)} lines")
            if err_theirs != err_ours:
                diff.append(f"  stderr SHS {err_theirs!r}\n  stderr sparkhist {err_ours!r}")
            different.append(f"spark-history-cli {shown}:\n" + "\n".join(diff))
    print(f"\n[{corpus}] {len(results)} spark-history-cli commands against both servers; exit codes {exit_codes}; "
          f"{len(results) - len(different)} identical, {len(different)} different")
    for problem in different:
        print(problem)
    assert all(r[2][0] == 0 for r in results if r[0] == ["version"]), "the CLI could not reach the real SHS"
    assert different == []
