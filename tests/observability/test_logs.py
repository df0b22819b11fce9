"""``--log-format json``: one JSON object per line, with the extra fields of state changes."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from sparkhist.observability.logs import JsonFormatter
from support.conformance import SPARK401
from support.server import copy_logs


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("sparkhist.test", logging.WARNING, __file__, 1, "snapshot of %s quarantined", ("x",), None)
    record.__dict__.update(extra)
    return record


def test_json_line_fields() -> None:
    line = JsonFormatter().format(_record(event="quarantine", log_path="/logs/x", odd=Path("/p")))
    assert "\n" not in line
    doc = json.loads(line)
    assert list(doc)[:4] == ["ts", "level", "logger", "message"]
    assert doc["ts"].endswith("Z") and doc["level"] == "WARNING" and doc["logger"] == "sparkhist.test"
    assert doc["message"] == "snapshot of x quarantined"
    assert (doc["event"], doc["log_path"], doc["odd"]) == ("quarantine", "/logs/x", "/p")


def test_json_line_with_a_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("sparkhist.test", logging.ERROR, __file__, 1, "scan failed", (), sys.exc_info())
    doc = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in doc["exc"] and "Traceback" in doc["exc"]


def _scan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sparkhist.cli", "scan", *args], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ))


def test_cli_logs_json_lines_with_events(tmp_path: Path) -> None:
    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    common = ["--log-dir", str(logs), "--store", str(tmp_path / "store"), "--log-format", "json"]
    first = _scan(*common)
    assert first.returncode == 0, first.stderr
    lines = [json.loads(line) for line in first.stderr.splitlines() if line.strip()]
    assert any(d["message"].startswith("scan: 13 logs listed") for d in lines)

    logs.rename(tmp_path / "gone")
    second = _scan(*common)
    assert second.returncode == 1
    docs = [json.loads(line) for line in second.stderr.splitlines() if line.startswith("{")]
    events = {d.get("event") for d in docs}
    assert {"offline_entered", "listing_failed"} <= events
    offline = next(d for d in docs if d.get("event") == "offline_entered")
    assert offline["state"] == "offline" and offline["log_dir"] == f"file:{logs}" and offline["level"] == "WARNING"


def test_plain_is_the_default(tmp_path: Path) -> None:
    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    result = _scan("--log-dir", str(logs), "--store", str(tmp_path / "store"))
    assert result.returncode == 0
    assert " INFO sparkhist.scan: scan: 13 logs listed" in result.stderr
