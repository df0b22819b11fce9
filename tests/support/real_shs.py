"""Run Apache Spark's own History Server (from the pyspark install: 4.0.1 or 4.3.0) for tests.

Why: the stock SHS is the reference this project must match. Running it over the
same logs as sparkhist lets tests compare answers live instead of trusting only
the recorded conformance files.

The JVM is started directly (no ``spark-class``/launcher round trip): the
command line is the one Spark's launcher builds for
``org.apache.spark.deploy.history.HistoryServer``, including the Java 17 module
options from ``org.apache.spark.launcher.JavaModuleOptions`` of the installed
Spark's launcher (:data:`JAVA_MODULE_OPTIONS` holds them per version).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import importlib.metadata
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from support.corpus import spark_home

_ADD_OPENS = tuple(
    f"--add-opens={package}=ALL-UNNAMED"
    for package in (
        "java.base/java.lang", "java.base/java.lang.invoke", "java.base/java.lang.reflect", "java.base/java.io",
        "java.base/java.net", "java.base/java.nio", "java.base/java.util", "java.base/java.util.concurrent",
        "java.base/java.util.concurrent.atomic", "java.base/jdk.internal.ref", "java.base/sun.nio.ch",
        "java.base/sun.nio.cs", "java.base/sun.security.action", "java.base/sun.util.calendar",
        "java.security.jgss/sun.security.krb5",
    )
)
#: The JVM options spark-launcher adds for HistoryServer (``JavaModuleOptions``), by Spark
#: ``major.minor``; printed by ``SPARK_SCALA_VERSION=2.13 java -cp 'jars/*'
#: org.apache.spark.launcher.Main org.apache.spark.deploy.history.HistoryServer``.
#: Java 17 accepts 4.3's Java 24 flags under ``-XX:+IgnoreUnrecognizedVMOptions``.
JAVA_MODULE_OPTIONS: dict[str, tuple[str, ...]] = {
    "4.0": (
        "-XX:+IgnoreUnrecognizedVMOptions", "--add-modules=jdk.incubator.vector", *_ADD_OPENS,
        "-Djdk.reflect.useDirectMethodHandle=false", "-Dio.netty.tryReflectionSetAccessible=true",
    ),
    "4.3": (
        "-XX:+IgnoreUnrecognizedVMOptions", "--add-modules=jdk.incubator.vector", *_ADD_OPENS,
        "-Dio.netty.tryReflectionSetAccessible=true", "-Dio.netty.allocator.type=pooled",
        "-Dio.netty.handler.ssl.defaultEndpointVerificationAlgorithm=NONE",
        "--sun-misc-unsafe-memory-access=allow", "--enable-native-access=ALL-UNNAMED",
    ),
}
MAIN_CLASS = "org.apache.spark.deploy.history.HistoryServer"
#: Logged by Utils.startServiceOnPort once Jetty is bound; the only way to learn port 0's pick.
_BOUND = re.compile(rb"Successfully started service 'HistoryServerUI' on port (\d+)")
STARTUP_TIMEOUT_S = 120.0


@dataclass
class RealShs:
    """A running stock SHS. ``get`` paths are relative to ``/api/v1``."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_file: Path
    #: Seconds from spawning the JVM until ``/api/v1/version`` answered.
    startup_s: float
    client: httpx.Client = field(repr=False)

    def get(self, path: str, *, follow_redirects: bool = False, **kwargs: Any) -> httpx.Response:
        """GET ``/api/v1/<path>``; ``path`` may carry a query string."""
        url = f"{self.base_url}/api/v1/{path.lstrip('/')}"
        return self.client.get(url, follow_redirects=follow_redirects, **kwargs)

    def wait_until_listed(self, n_apps: int, timeout: float = 120.0) -> list[dict[str, Any]]:
        """Poll ``/applications`` until at least ``n_apps`` are listed; return the listing.

        The SHS lists in the background (every ``spark.history.fs.update.interval``),
        so a fresh server answers ``[ ]`` at first.
        """
        deadline = time.monotonic() + timeout
        apps: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            self._check_alive()
            apps = self.get("applications").json()
            if len(apps) >= n_apps:
                return apps
            time.sleep(0.25)
        raise TimeoutError(f"SHS listed {len(apps)} of {n_apps} apps after {timeout}s\n{self.log_tail()}")

    def log_tail(self) -> str:
        """The end of the JVM's log, for failure messages."""
        return _tail(self.log_file)

    def _check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"SHS exited with {self.process.returncode}\n{self.log_tail()}")


def java_executable() -> str:
    """``$JAVA_HOME/bin/java`` if set (as spark-class does), else ``java`` on PATH."""
    if java_home := os.environ.get("JAVA_HOME"):
        return str(Path(java_home) / "bin" / "java")
    if java := shutil.which("java"):
        return java
    raise RuntimeError("no java: set JAVA_HOME or put java on PATH")


