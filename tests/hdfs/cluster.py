"""Python side of the HA HDFS test harness (``harness/``: MiniDFSCluster 3.5.0).

:func:`build_harness` compiles the Maven module once and writes its runtime classpath
to ``harness/target/classpath.txt`` (offline first, so a warm ``~/.m2`` costs no
network; online when something is missing). :class:`HaCluster` starts the JVM,
waits for its ``READY`` line, sends commands (``cluster.cmd("failover 0 1")``) and
always tears the JVM down: on :meth:`HaCluster.stop`, and at interpreter exit.

The protocol (stdin/stdout, one line each way) is documented in ``HaHarness.java``.
"""

from __future__ import annotations

import atexit
import os
import queue
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HARNESS_DIR = Path(__file__).resolve().parent / "harness"
TARGET = HARNESS_DIR / "target"
CLASSPATH_FILE = TARGET / "classpath.txt"
MAIN_CLASS = "HaHarness"
JVM_OPTS = [
    "-Xmx768m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",  # short-lived test JVM: C1 only starts ~2x faster
    "-Djava.security.egd=file:/dev/./urandom",  # Jetty's session ids must not wait on entropy
    "-Djava.net.preferIPv4Stack=true",
]


class HarnessUnavailable(RuntimeError):
    """Java or Maven is missing, or the harness cannot be built: tests skip with this reason."""


class ClusterError(RuntimeError):
    """The harness answered ``ERR`` or stopped answering."""


@dataclass
class BuildInfo:
    classpath: str
    seconds: float
    mode: str  # cached | offline | online


def _newer(target: Path, *sources: Path) -> bool:
    return target.exists() and all(target.stat().st_mtime >= s.stat().st_mtime for s in sources)


def build_harness(log: Path | None = None) -> BuildInfo:
    """Compiles the harness and resolves its classpath, at most once per source change."""
    t0 = time.monotonic()
    java_src = HARNESS_DIR / "src" / "main" / "java" / f"{MAIN_CLASS}.java"
    pom = HARNESS_DIR / "pom.xml"
    klass = TARGET / "classes" / f"{MAIN_CLASS}.class"
    if shutil.which("java") is None:
        raise HarnessUnavailable("java is not installed (needs Java 17)")
    if _newer(klass, java_src, pom) and _newer(CLASSPATH_FILE, pom) and _classpath_present(CLASSPATH_FILE.read_text()):
        return BuildInfo(_full_classpath(), time.monotonic() - t0, "cached")
    mvn = shutil.which("mvn")
    if mvn is None:
        raise HarnessUnavailable("mvn is not installed (needs Maven 3.8+ to build the MiniDFSCluster harness)")
    TARGET.mkdir(exist_ok=True)
    log = log or TARGET / "build.log"
    goals = ["compile", "dependency:build-classpath", f"-Dmdep.outputFile={CLASSPATH_FILE}"]
    errors = []
    modes: list[tuple[str, list[str]]] = [("online", [])]
    if _hadoop_cached():
        modes.insert(0, ("offline", ["-o"]))  # no network for a warm ~/.m2
    for mode, extra in modes:
        cmd = [mvn, "-B", "-q", *extra, *goals]
        with open(log, "a") as out:
            out.write(f"$ {' '.join(cmd)}\n")
            out.flush()
            rc = subprocess.run(cmd, cwd=HARNESS_DIR, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                timeout=900).returncode
        if rc == 0 and CLASSPATH_FILE.exists():
            return BuildInfo(_full_classpath(), time.monotonic() - t0, mode)
        errors.append(f"{mode}: mvn exit {rc}")
    raise HarnessUnavailable(f"cannot build the HDFS harness ({'; '.join(errors)}); see {log}")


def _hadoop_cached() -> bool:
    repo = Path(os.environ.get("SPARKHIST_M2_REPO", Path.home() / ".m2" / "repository"))
    return (repo / "org" / "apache" / "hadoop" / "hadoop-minicluster" / "3.5.0").is_dir()


def _classpath_present(classpath: str) -> bool:
    return all(os.path.exists(p) for p in classpath.strip().split(os.pathsep) if p)


def _full_classpath() -> str:
    return str(TARGET / "classes") + os.pathsep + CLASSPATH_FILE.read_text().strip()


@dataclass
class Ready:
    conf_dir: str
    nn: list[tuple[str, int]]
    http: list[tuple[str, int]]
    nameservice: str
    startup_ms: int
    raw: str = ""


def _addr(value: str) -> tuple[str, int]:
    host, port = value.rsplit(":", 1)
    return host, int(port)


def parse_ready(line: str) -> Ready:
    fields = dict(part.split("=", 1) for part in line.split()[1:])
    return Ready(
        conf_dir=fields["conf"],
        nn=[_addr(fields["nn0"]), _addr(fields["nn1"])],
        http=[_addr(fields["http0"]), _addr(fields["http1"])],
        nameservice=fields.get("ns", "minidfs-ns"),
        startup_ms=int(fields.get("ms", "0")),
        raw=line,
    )


