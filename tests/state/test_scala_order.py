"""``state/scala_order.py`` against real Scala: the iteration orders the SHS shows.

``scala_order_probe/ScalaOrderProbe.java`` is compiled with javac against the jars pyspark
ships (Scala 2.13's library, jackson-module-scala, spark-core) and builds each collection as
Spark does: an execution's ``jobs`` map grown by ``+`` then updated by job ends, its
``stages`` set grown by ``++= stageIds.toSet``, ``modifiedConfigs`` read by Jackson. Its
answers are compared with the module's for sizes 1-64 and several kinds of keys.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from sparkhist.state.scala_order import improve, int_order, string_hash, string_order
from support.java_probe import compiled_probe

PROBE = Path(__file__).with_name("scala_order_probe") / "ScalaOrderProbe.java"
SIZES = range(1, 65)


@pytest.fixture(scope="session")
def probe(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The java command line running the compiled probe."""
    return compiled_probe(PROBE, tmp_path_factory.mktemp("scala-order-probe"))


def ask(probe: list[str], lines: list[str]) -> list[list[object]]:
    """One probe run for many questions (a JVM start per question would take minutes)."""
    done = subprocess.run(probe, input="".join(line + "\n" for line in lines), capture_output=True, text=True,
                          check=True, timeout=120)
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(answers) == len(lines)
    return answers


def _int_cases() -> list[list[int]]:
    rng = random.Random(13)
    cases: list[list[int]] = []
    for n in SIZES:
        cases.append(list(range(n)))  # job ids as one execution's jobs usually are
        cases.append(list(range(100, 100 + n)))  # later in a long app
        cases.append(rng.sample(range(5000), n))  # sparse, in no order
        cases.append(rng.sample(range(-2**31, 2**31), n))  # the whole Int range, negatives too
        cases.append([2**31 - 1 - i for i in range(n)])  # the largest ids, descending
    return cases


def _config_names(n: int, rng: random.Random) -> list[str]:
    words = ["spark", "sql", "shuffle", "partitions", "adaptive", "enabled", "autoBroadcastJoinThreshold",
             "ansi", "codegen", "wholeStage", "files", "maxPartitionBytes", "session", "timeZone", "é", "日本"]
    names: set[str] = set()
    while len(names) < n:
        names.add(".".join(rng.choice(words) for _ in range(rng.randint(2, 5))))
    return rng.sample(sorted(names), n)


def test_int_keys_as_spark_builds_jobs(probe: list[str]) -> None:
    cases = _int_cases()
    answers = ask(probe, ["jobs " + " ".join(map(str, ids)) for ids in cases])
    for ids, expected in zip(cases, answers, strict=True):
        assert int_order(ids) == expected, ids
    # a size above four is in hash order, not insertion order (the probe would not notice otherwise)
    assert int_order(range(6)) != list(range(6))


def test_int_sets_as_spark_grows_stages(probe: list[str]) -> None:
    rng = random.Random(31)
    cases: list[list[list[int]]] = []
    for n in SIZES:
        stages = list(range(n))
        cases.append([stages])  # one job with all the stages
        cuts = sorted(rng.sample(range(1, n), min(n - 1, rng.randint(0, 6)))) if n > 1 else []
        groups = [stages[a:b] for a, b in zip([0, *cuts], [*cuts, n], strict=True)]
        # later jobs list earlier stages again (skipped stages), in any order
        cases.append([rng.sample(g + stages[: g[0]][-2:], len(g) + len(stages[: g[0]][-2:])) for g in groups])
    answers = ask(probe, ["stages " + ";".join(",".join(map(str, g)) for g in groups) for groups in cases])
    for groups, expected in zip(cases, answers, strict=True):
        # Set ++ Set: each job's stage ids as a set of their own (toSet), then added
        inserted = [sid for g in groups for sid in int_order(g)]
        assert int_order(inserted) == expected, groups


def test_string_keys_as_jackson_reads_modified_configs(probe: list[str]) -> None:
    rng = random.Random(57)
    cases = [_config_names(n, rng) for n in SIZES for _ in range(3)]
    # String.hashCode collisions ("Aa" and "BB" hash alike): a collision node keeps insertion order
    colliding = ["spark.x" + a + b for a in ("Aa", "BB") for b in ("Aa", "BB")]
    assert len({string_hash(k) for k in colliding}) == 1
    cases += [colliding + ["spark.a", "spark.b"], ["spark.b", *reversed(colliding), "spark.a"],
              ["q" + a + b + c for a in ("Aa", "BB") for b in ("Aa", "BB") for c in ("Aa", "BB")] + ["z"]]
    answers = ask(probe, ["configs " + json.dumps({k: "v" for k in keys}) for keys in cases])
    for keys, expected in zip(cases, answers, strict=True):
        assert string_order(keys) == expected, keys


def test_hashes_match_the_jvm_on_known_values() -> None:
    # String.hashCode values the JVM documents by definition: s[0]*31^(n-1) + ... ("" is 0)
    assert string_hash("") == 0
    assert string_hash("a") == 97
    assert string_hash("Aa") == string_hash("BB") == 2112
    assert string_hash("日") == 0x65E5
    assert -(2**31) <= string_hash("spark.sql.shuffle.partitions" * 9) < 2**31
    assert 0 <= improve(-1) < 2**32