def shs_command(
    log_dir: Path, port: int, store_path: Path | None, extra_conf: dict[str, str], fast_start: bool = True,
    home: Path | None = None, extra_classpath: tuple[Path, ...] = (),
) -> list[str]:
    """The JVM command line, as Spark's launcher would build it (plus our conf as -D).

    ``home``: another pyspark install's package directory (e.g. 4.3.0's, in another venv);
    ``extra_classpath``: directories or jars appended (a servlet filter compiled by a test).
    """
    version = home_version(home) if home is not None else None
    home = home or spark_home()
    jars = home / "jars"
    slf4j = sorted(jars.glob("slf4j-api-*.jar"))  # the launcher puts it first on the classpath
    classpath = ":".join([*map(str, slf4j), f"{jars}/*", *map(str, extra_classpath)])
    conf = {
        "spark.history.fs.logDirectory": f"file:{log_dir.resolve()}",
        "spark.history.ui.port": str(port),
        "spark.history.fs.update.interval": "1s",
    }
    if port:  # fail rather than silently bind port+1 when the requested port is taken
        conf["spark.port.maxRetries"] = "0"
    if store_path is not None:
        conf["spark.history.store.path"] = str(store_path)
    conf.update(extra_conf)
    props = [f"-D{key}={value}" for key, value in conf.items()]
    jit = ["-XX:TieredStopAtLevel=1"] if fast_start else []
    return [java_executable(), "-cp", classpath, "-Xmx1g", *jit, *module_options(version), *props, MAIN_CLASS]


def home_version(home: Path) -> str:
    """The Spark version of a pyspark package directory (its ``version.py``)."""
    match = re.search(r"""__version__(?::\s*str)?\s*=\s*['"]([^'"]+)['"]""", (home / "version.py").read_text())
    if match is None:
        raise RuntimeError(f"no version in {home / 'version.py'}")
    return match[1]


def spark_version() -> str:
    """The installed pyspark's version, i.e. the version of the SHS its jars run."""
    return importlib.metadata.version("pyspark")


def module_options(version: str | None = None) -> tuple[str, ...]:
    """The launcher's JVM options for the installed Spark (or ``version``); an unknown
    release fails loudly rather than start a JVM that may die on a missing --add-opens."""
    version = version or spark_version()
    release = ".".join(version.split(".")[:2])
    if release not in JAVA_MODULE_OPTIONS:
        raise RuntimeError(f"no launcher options known for Spark {version}: add them to JAVA_MODULE_OPTIONS")
    return JAVA_MODULE_OPTIONS[release]


@contextlib.contextmanager
def run_real_shs(
    log_dir: Path,
    *,
    port: int | None = None,
    store_path: Path | None = None,
    extra_conf: dict[str, str] | None = None,
    fast_start: bool = True,
    home: Path | None = None,
    extra_classpath: tuple[Path, ...] = (),
) -> Iterator[RealShs]:
    """Start the stock SHS on 127.0.0.1 over ``log_dir``; stop it (for sure) on exit.

    ``port=None`` lets Jetty pick a free port (no probe-then-bind race); the chosen
    one is read from the log. Output goes to a log file, never to the test's stdout.
    ``fast_start`` runs the JVM with the C1 JIT only: ~3 s quicker to answer, but
    slower on big logs, so pass False when timing the SHS against sparkhist.
    """
    workdir = Path(tempfile.mkdtemp(prefix="sparkhist-real-shs-"))
    log_file = workdir / "history-server.log"
    env = {**os.environ, "SPARK_HOME": str(home or spark_home()), "SPARK_LOCAL_IP": "127.0.0.1"}
    cmd = shs_command(log_dir, port or 0, store_path, extra_conf or {}, fast_start, home, extra_classpath)
    started = time.monotonic()
    with log_file.open("wb") as sink:
        process = subprocess.Popen(
            cmd, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=workdir, start_new_session=True,
        )
    stop = functools.partial(_stop, process)
    atexit.register(stop)  # in case the finally below never runs (e.g. a generator left unclosed)
    client = httpx.Client(timeout=30.0)
    try:
        base_url = _wait_for_api(process, log_file, client)
        shs = RealShs(base_url, process, log_file, time.monotonic() - started, client)
        yield shs
    finally:
        client.close()
        stop()
        atexit.unregister(stop)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_for_api(process: subprocess.Popen[bytes], log_file: Path, client: httpx.Client) -> str:
    """Wait until Jetty is bound and ``/api/v1/version`` answers; return the base URL."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    base_url = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"SHS exited with {process.returncode}:\n{_tail(log_file)}")
        if base_url is None and (match := _BOUND.search(log_file.read_bytes())):
            base_url = f"http://127.0.0.1:{int(match[1])}"
        if base_url is not None:
            with contextlib.suppress(httpx.TransportError):
                if client.get(f"{base_url}/api/v1/version").status_code == 200:
                    return base_url
        time.sleep(0.1)
    raise TimeoutError(f"SHS did not answer within {STARTUP_TIMEOUT_S}s:\n{_tail(log_file)}")


def _stop(process: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM (Spark's shutdown hooks run), then SIGKILL if it lingers; always reap."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tail(log_file: Path, n_bytes: int = 6000) -> str:
    return log_file.read_bytes()[-n_bytes:].decode(errors="replace")
