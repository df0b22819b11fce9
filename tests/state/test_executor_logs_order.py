"""The order of an executor's ``executorLogs`` (and ``attributes``) as the SHS shows it.

``JsonProtocol.mapFromJson`` maps the JSON object's fields into a Scala *mutable* ``HashSet``
of ``(key, value)`` pairs before making the immutable ``Map``, so the order of two log URLs
depends on the URLs themselves (``state/scala_order.map_from_json``). The probe
(``map_from_json_probe/MapFromJsonProbe.java``, compiled against the jars pyspark ships) asks
Spark's own ``mapFromJson``; the answers of the real SHS 4.3.0 over whole logs are compared in
``tests/test_spark_history_cli.py`` (Apache's YARN and standalone logs) and the differential tests.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import orjson
import pytest

from sparkhist.state.scala_order import map_from_json, string_pair_hash
from support.java_probe import compiled_probe

from .test_conformance_app_endpoints import APACHE, build_state

PROBE = Path(__file__).with_name("map_from_json_probe") / "MapFromJsonProbe.java"
#: Apache's logs whose executors are added with log URLs (standalone and YARN).
LOGS_WITH_URLS = ("app-20161115172038-0000", "app-20161116163331-0000", "application_1553914137147_0018",
                  "application_1555004656427_0144", "application_1578436911597_0052")


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The java command line running the compiled probe."""
    return compiled_probe(PROBE, tmp_path_factory.mktemp("map-from-json-probe"))


def ask(probe: list[str], objects: list[dict[str, str]]) -> list[list[str]]:
    """Spark's key order of each object (one JVM for all of them)."""
    lines = "".join(json.dumps(o) + "\n" for o in objects)
    done = subprocess.run(probe, input=lines, capture_output=True, text=True, check=True, timeout=120)
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(answers) == len(objects)
    return answers


def _executor_logs(log: Path) -> list[dict[str, str]]:
    """Each executor's ``Log Urls`` as the log lists them."""
    with log.open("rb") as f:
        events = [orjson.loads(line) for line in f if b"SparkListenerExecutorAdded" in line]
    return [e["Executor Info"]["Log Urls"] for e in events if e["Event"] == "SparkListenerExecutorAdded"]


def test_the_pair_hash_is_scalas() -> None:
    # (key, value).## printed by Scala 2.13 for two of Apache's executors' log URLs
    url = "http://172.22.0.111:{}/logPage/?appId=app-20161115172038-0000&executorId={}&logType={}"
    assert string_pair_hash("stdout", url.format(64519, 2, "stdout")) == -365113804
    assert string_pair_hash("stderr", url.format(64519, 2, "stderr")) == -1605039662
    assert string_pair_hash("stdout", url.format(64517, 0, "stdout")) == 1053151198


@pytest.mark.skipif(not APACHE.is_dir(), reason="conformance data not present")
def test_apache_executors_logs_in_sparks_order(probe: list[str]) -> None:
    """Every executor of Apache's logs with log URLs: the state's order is Spark's, and it is
    not simply the log's (stdout first everywhere) for some of them."""
    logs = [APACHE / "spark-events" / name for name in LOGS_WITH_URLS]
    urls = [u for log in logs for u in _executor_logs(log)]
    expected = ask(probe, urls)
    assert any(order[0] == "stderr" for order in expected) and any(order[0] == "stdout" for order in expected)
    assert all(next(iter(u)) == "stdout" for u in urls)  # the log's own order never shows stderr first
    got: list[list[str]] = []
    for log in logs:
        state = build_state([log])
        got.extend(list(ex.executor_logs) for ex in state.executors.values() if ex.executor_logs
                   and ex.executor_id != "driver")
    assert sorted(map(tuple, got)) == sorted(map(tuple, expected))
    # executor by executor in app-20161115172038-0000, as the real SHS 4.3.0 answers it
    state = build_state([logs[0]])
    first = {ex.executor_id: next(iter(ex.executor_logs)) for ex in state.executors.values() if ex.executor_logs}
    assert first == {"0": "stdout", "1": "stderr", "2": "stderr", "3": "stderr"}


def _random_object(rng: random.Random, size: int) -> dict[str, str]:
    keys = ["stdout", "stderr", "gc", "container", "host", "port", "NM_HOST", "USER", "é", "日本", ""]
    chosen = rng.sample(keys, size) if size <= len(keys) else [f"k{i}" for i in range(size)]
    return {k: f"http://host-{rng.randint(0, 999)}:{rng.randint(1, 65535)}/{k}?e={rng.randint(0, 99)}" for k in chosen}


def test_random_maps_in_sparks_order(probe: list[str]) -> None:
    """Sizes 1-12 (the immutable map keeps the pairs' hash order up to four entries, its own
    key order from five), keys of every kind, values that tell the pairs apart."""
    rng = random.Random(13)
    objects = [_random_object(rng, size) for size in range(1, 13) for _ in range(40)]
    answers = ask(probe, objects)
    for obj, expected in zip(objects, answers, strict=True):
        assert list(map_from_json(obj)) == expected, obj
    assert any(list(map_from_json(o)) != list(o) for o in objects if len(o) == 2)  # not the log's order


def test_a_map_of_other_values_keeps_its_order() -> None:
    odd: dict[str, object] = {"stdout": 1, "stderr": None}
    assert list(map_from_json(odd)) == ["stdout", "stderr"]  # type: ignore[arg-type]
