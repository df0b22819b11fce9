"""The shared conformance data: real logs, and real SHS answers to compare sparkhist with.

``../shared/conformance`` sits beside the repository (in every checkout, CI's too): the 4.0.1
logs with the answers recorded from SHS 4.0.1, and Apache's HistoryServerSuite logs with its
golden files. The reference is the real SHS 4.3.0, asked live over the same logs; the recorded
answers are 4.0.1's.
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


def configured(log_dir: Path) -> str:
    """The log directory as ``support.real_shs`` gives it to the real SHS (``file:`` and the resolved
    path); sparkhist is given the same string, so the attempts' ``logSourceFullPath`` and
    ``logSourceName`` (the configured directory as written) can be compared as they are."""
    return f"file:{log_dir.resolve()}"


#: Fields the live comparisons with SHS 4.3.0 leave out of both answers, each with why (issue 13
#: allows at most five, each with its reason): none, every field is compared.
PENDING: dict[str, str] = {}


def without_pending(payload: Any) -> Any:
    """``payload`` without the :data:`PENDING` fields, at any depth."""
    if isinstance(payload, dict):
        return {k: without_pending(v) for k, v in payload.items() if k not in PENDING}
    if isinstance(payload, list):
        return [without_pending(v) for v in payload]
    return payload


def live_problem(client: Any, shs: Any, path: str, running: bool) -> str | None:
    """None when sparkhist (``client``, its root) answers ``path`` (under ``/api/v1``) as the real
    SHS (``shs``) does, else what differs, field by field. A running app's request-time durations
    are masked (``support.differential``); the :data:`PENDING` fields are left out of both sides."""
    from support.differential import compare, differences, normalize

    theirs, ours = shs.get(path), client.get("/api/v1" + path)
    problem = compare(ours, theirs, running)
    if problem != "body differs":
        return problem
    mine, real = without_pending(normalize(ours.json(), running)), without_pending(normalize(theirs.json(), running))
    if mine == real:
        return None
    return "; ".join(f"{where}: SHS {a!r:.200} | sparkhist {b!r:.200}" for where, a, b in list(differences(mine, real))[:6])
