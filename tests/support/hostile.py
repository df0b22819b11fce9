"""Real event logs whose strings were written by an attacker.

A real Spark 4.0.1 log from the conformance data, rewritten line by line: the app id and
name, the user, every host, every job description and some Spark property values become a
hostile string (markup, attribute breakers, ``javascript:`` URLs, terminal escape
sequences, rich markup). Everything else stays as Spark wrote it, so the logs index like
any other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from support.conformance import SPARK401

#: A real, small, uncompressed, finished Spark 4.0.1 log.
SOURCE_LOG = SPARK401 / "eventlogs" / "local-1795972896863"

HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'",
    "javascript:alert(1)",
    # Colours, an OSC 52 clipboard write, clear screen, a bell, a C1 CSI and a bidi override.
    "\x1b[31mred\x1b[0m\x1b]52;c;aGk=\x07\x1b[2J\x9b1m\u202eevil",
    "[/oops]",
    "[bold red]",
    "a&amp;b<!-- x -->",
]


def app_id(i: int, value: str) -> str:
    return f"app-{i}-{value}"


def _rewrite(event: dict[str, Any], i: int, value: str) -> dict[str, Any]:
    kind = event["Event"]
    if kind == "SparkListenerApplicationStart":
        event.update({"App ID": app_id(i, value), "App Name": value, "User": value})
    elif kind == "SparkListenerEnvironmentUpdate":
        props = event["Spark Properties"]
        props.update({"spark.app.name": value, "spark.app.id": app_id(i, value), "spark.driver.host": value,
                      "spark.hostile.value": value})
    elif kind == "SparkListenerExecutorAdded":
        event["Executor Info"]["Host"] = value
    elif kind == "SparkListenerBlockManagerAdded":
        event["Block Manager ID"]["Host"] = value
    elif kind in ("SparkListenerTaskStart", "SparkListenerTaskEnd"):
        event["Task Info"]["Host"] = value
    elif kind == "SparkListenerJobStart":
        event.setdefault("Properties", {})["spark.job.description"] = value
    return event


def write_logs(directory: Path, values: list[str]) -> Path:
    """One log per value, named ``hostile-<i>``, into ``directory`` (created)."""
    directory.mkdir(parents=True)
    lines = SOURCE_LOG.read_text().splitlines()
    for i, value in enumerate(values):
        events = [_rewrite(json.loads(line), i, value) for line in lines if line.strip()]
        (directory / f"hostile-{i}").write_text("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events))
    return directory
