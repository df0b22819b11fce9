"""Kerberos against a real KDC: MiniKdc + a Kerberized MiniDFSCluster (``kdc/SecureHarness.java``).

One NameNode, one DataNode, Kerberos RPC authentication and SASL-protected data
transfer (``dfs.data.transfer.protection=authentication``). The source logs in with a
principal and keytab (``spark.history.kerberos.*`` / ``SPARKHIST_KERBEROS_*``); without
credentials the call fails at once with a permanent error (not retried, no breaker trip).
Not covered here: HA + Kerberos together, the ticket cache (no ``kinit`` on the test
machine), WebHDFS with SPNEGO (not supported by the WebHDFS client).
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkhist.errors import SourceError, SourceUnavailable
from sparkhist.source.factory import SourceOptions, open_source

from .cluster import JVM_OPTS
from .conftest import Timings

pytestmark = pytest.mark.slow

KDC_DIR = Path(__file__).resolve().parent / "kdc"
TARGET = KDC_DIR.parent / "harness" / "target" / "kdc"  # (the pom's build directory: git-ignored)
CLASSPATH = TARGET / "classpath.txt"
MAIN = "SecureHarness"


def build() -> str:
    src = KDC_DIR / "src" / "main" / "java" / f"{MAIN}.java"
    klass = TARGET / "classes" / f"{MAIN}.class"
    pom = KDC_DIR / "pom.xml"
    if shutil.which("java") is None:
        pytest.skip("java is not installed")
    fresh = klass.exists() and CLASSPATH.exists() and min(klass.stat().st_mtime, CLASSPATH.stat().st_mtime) >= max(
        src.stat().st_mtime, pom.stat().st_mtime)
    if not fresh:
        mvn = shutil.which("mvn")
        if mvn is None:
            pytest.skip("mvn is not installed")
        TARGET.mkdir(parents=True, exist_ok=True)
        goals = ["compile", "dependency:build-classpath", f"-Dmdep.outputFile={CLASSPATH}"]
        with open(TARGET / "build.log", "a") as log:
            for extra in (["-o"], []):  # offline first: a warm ~/.m2 needs no network
                rc = subprocess.run([mvn, "-B", "-q", *extra, *goals], cwd=KDC_DIR, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, timeout=900).returncode
                if rc == 0:
                    break
            else:
                pytest.skip(f"cannot build the Kerberos harness (hadoop-minikdc 3.5.0); see {TARGET / 'build.log'}")
    return str(TARGET / "classes") + os.pathsep + CLASSPATH.read_text().strip()


@pytest.fixture(scope="module")
def secure_hdfs(tmp_path_factory: pytest.TempPathFactory, timings: Timings) -> Iterator[dict[str, str]]:
    t0 = time.monotonic()
    classpath = build()
    work = tmp_path_factory.mktemp("kerberos")
    with open(work / "harness.log", "w") as err:  # the JVM keeps its own copy
        proc = subprocess.Popen(["java", *JVM_OPTS, "-cp", classpath, MAIN, str(work)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1)
    lines: queue.Queue[str] = queue.Queue()

    def read_stdout() -> None:
        with proc.stdout:  # type: ignore[union-attr]  # the reader closes the pipe at its end
            for line in proc.stdout:  # type: ignore[union-attr]
                lines.put(line)

    reader = threading.Thread(target=read_stdout, name="kerberos-harness-stdout", daemon=True)
    reader.start()
    try:
        try:
            line = lines.get(timeout=float(os.environ.get("SPARKHIST_HDFS_START_TIMEOUT", "240")))
        except queue.Empty:
            pytest.fail(f"the Kerberos harness did not start; see {work / 'harness.log'}")
        if not line.startswith("READY "):
            pytest.fail(f"the Kerberos harness failed: {line.strip()}; see {work / 'harness.log'}")
        info = dict(kv.split("=", 1) for kv in line.split()[1:])
        timings.record("kerberos cluster start", seconds=time.monotonic() - t0)
        yield info
    finally:
        try:
            try:
                proc.stdin.write("\n")  # type: ignore[union-attr]
            finally:
                proc.stdin.close()  # type: ignore[union-attr]  # closed even when the flush fails
            proc.wait(30)
        except Exception:  # noqa: BLE001 - kill below
            proc.kill()
            proc.wait(10)
        reader.join(30)  # it ends at the pipe's EOF, once the JVM is gone


def test_keytab_login_lists_and_reads(secure_hdfs: dict[str, str], timings: Timings, monkeypatch: pytest.MonkeyPatch,
                                      tmp_path: Path) -> None:
    monkeypatch.setenv("KRB5_CONFIG", secure_hdfs["krb5"])
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'no-ticket-cache'}")  # only the keytab can work
    url = f"hdfs://{secure_hdfs['nn']}/spark-events"
    options = SourceOptions(hadoop_conf_dir=secure_hdfs["conf"], kerberos_principal=secure_hdfs["principal"],
                            kerberos_keytab=secure_hdfs["keytab"])
    src = open_source(url, options)
    try:
        t0 = time.monotonic()
        entries = src.list(src.root_path)
        login_and_list = time.monotonic() - t0
        assert [(e.name, e.size) for e in entries] == [("app-1", int(secure_hdfs["size"]))]
        t0 = time.monotonic()
        with src.open(entries[0].path) as stream:
            data = stream.read()
        read = time.monotonic() - t0
        assert len(data) == int(secure_hdfs["size"]) and data.startswith(b'{"Event":"Test","n":0}\n')
        assert data.endswith(b'{"Event":"Test","n":29999}\n')
    finally:
        src.close()

    # No credentials: a permanent error, at once; not retried, no breaker trip.
    plain = open_source(url, SourceOptions(hadoop_conf_dir=secure_hdfs["conf"]))
    try:
        t0 = time.monotonic()
        with pytest.raises(SourceError) as failed:
            plain.list(plain.root_path)
        refused = time.monotonic() - t0
        assert not isinstance(failed.value, SourceUnavailable), failed.value
        assert "GSS" in str(failed.value) or "credentials" in str(failed.value).lower()
        assert plain.guard.calls["list"] == 1 and plain.guard.breaker.state == "closed"
    finally:
        plain.close()
    timings.record("kerberos keytab", login_and_list=login_and_list, read_800kB=read, no_credentials=refused)
