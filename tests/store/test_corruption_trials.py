"""Failure scenario 6: random damage to any file of a built store.

Each trial copies a store built from real logs, damages one random file (flipped
bytes, truncation, deletion, zeros, garbage), starts sparkhist on it and asks for
every application. Start-up must always succeed, and every answer must be either
identical to the clean store's or an explicit "unavailable" status: never wrong.
``lastUpdated`` is compared blanked: for running apps it is the time of the scan.
"""

from __future__ import annotations

import os
import random
import shutil
from collections import Counter
from pathlib import Path

import orjson
import pytest

from support.conformance import SPARK401, blank_last_updated
from support.server import copy_logs, runtime_for

TRIALS = int(os.environ.get("SPARKHIST_CORRUPTION_TRIALS", "500"))
RESOURCES = ("", "/jobs", "/stages")
WALL_CLOCK = {"totalDuration", "duration"}


def _normal(payload):
    payload = blank_last_updated(payload)
    if isinstance(payload, dict):
        return {k: (0 if k in WALL_CLOCK else _normal(v)) for k, v in payload.items()}
    if isinstance(payload, list):
        return [_normal(v) for v in payload]
    return payload


def _answers(client) -> dict[str, tuple[int, object]]:
    out = {}
    listing = client.get("/api/v1/applications")
    out["applications"] = (listing.status_code, _normal(listing.json()))
    for app in listing.json():
        for resource in RESOURCES:
            url = f"/api/v1/applications/{app['id']}{resource}"
            response = client.get(url)
            body = _normal(orjson.loads(response.content)) if response.status_code == 200 else response.text
            out[url] = (response.status_code, body)
    return out


def _damage(rng: random.Random, path: Path) -> str:
    data = path.read_bytes()
    kind = rng.choice(["flip", "flip", "truncate", "delete", "zeros", "garbage"])
    if kind == "delete" or (not data and kind != "garbage"):
        path.unlink()
        return "delete"
    if kind == "flip":
        blob = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            blob[rng.randrange(len(blob))] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(blob))
    elif kind == "truncate":
        path.write_bytes(data[: rng.randrange(len(data))])
    elif kind == "zeros":
        start = rng.randrange(len(data))
        path.write_bytes(data[:start] + bytes(min(len(data) - start, rng.randint(1, 4096))) + data[start + 4096 :])
    else:
        path.write_bytes(rng.randbytes(max(1, len(data) or 64)))
    return kind


@pytest.mark.slow
def test_random_damage_never_gives_a_wrong_answer(tmp_path: Path) -> None:
    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    clean_store = tmp_path / "clean"
    with runtime_for(logs, clean_store) as (_, client):
        expected = _answers(client)
    files = sorted(p.relative_to(clean_store) for p in clean_store.rglob("*") if p.is_file())
    assert len(files) >= 14  # the catalog, the lock and 13 snapshots

    rng = random.Random(6)
    outcomes: Counter[str] = Counter()
    for trial in range(TRIALS):
        store = tmp_path / f"trial{trial}"
        shutil.copytree(clean_store, store)
        target = rng.choice(files)
        kind = _damage(rng, store / target)
        with runtime_for(logs, store, scan=False) as (runtime, client):
            got = _answers(client)
            unavailable = 0
            for url, (status, body) in expected.items():
                if url not in got:
                    # Missing from the list only while the catalog is being rebuilt.
                    outcomes["absent"] += 1
                    continue
                got_status, got_body = got[url]
                if got_status == 503:
                    unavailable += 1
                    continue
                assert (got_status, got_body) == (status, body), f"trial {trial}: {kind} {target}: {url}"
            # After one scan, everything is back and identical.
            runtime.scanner.scan_once()
            assert _answers(client) == expected, f"trial {trial}: {kind} {target}: not recovered after a scan"
        outcomes["unavailable"] += unavailable
        outcomes[f"{kind}:{'catalog' if 'catalog' in str(target) else target.parts[0]}"] += 1
        shutil.rmtree(store)
    print(f"\n{TRIALS} trials: {dict(sorted(outcomes.items()))}")
