"""The CLI prints strings from logs, file names and servers as plain, visible text.

Run as a user runs it (a real process over real logs and stores): a ``[`` is never rich
markup (``[/oops]`` used to raise ``MarkupError``), and no control character written by
whoever wrote the log reaches the terminal: ESC, BEL, C1 and bidi controls are shown as
``\\x1b``-style escapes.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sparkhist.render.terminal import visible
from support.hostile import HOSTILE, app_id, write_logs

SPARKHIST = [sys.executable, "-m", "sparkhist.cli"]
RAW_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def run(*args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "CLICOLOR_FORCE")}
    done = subprocess.run([*SPARKHIST, *args], capture_output=True, timeout=120, env=env)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def _columns(table: str) -> list[str]:
    """Each column of a rich table, its wrapped cell lines joined, whitespace removed."""
    columns: list[str] = []
    for line in table.splitlines():
        if not line.startswith("│"):
            continue
        cells = line.strip().strip("│").split("│")
        columns += [""] * (len(cells) - len(columns))
        for i, cell in enumerate(cells):
            columns[i] += re.sub(r"\s", "", cell)
    return columns


def test_visible_shows_control_characters_as_escapes() -> None:
    assert visible("a\x1b[31mb\x07") == "a\\x1b[31mb\\x07"
    assert visible("\x00\x7f\x9b\x85") == "\\x00\\x7f\\x9b\\x85"
    assert visible("tab\tline\nret\r") == "tab\\tline\\nret\\r"
    assert visible("\u202eevil\u2066\u2028") == "\\u202eevil\\u2066\\u2028"
    assert visible("[/oops] <b> é 名前 \\x1b") == "[/oops] <b> é 名前 \\x1b", "printable text is untouched"
    assert visible(None) == "None"
    for code in [*range(0x20), *range(0x7F, 0xA0), 0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]:
        assert visible(chr(code)).isprintable(), hex(code)


def test_apps_prints_hostile_names_as_plain_visible_text(tmp_path: Path) -> None:
    logs = write_logs(tmp_path / "logs", HOSTILE)
    store = tmp_path / "store"
    code, out, err = run("scan", "--log-dir", str(logs), "--store", str(store))
    assert code == 0, err
    assert f"{len(HOSTILE)} applications" in out

    code, out, err = run("apps", "--log-dir", str(logs), "--store", str(store))
    assert code == 0, err
    assert "MarkupError" not in err
    assert "\x1b" not in out and not RAW_CONTROLS.search(out.replace("\n", "")), "no control character reaches the terminal"
    ids, names, *_, users = _columns(out)
    for i, value in enumerate(HOSTILE):
        shown = re.sub(r"\s", "", visible(value))
        assert re.sub(r"\s", "", visible(app_id(i, value))) in ids
        assert shown in names and shown in users
    assert "\\x1b[31mred\\x1b[0m\\x1b]52;c;aGk=\\x07\\x1b[2J\\x9b1m\\u202eevil" in names
    assert "[/oops]" in names and "[boldred]" in names, "brackets are text, not markup"


def test_apps_and_status_on_a_hostile_store_path(tmp_path: Path) -> None:
    logs = write_logs(tmp_path / "logs", ["benign"])
    store = tmp_path / "store-[/oops]-\x1b[2J"
    code, out, err = run("scan", "--log-dir", str(logs), "--store", str(store))
    assert code == 0, err

    code, out, err = run("apps", "--store", str(store))
    assert code == 0, err
    assert "\x1b" not in out and "store-[/oops]-\\x1b[2J" in out.replace("\n", "")

    code, out, err = run("status", "--store", str(store))
    assert code == 0, out + err
    assert "\x1b" not in out and "store-[/oops]-\\x1b[2J" in out


def test_scan_names_a_hostile_file_visibly(tmp_path: Path) -> None:
    logs = write_logs(tmp_path / "logs", ["benign"])
    (logs / "garbage-\x1b]0;owned\x07-[bold red].zstd").write_bytes(b"\x00not zstd at all" * 50)
    code, out, err = run("scan", "--log-dir", str(logs), "--store", str(tmp_path / "store"))
    assert code == 0, err
    assert "skipped" in out and "garbage-\\x1b]0;owned\\x07-[bold red].zstd" in out
    assert "\x1b" not in out + err and "\x07" not in out + err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(app: Starlette) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", log_config=None,
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


ESC = "\x1b]52;c;aGk=\x07\x1b[2J"
HOSTILE_HEALTH = {
    "status": "degraded", "offline": True,
    "reasons": [f"[/oops] {ESC} <b>", "[bold red]loud"],
    "role": f"writer[/x]{ESC}", "pid": 7, "uptimeSeconds": "[/oops]", "takeovers": "x", "recoverySeconds": None,
    "store": {"path": f"/store/[/oops]{ESC}", "logs": "[/oops]", "applications": {"completed": "[b]", "running": 1},
              "diskBytes": 10, "filesystemUsageRatio": "[/oops]", "filesystemFreeBytes": 5,
              "corruptions": {"[/oops]": ESC}, "quarantinedFiles": ESC, "rebuilding": ["a"]},
    "scan": {"lastScan": ESC, "lastDurationSeconds": "[/oops]", "lastSuccess": "[/oops]", "lagSeconds": "?"},
    "memory": {"cacheBytes": 1, "cacheBudgetBytes": 2, "cachedApplications": ESC, "rssBytes": 3},
    "sources": [{"logDirectory": f"/logs/[/oops]{ESC}", "state": "[/oops]", "since": ESC, "breaker": "[bold]",
                 "lastError": f"no such directory: /logs/[/oops]{ESC}"}],
}


def test_status_of_a_hostile_server(tmp_path: Path) -> None:
    """``--url`` trusts the server no more than a log: its strings are printed as text."""

    def health(request: Request) -> JSONResponse:
        return JSONResponse(HOSTILE_HEALTH)

    with serving(Starlette(routes=[Route("/health/details", health)])) as url:
        code, out, err = run("status", "--url", url, "--store", str(tmp_path / "s"))
    assert code == 1, out + err
    assert "Traceback" not in err
    assert "\x1b" not in out and "\x07" not in out
    flat = re.sub(r"[\s│┃]", "", out)
    assert "DEGRADED(OFFLINE" in flat
    assert "[/oops]\\x1b]52;c;aGk=\\x07\\x1b[2J<b>" in flat and "[boldred]loud" in flat
    assert "writer[/x]\\x1b]52;c;aGk=\\x07\\x1b[2J" in flat
    assert "/store/[/oops]\\x1b]52;c;aGk=\\x07\\x1b[2J" in flat
    assert "nosuchdirectory:/logs/[/oops]" in flat and "[bold]" in flat
