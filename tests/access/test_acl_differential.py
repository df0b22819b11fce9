"""ACLs against the real SHS: same status for every (user, endpoint) pair.

Both servers read the same logs (:mod:`support.acl_corpus`: several owners, view and
admin ACLs and groups, a two-attempt application) with the same history ACL settings,
and look groups up with ``id -Gn`` in the same ``shx_`` accounts, created for the session
(``acl_accounts``).
The SHS trusts a header for the user through a servlet filter compiled here
(``spark.ui.filters``); sparkhist is started as an operator would start it
(``sparkhist serve --properties-file`` holding the same ``spark.history.ui.*`` lines,
``SPARKHIST_AUTH=header``). Every pair is asked of both, redirects followed as a
browser follows them; statuses must agree, and each 403 must have the same content
type and body. The reference is pyspark 4.3.0's SHS when a 4.3.0 install is found
(``SPARKHIST_SHS43_HOME``, or ``/work/venv43``), else the dev venv's 4.0.1 (same statuses
for every pair, checked: UI 403 pages differ only in Jetty's layout).

The agreement table is written to ``$SPARKHIST_ACL_TABLE`` when that is set.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.acl_corpus import (
    DIVERGENT,
    DO_AS,
    HISTORY_CONF,
    USER_HEADER,
    USERS,
    compile_header_filter,
    endpoints,
    write_logs,
)
from support.corpus import spark_home
from support.real_shs import RealShs, home_version, run_real_shs

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def reference_home() -> Path:
    for candidate in (os.environ.get("SPARKHIST_SHS43_HOME"), "/work/venv43/lib/python3.11/site-packages/pyspark"):
        if candidate and (Path(candidate) / "jars").is_dir():
            return Path(candidate)
    return spark_home()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, acl_accounts: object) -> Iterator[tuple[RealShs, str, str]]:
    base = tmp_path_factory.mktemp("acl-diff")
    logs = write_logs(base / "logs")
    home = reference_home()
    classes = compile_header_filter(base / "filter", home)
    conf = {**HISTORY_CONF, "spark.ui.filters": "HeaderUserFilter"}
    props = base / "spark-defaults.conf"  # what sparkhist reads: the SHS's lines, less the Java filter
    props.write_text("".join(f"{k} {v}\n" for k, v in HISTORY_CONF.items()))
    port = _free_port()
    env = {**os.environ, "SPARKHIST_AUTH": "header", "SPARKHIST_AUTH_HEADER": USER_HEADER,
           "SPARKHIST_INDEX_WORKERS": "1"}
    with (base / "sparkhist.log").open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "sparkhist.cli", "serve", "--log-dir", str(logs), "--store",
                                 str(base / "store"), "--port", str(port), "--properties-file", str(props)],
                                env=env, stdout=subprocess.DEVNULL, stderr=sink)
    ours = f"http://127.0.0.1:{port}"
    try:
        with run_real_shs(logs, extra_conf=conf, home=home, extra_classpath=(classes,)) as shs:
            theirs_list = _wait_listed(lambda: shs.client.get(f"{shs.base_url}/api/v1/applications",
                                                              headers={USER_HEADER: "shx_hadmin"}), 9)
            ours_list = _wait_listed(lambda: httpx.get(f"{ours}/api/v1/applications", headers={USER_HEADER: "shx_hadmin"}), 9)
            assert {a["id"] for a in theirs_list} == {a["id"] for a in ours_list}
            yield shs, ours, home_version(home)
    except BaseException:
        print((base / "sparkhist.log").read_text()[-3000:])
        raise
    finally:
        proc.terminate()
        proc.wait(20)


def _wait_listed(get: object, n: int, timeout: float = 120.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = get()  # type: ignore[operator]
            if answer.status_code == 200 and len(answer.json()) >= n:
                return answer.json()  # type: ignore[no-any-return]
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "not listed in time"
        time.sleep(0.5)


def _ask(client: httpx.Client, base: str, user: str, path: str) -> tuple[int, str, str]:
    r = client.get(base + path, headers={USER_HEADER: user}, follow_redirects=True)
    body = r.text.replace(base, "BASE") if r.status_code == 403 else ""
    return r.status_code, r.headers.get("content-type", ""), body


def test_same_status_for_every_user_and_endpoint(servers: tuple[RealShs, str, str]) -> None:
    shs, ours, version = servers
    # Bodies are compared with 4.3's Jetty 12 pages; 4.0's Jetty writes the servlet's instance
    # hash into its page (and the path without the query), so with it only statuses and types.
    same_pages = tuple(int(p) for p in version.split(".")[:2]) >= (4, 3)
    pairs = [(u, p) for p in endpoints() for u in USERS] + list(DO_AS)
    rows: list[tuple[str, str, int, int, str]] = []
    mismatches = []
    with httpx.Client(timeout=60) as theirs_client, httpx.Client(timeout=60) as ours_client:
        for user, path in pairs:
            theirs = _ask(theirs_client, shs.base_url, user, path)
            mine = _ask(ours_client, ours, user, path)
            expected = DIVERGENT.get((user, path))
            if expected is not None:
                verdict = "deliberate" if (theirs[0], mine[0]) == expected else "MISMATCH"
            elif theirs[0] != mine[0]:
                verdict = "MISMATCH"
            elif theirs[0] == 403 and theirs[1] != mine[1]:
                verdict = "MISMATCH (403 content type)"
            elif theirs[0] == 403 and same_pages and theirs[2] != mine[2]:
                verdict = "MISMATCH (403 body)"
            else:
                verdict = "same"
            if verdict.startswith("MISMATCH"):
                mismatches.append((user, path, verdict, theirs[:2], mine[:2], theirs[2][:300], mine[2][:300]))
            rows.append((user, path, theirs[0], mine[0], verdict))
    table = _table(rows, version)
    if out := os.environ.get("SPARKHIST_ACL_TABLE"):
        Path(out).write_text(table)
    assert not mismatches, "\n".join(map(repr, mismatches[:20]))
    assert len(rows) > 900


def _table(rows: list[tuple[str, str, int, int, str]], version: str) -> str:
    lines = [f"SHS {version} vs sparkhist: {len(rows)} (user, endpoint) pairs, "
             f"{sum(r[4] == 'same' for r in rows)} same, {sum(r[4] == 'deliberate' for r in rows)} deliberate", "",
             "| endpoint | " + " | ".join(USERS) + " |", "|---|" + "---|" * len(USERS)]
    by_path: dict[str, dict[str, tuple[int, int, str]]] = {}
    for user, path, theirs, mine, verdict in rows:
        by_path.setdefault(path, {})[user] = (theirs, mine, verdict)
    for path, cells in by_path.items():
        row = []
        for user in USERS:
            cell = cells.get(user)
            if cell is None:
                row.append("")
            elif cell[2] == "same":
                row.append(str(cell[0]))
            else:
                row.append(f"{cell[0]}/{cell[1]} ({cell[2]})")
        lines.append(f"| `{path}` | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
