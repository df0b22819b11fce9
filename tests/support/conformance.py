"""The shared conformance data: real SHS answers to compare sparkhist with.

``../shared/conformance`` sits beside the repository (in every checkout, CI's too).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CONFORMANCE = REPO.parent / "shared" / "conformance"
SPARK401 = CONFORMANCE / "spark-4.0.1"
APACHE = CONFORMANCE / "apache-spark"


@dataclass(frozen=True)
class RecordedCall:
    path: str  # relative to /api/v1, with its query string
    status: int
    content_type: str
    body_file: Path
    content_disposition: str | None

    def json(self) -> Any:
        return json.loads(self.body_file.read_text())

    def text(self) -> str:
        return self.body_file.read_text()


def _file_stem(path: str, targets: dict[str, str]) -> str:
    stem = path.lstrip("/")
    for prefix, app_id in targets.items():
        stem = re.sub(rf"^applications/{re.escape(app_id)}(?=/|$|\?)", prefix, stem)
    return stem.replace("/", "__").replace("?", "@").replace("&", "+").replace("=", "-").replace(",", "_")


def recorded_calls() -> list[RecordedCall]:
    """Every call recorded from the real SHS 4.0.1 (``responses/_index.json``)."""
    responses = SPARK401 / "responses"
    targets = json.loads((responses / "_targets.json").read_text())
    calls = []
    for item in json.loads((responses / "_index.json").read_text()):
        ctype = item["content_type"]
        ext = ".json" if ctype == "application/json" and item["status"] == 200 else (
            ".zip" if ctype == "application/octet-stream" else ".txt")
        stem = _file_stem(item["path"], targets)
        body = responses / (stem + ext)
        if not body.exists() and ext == ".txt":
            body = responses / (stem + ".json")
        calls.append(RecordedCall(item["path"], item["status"], ctype, body, item["content_disposition"]))
    return calls


def blank_last_updated(payload: Any) -> Any:
    """What Apache's HistoryServerSuite does before comparing: lastUpdated is not reproducible."""
    if isinstance(payload, dict):
        out = {}
        for key, value in payload.items():
            if key == "lastUpdated":
                out[key] = ""
            elif key == "lastUpdatedEpoch":
                out[key] = 0
            else:
                out[key] = blank_last_updated(value)
        return out
    if isinstance(payload, list):
        return [blank_last_updated(v) for v in payload]
    return payload


def apache_cases() -> list[dict[str, Any]]:
    return json.loads((APACHE / "cases.json").read_text())["cases"]
