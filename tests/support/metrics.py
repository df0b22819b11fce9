"""Reading ``/metrics`` in tests: every sample by name and labels, parsed by prometheus_client."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

if TYPE_CHECKING:
    from sparkhist.server import Runtime

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The one sample of ``name`` whose labels include ``labels`` (summed when several match)."""
    matches = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls]
    assert matches, f"no sample {name}{labels}"
    return sum(matches)


def names(samples: Samples) -> set[str]:
    return {n for n, _ in samples}


def seconds_until_recovered(runtime: Runtime, client: TestClient, since: float, limit: float) -> float | None:
    """Scans every 0.25 s until one succeeds and ``/metrics`` shows the source up with its breaker
    closed: the seconds from ``since`` (a monotonic time) to then, or None after ``limit`` seconds."""
    while time.monotonic() - since < limit:
        if runtime.scanner.scan_once().ok:
            samples = scrape(client)
            if value(samples, "sparkhist_source_up") == 1 and value(samples, "sparkhist_source_breaker_state") == 0:
                return time.monotonic() - since
        time.sleep(0.25)
    return None