@dataclass
class HaCluster:
    """A running harness JVM. Use as a context manager, or call :meth:`start`/:meth:`stop`."""

    workdir: Path
    datanodes: int = 2
    block_size: int = 1 << 20
    rpc_proxy_ports: list[int] | None = None
    http_proxy_ports: list[int] | None = None
    webhdfs: bool = True  # False: dfs.webhdfs.enabled=false (the HTTP ports answer 404 under /webhdfs/v1)
    ready: Ready | None = None
    start_seconds: float = 0.0
    _proc: subprocess.Popen[str] | None = field(default=None, repr=False)
    _lines: queue.Queue[str | None] = field(default_factory=queue.Queue, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _reader: threading.Thread | None = field(default=None, repr=False)

    def start(self, timeout: float = 180.0) -> Ready:
        build = build_harness()
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [str(self.workdir), f"datanodes={self.datanodes}", f"blocksize={self.block_size}"]
        if self.rpc_proxy_ports:
            args.append("rpcproxy=" + ",".join(map(str, self.rpc_proxy_ports)))
        if self.http_proxy_ports:
            args.append("httpproxy=" + ",".join(map(str, self.http_proxy_ports)))
        if not self.webhdfs:
            args.append("webhdfs=false")
        java = shutil.which("java") or "java"
        stderr = open(self.workdir / "jvm-stderr.log", "ab")
        t0 = time.monotonic()
        self._proc = subprocess.Popen(
            [java, *JVM_OPTS, "-cp", build.classpath, MAIN_CLASS, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            bufsize=1,
            start_new_session=True,  # a Ctrl-C in pytest must not reach the JVM first
        )
        stderr.close()
        atexit.register(self.stop)
        self._reader = threading.Thread(target=self._read_stdout, name="hdfs-harness-stdout", daemon=True)
        self._reader.start()
        try:
            line = self._next_line(timeout)
        except ClusterError:
            self.stop()
            raise
        if not line.startswith("READY "):
            self.stop()
            raise ClusterError(f"harness did not start: {line!r}; see {self.workdir / 'harness.log'}")
        self.start_seconds = time.monotonic() - t0
        self.ready = parse_ready(line)
        return self.ready

    def _read_stdout(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        with proc.stdout:  # the reader owns the pipe: closed at its end, however late that comes
            for line in proc.stdout:
                self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _next_line(self, timeout: float) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise ClusterError(f"no answer from the harness within {timeout:.0f}s") from None
        if line is None:
            code = self._proc.poll() if self._proc else None
            raise ClusterError(f"the harness exited (status {code}); see {self.workdir / 'harness.log'}")
        return line

    def cmd(self, command: str, timeout: float = 90.0) -> str:
        """Sends one command; returns the text after ``OK``; raises :class:`ClusterError` on ``ERR``."""
        with self._lock:
            proc = self._proc
            if proc is None or proc.stdin is None or proc.poll() is not None:
                raise ClusterError("the harness is not running")
            proc.stdin.write(command + "\n")
            proc.stdin.flush()
            line = self._next_line(timeout)
        if line.startswith("OK"):
            return line[2:].strip()
        raise ClusterError(f"{command!r}: {line}")

    def state(self) -> dict[str, str]:
        return dict(part.split("=", 1) for part in self.cmd("state").split())

    def stop(self, timeout: float = 30.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                try:
                    if proc.poll() is None:
                        proc.stdin.write("shutdown\n")
                except (BrokenPipeError, OSError, ValueError):
                    pass
                try:
                    proc.stdin.close()  # also when the JVM is already gone: an open pipe is a ResourceWarning
                except (BrokenPipeError, OSError):  # the flush failed; the pipe is closed all the same
                    pass
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        finally:
            atexit.unregister(self.stop)
            if self._reader is not None:
                self._reader.join(30)  # it ends (and closes stdout) at the pipe's EOF, once the JVM is gone
            elif proc.stdout is not None:
                proc.stdout.close()

    def __enter__(self) -> HaCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- client configuration ------------------------------------------------------
    def direct_config(self) -> dict[str, str]:
        """hdfs-native config naming the real NameNode ports (no proxy): for test setup."""
        assert self.ready is not None
        ns = self.ready.nameservice
        cfg = {
            f"dfs.ha.namenodes.{ns}": "nn0,nn1",
            "dfs.client.failover.max.attempts": "6",
            "dfs.client.failover.sleep.base.millis": "100",
            "dfs.client.failover.sleep.max.millis": "500",
        }
        for i, (host, port) in enumerate(self.ready.nn):
            cfg[f"dfs.namenode.rpc-address.{ns}.nn{i}"] = f"{host}:{port}"
        return cfg
