"""A snapshot's bytes are a function of its log, whichever process builds it.

``index-on-spark`` relies on it (a retried or speculative task rewrites the same object), and
so does anyone comparing stores. Python randomises the hash of strings per process
(``PYTHONHASHSEED``), and a plain ``set`` of strings pickles in hash order: the sets of
executor ids in a state are :class:`~sparkhist.state.entities.IdSet`, which pickles sorted.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

from sparkhist.state.entities import IdSet
from support.ui_corpus import gather_logs

SPARKHIST = Path(sys.executable).with_name("sparkhist")


def _scan(logs: Path, store: Path, seed: str) -> dict[str, bytes]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run([str(SPARKHIST), "scan", "--log-dir", str(logs), "--store", str(store)],
                          capture_output=True, text=True, timeout=300, env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    return {p.name: p.read_bytes() for p in (store / "snapshots").iterdir()}


def test_the_same_logs_give_the_same_snapshot_bytes_under_other_hash_seeds(tmp_path: Path) -> None:
    logs = gather_logs(tmp_path / "logs")  # conformance logs and samples: excluded and lost executors among them
    first, second = _scan(logs, tmp_path / "a", "1"), _scan(logs, tmp_path / "b", "2")
    assert len(first) > 25 and first.keys() == second.keys()
    assert [name for name in first if first[name] != second[name]] == []


def test_an_id_set_pickles_sorted_and_loads_as_one() -> None:
    ids = IdSet(["9", "10", "driver", "1"])
    loaded = pickle.loads(pickle.dumps(ids))
    assert type(loaded) is IdSet and loaded == ids
    assert pickle.dumps(IdSet(["b", "a"])) == pickle.dumps(IdSet(["a", "b"]))
    assert pickle.dumps(ids).index(b"driver") > pickle.dumps(ids).index(b"9")  # "1" < "10" < "9" < "driver"
