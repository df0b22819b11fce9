"""The HDFS/WebHDFS sources' parts that need no cluster: configuration, deadlines,
the guard, streams, error translation. Fast; no network beyond an unused loopback port."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from pathlib import Path
from typing import Literal

import httpx
import pytest

from sparkhist.errors import ConfigError, SourceError, SourceNotFound, SourceUnavailable
from sparkhist.resilience.breaker import CircuitBreaker
from sparkhist.resilience.retry import Backoff, RetryPolicy
from sparkhist.source.base import FileEntry
from sparkhist.source.deadline import BackendPanic, DeadlineExceeded, LoopThread, ThreadRunner, TooManyHungCalls
from sparkhist.source.factory import open_source
from sparkhist.source.faults import http_error, os_error, translate_error, translating, webhdfs_error
from sparkhist.source.guard import CircuitOpen, SourceGuard
from sparkhist.source.hadoop_conf import load_conf, resolve_namenodes
from sparkhist.source.hdfs import HdfsSource
from sparkhist.source.local import LocalSource
from sparkhist.source.ranged import RangeStream
from sparkhist.source.webhdfs import WebHdfsSource, live_files, parse_webhdfs_url


@pytest.fixture(autouse=True)
def _no_hadoop_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HADOOP_CONF_DIR", raising=False)
    monkeypatch.delenv("HADOOP_HOME", raising=False)


def site(path: Path, props: dict[str, str]) -> None:
    body = "".join(f"<property><name>{k}</name><value>{v}</value></property>" for k, v in props.items())
    path.write_text(f'<?xml version="1.0"?><configuration>{body}</configuration>')


HA = {
    "dfs.ha.namenodes.ns": "nn1,nn2",
    "dfs.namenode.rpc-address.ns.nn1": "10.0.0.1:8020",
    "dfs.namenode.rpc-address.ns.nn2": "10.0.0.2:8020",
    "dfs.namenode.http-address.ns.nn1": "10.0.0.1:9870",
}


# -- configuration ----------------------------------------------------------------------------
def test_conf_dir_files_then_overrides(tmp_path: Path) -> None:
    site(tmp_path / "core-site.xml", {"fs.defaultFS": "hdfs://ns", "a": "core"})
    site(tmp_path / "hdfs-site.xml", {**HA, "a": "hdfs"})
    conf = load_conf(str(tmp_path), {"a": "override"})
    assert conf["fs.defaultFS"] == "hdfs://ns" and conf["a"] == "override"
    assert conf["dfs.ha.namenodes.ns"] == "nn1,nn2"


def test_conf_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site(tmp_path / "hdfs-site.xml", HA)
    monkeypatch.setenv("HADOOP_CONF_DIR", str(tmp_path))
    assert load_conf()["dfs.ha.namenodes.ns"] == "nn1,nn2"


def test_missing_or_broken_conf(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_conf(str(tmp_path / "nope"))
    (tmp_path / "core-site.xml").write_text("<configuration><property>")
    with pytest.raises(ConfigError):
        load_conf(str(tmp_path))


def test_resolve_ha_nameservice() -> None:
    nns = resolve_namenodes("ns", HA)
    assert nns.ha and [n.id for n in nns.nodes] == ["nn1", "nn2"]
    assert nns.nodes[0].http == "10.0.0.1:9870"
    assert nns.nodes[1].http == "10.0.0.2:9870"  # default port when not configured


def test_resolve_single_namenode_and_default_fs() -> None:
    one = resolve_namenodes("host:9000", {})
    assert not one.ha and one.nodes[0].rpc == "host:9000" and one.nodes[0].http == "host:9870"
    assert resolve_namenodes("host", {}).nodes[0].rpc == "host:8020"
    assert resolve_namenodes("", {"fs.defaultFS": "hdfs://ns", **HA}).authority == "ns"
    with pytest.raises(ConfigError):
        resolve_namenodes("", {})
    with pytest.raises(ConfigError):
        resolve_namenodes("ns", {"dfs.ha.namenodes.ns": "nn1"})


def test_hdfs_client_config_is_explicit_and_rotated() -> None:
    src = HdfsSource("hdfs://ns/logs", overrides={**HA, "dfs.client.failover.max.attempts": "15", "x": "y"})
    try:
        assert src.root == src.root_path == "hdfs://ns/logs"
        cfg = src._client_config(["nn2", "nn1"])
        assert cfg["dfs.ha.namenodes.ns"] == "nn2,nn1"
        assert cfg["dfs.client.failover.max.attempts"] == "1"  # one pass, never 15
        assert cfg["dfs.client.failover.sleep.base.millis"] == "50"
        assert cfg["dfs.client.failover.random.order.ns"] == "false"
        assert cfg["x"] == "y"
    finally:
        src.close()


def test_hdfs_paths() -> None:
    src = HdfsSource("hdfs://h:9000/a/", overrides={})
    try:
        assert src.root == "hdfs://h:9000/a"
        assert src._path("hdfs://h:9000/a/b/../c") == "/a/c"
        assert src._path("/x") == "/x"
        assert src._path("hdfs:///x") == "/x"
        assert src.join(src.root, "f") == "hdfs://h:9000/a/f"
        with pytest.raises(SourceError):
            src._path("hdfs://other/x")
        with pytest.raises(SourceError):
            src._path("relative")
        assert src._client_config(["h:9000"])["dfs.client.failover.max.attempts"] == "0"
    finally:
        src.close()


def test_factory_knows_hdfs_and_webhdfs() -> None:
    src = open_source("hdfs://namenode:8020/spark-events")
    web = open_source("webhdfs://a:9870,b:9870/spark-events")
    try:
        assert isinstance(src, HdfsSource) and src.root == "hdfs://namenode:8020/spark-events"
        assert isinstance(web, WebHdfsSource) and web.client.namenodes == ["a:9870", "b:9870"]
    finally:
        src.close()
        web.close()


def test_webhdfs_url_forms() -> None:
    assert parse_webhdfs_url("webhdfs://a:1,b:2/x/y", {}) == ("http", "a:1,b:2", ["a:1", "b:2"], "/x/y")
    assert parse_webhdfs_url("swebhdfs://a/x", {})[0] == "https"
    assert parse_webhdfs_url("webhdfs://a/x", {})[2] == ["a:9870"]
    assert parse_webhdfs_url("webhdfs://ns/x", HA)[2] == ["10.0.0.1:9870", "10.0.0.2:9870"]
    with pytest.raises(ConfigError):
        parse_webhdfs_url("http://a/x", {})


def entry(path: str, is_dir: bool = False) -> FileEntry:
    return FileEntry(path, path.rsplit("/", 1)[1], 1, 0, is_dir)


def test_live_files() -> None:
    single = [entry("/e/app-1.inprogress"), entry("/e/app-2"), entry("/e/eventlog_v2_x", True)]
    assert live_files("/e", single) == {"/e/app-1.inprogress"}
    rolling = [entry(f"/e/eventlog_v2_x/events_{i}_x.zstd") for i in (1, 2, 10)]
    rolling.append(entry("/e/eventlog_v2_x/appstatus_x.inprogress"))
    assert live_files("/e/eventlog_v2_x", rolling) == {"/e/eventlog_v2_x/events_10_x.zstd"}
    finished = rolling[:-1] + [entry("/e/eventlog_v2_x/appstatus_x")]
    assert live_files("/e/eventlog_v2_x", finished) == set()


# -- streams --------------------------------------------------------------------------------------
def test_range_stream_never_reads_past_its_length() -> None:
    data = bytes(range(256)) * 40
    asked: list[tuple[int, int]] = []

    def fetch(pos: int, size: int) -> bytes:
        asked.append((pos, size))
        assert pos + size <= 5000
        return data[pos : pos + size]

    stream = RangeStream(fetch, 5000, 100, chunk_size=1024)
    assert stream.read(10) == data[100:110]
    assert stream.read() == data[110:5000]
    assert stream.read(10) == b"" and stream.tell() == 5000
    assert all(size <= 1024 for _, size in asked)
    stream.seek(-10, 2)
    assert stream.read() == data[4990:5000]
    stream.close()
    with pytest.raises(ValueError):
        stream.read(1)


def test_range_stream_offset_past_the_end_is_empty() -> None:
    assert RangeStream(lambda p, n: b"x" * n, 10, 50).read() == b""


# -- deadlines --------------------------------------------------------------------------------------
def test_thread_runner_deadline_abandons_and_counts_hung_calls() -> None:
    runner = ThreadRunner("t", max_hung=1)
    release = threading.Event()
    t0 = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        runner.run(release.wait, 0.2, "blocked call")
    assert 0.19 <= time.monotonic() - t0 < 2.0
    assert runner.hung == 1
    with pytest.raises(TooManyHungCalls):
        runner.run(lambda: 1, 1.0, "next")
    release.set()
    deadline = time.monotonic() + 5
    while runner.hung and time.monotonic() < deadline:
        time.sleep(0.01)
    assert runner.hung == 0 and runner.abandoned_total == 1
    assert runner.run(lambda: 7, 1.0, "after") == 7


class PanicException(BaseException):
    """Stands in for pyo3_runtime.PanicException (matched by name, as the real one)."""


def test_thread_runner_contains_panics() -> None:
    def boom() -> None:
        raise PanicException("Cannot read past end of the file")

    runner = ThreadRunner("t")
    with pytest.raises(BackendPanic):
        runner.run(boom, 1.0, "read")
    with pytest.raises(KeyError):
        runner.run(lambda: {}["x"], 1.0, "plain error")


def test_loop_thread_deadline_cancels() -> None:
    loop = LoopThread("t")
    cancelled = threading.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    try:
        with pytest.raises(DeadlineExceeded):
            loop.run(slow, 0.1, "slow")
        assert cancelled.wait(2)
        assert loop.run(lambda: asyncio.sleep(0, 5), 1.0, "fast") == 5
    finally:
        loop.close()


@pytest.mark.parametrize(
    "exc, expected",
    [
        (FileNotFoundError("x"), SourceNotFound),
        (OSError("Connection refused (os error 111)"), SourceUnavailable),
        (RuntimeError('RPCError("org.apache.hadoop.ipc.StandbyException", "...")'), SourceUnavailable),
        (RuntimeError('RPCError("org.apache.hadoop.hdfs.server.namenode.SafeModeException", "")'), SourceUnavailable),
        (RuntimeError('RPCError("org.apache.hadoop.security.AccessControlException", "")'), SourceError),
        (RuntimeError('InvalidArgument("No NameNode hosts found")'), SourceError),
        (IsADirectoryError("d"), SourceError),
        (BackendPanic("panic"), SourceError),
    ],
)
def test_translate_error(exc: BaseException, expected: type) -> None:
    out = translate_error(exc, "stat /x")
    assert type(out) is expected
    assert "stat /x" in str(out)


def test_translating_raises_from_the_original_and_passes_what_is_not_an_error() -> None:
    with pytest.raises(SourceUnavailable) as caught:
        with translating("hdfs://ns stat /x"):
            raise RuntimeError('RPCError("org.apache.hadoop.ipc.RetriableException", "")')
    assert isinstance(caught.value.__cause__, RuntimeError)
    with pytest.raises(SourceError, match="PanicException"):
        with translating("read"):
            raise PanicException("Cannot read past end of the file")
    unchanged = SourceNotFound("as it was")
    with pytest.raises(SourceNotFound) as kept:
        with translating("stat"):
            raise unchanged
    assert kept.value is unchanged
    with pytest.raises(KeyboardInterrupt):
        with translating("stat"):
            raise KeyboardInterrupt


@pytest.mark.parametrize(
    "status, exception, expected",
    [
        (404, "", SourceNotFound),
        (403, "FileNotFoundException", SourceNotFound),
        (403, "StandbyException", SourceUnavailable),
        (403, "RetriableException", SourceUnavailable),
        (403, "SafeModeException", SourceUnavailable),
        (403, "ObserverRetryOnActiveException", SourceUnavailable),  # the same list as RPC's
        (503, "", SourceUnavailable),
        (403, "AccessControlException", SourceError),
        (400, "IllegalArgumentException", SourceError),
    ],
)
def test_webhdfs_error(status: int, exception: str, expected: type) -> None:
    out = webhdfs_error(status, exception, "because", "GETFILESTATUS /x")
    assert type(out) is expected
    assert str(out).startswith(f"WebHDFS GETFILESTATUS /x: HTTP {status} {exception}") and str(out).endswith(" because")


def test_http_error() -> None:
    timeout = http_error(httpx.ReadTimeout("slow"), "WebHDFS read /x@0 (DataNode)")
    assert type(timeout) is DeadlineExceeded and str(timeout).startswith("WebHDFS read /x@0 (DataNode): timed out")
    refused = http_error(httpx.ConnectError("refused"), "WebHDFS read /x@0 (DataNode)")
    assert type(refused) is SourceUnavailable and "unreachable" in str(refused)
    assert type(translate_error(httpx.WriteError("broken"), "x")) is SourceUnavailable


@pytest.mark.parametrize(
    "exc, op, expected, message",
    [
        (FileNotFoundError(2, "gone"), "list", SourceNotFound, "no such directory: /d"),
        (NotADirectoryError(20, "file"), "list", SourceNotFound, "not a directory: /d"),
        (PermissionError(13, "denied"), "list", SourceUnavailable, "cannot list /d: [Errno 13] denied"),
        (FileNotFoundError(2, "gone"), "stat", SourceNotFound, "no such file: /d"),
        (OSError(5, "I/O"), "stat", SourceUnavailable, "cannot stat /d: [Errno 5] I/O"),
        (FileNotFoundError(2, "gone"), "open", SourceNotFound, "no such file: /d"),
        (IsADirectoryError(21, "dir"), "open", SourceError, "cannot open /d: [Errno 21] dir"),
        (PermissionError(13, "denied"), "delete", SourceError, "cannot delete /d: [Errno 13] denied"),
    ],
)
def test_os_error(exc: OSError, op: Literal["list", "stat", "open", "delete"], expected: type, message: str) -> None:
    out = os_error(exc, op, "/d")
    assert type(out) is expected and str(out) == message


def test_webhdfs_delete(monkeypatch: pytest.MonkeyPatch) -> None:
    """DELETE goes to the NameNode, recursively; a missing path (false, or 404) is no error."""
    seen: list[tuple[str, str, dict[str, str]]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, dict(request.url.params)))
        if request.url.path.endswith("/gone-parent/x"):
            return httpx.Response(404, json={"RemoteException": {"exception": "FileNotFoundException", "message": "x"}})
        return httpx.Response(200, json={"boolean": not request.url.path.endswith("/missing")})

    src = WebHdfsSource("webhdfs://a:9870/logs", user="u")
    mock = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    monkeypatch.setattr(src.client, "_client", lambda: mock)
    try:
        src.delete("webhdfs://a:9870/logs/eventlog_v2_app-1")
        src.delete("/logs/missing")
        src.delete("/logs/gone-parent/x")
        params = {"op": "DELETE", "user.name": "u", "recursive": "true"}
        assert seen[0] == ("DELETE", "/webhdfs/v1/logs/eventlog_v2_app-1", params)
        assert [path for _, path, _ in seen[1:]] == ["/webhdfs/v1/logs/missing", "/webhdfs/v1/logs/gone-parent/x"]
        assert src.calls["delete"] == 3
        health = src.health()
        assert health["state"] == "ok" and health["active_namenode"] == "a:9870"
    finally:
        src.close()
        src.close()  # a second close does nothing


def test_local_source_keeps_no_endpoint_state(tmp_path: Path) -> None:
    src = LocalSource(str(tmp_path))
    health = src.health()
    assert (health["state"], health["since"], health["breaker"]) == ("ok", None, None)
    src.close()
    src.close()


# -- guard ------------------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def make_guard(threshold: int = 3) -> tuple[SourceGuard, Clock]:
    clock = Clock()
    guard = SourceGuard(
        "src",
        retry=RetryPolicy(attempts=2, backoff=Backoff(base=0.1, jitter=0), sleep=clock.sleep, clock=clock),
        breaker=CircuitBreaker("src", failure_threshold=threshold, reset_timeout=10, clock=clock),
        wall=clock,
    )
    return guard, clock


def test_guard_retries_rotates_and_counts() -> None:
    guard, _ = make_guard()
    outcomes: list[object] = [SourceUnavailable("timeout"), "ok"]
    rotations: list[str] = []

    def attempt() -> object:
        out = outcomes.pop(0)
        if isinstance(out, Exception):
            raise out
        return out

    assert guard.run("stat", attempt, on_failure=lambda e: rotations.append(str(e))) == "ok"
    assert rotations == ["timeout"]
    assert guard.calls["stat"] == 2 and guard.failures["stat"] == 1
    assert guard.health()["state"] == "ok"


def test_not_found_is_an_answer_not_a_failure() -> None:
    guard, _ = make_guard(threshold=1)

    def missing() -> None:
        raise SourceNotFound("no")

    for _ in range(3):
        with pytest.raises(SourceNotFound):
            guard.run("stat", missing)
    assert guard.breaker.state == "closed" and guard.calls["stat"] == 3


def test_guard_health_goes_offline_then_back(caplog: pytest.LogCaptureFixture) -> None:
    guard, clock = make_guard(threshold=2)

    def down() -> None:
        raise SourceUnavailable("refused")

    with caplog.at_level(logging.INFO, logger="sparkhist.source"):
        with pytest.raises(SourceUnavailable):
            guard.run("list", down)  # 2 attempts -> breaker opens
        health = guard.health()
        assert health["state"] == "offline" and health["since"] == clock.now
        assert "refused" in health["last_error"]
        with pytest.raises(CircuitOpen):
            guard.run("list", lambda: "never called")
        assert guard.calls["list"] == 2 and guard.fast_failures == 1
        clock.now += 10
        assert guard.run("list", lambda: "back") == "back"
    health = guard.health()
    assert health["state"] == "ok" and health["breaker"]["state"] == "closed"
    assert health["breaker"]["transitions"] == {"open": 1, "half_open": 1, "closed": 1}
    messages = [r.getMessage() for r in caplog.records]
    assert any("is offline" in m for m in messages) and any("is ok" in m for m in messages)


def test_unanswered_namenode_port_fails_within_the_deadline() -> None:
    """A listener that never accepts-and-answers: the deadline, not hdfs-native, decides."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    port = server.getsockname()[1]
    try:
        src = HdfsSource(f"hdfs://127.0.0.1:{port}/", rpc_timeout=0.5, retry=RetryPolicy(attempts=1), webhdfs=False)
        t0 = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            src.stat("/x")
        assert time.monotonic() - t0 < 2.0
        assert src.health()["hung_calls"] == 1
        src.close()
    finally:
        server.close()


def test_thread_runner_idle_deadline_is_per_step() -> None:
    """A listing that keeps bringing pages is not cut off; one that stalls is, after one step."""
    runner = ThreadRunner("t")

    def pages(tick, n: int, gap: float) -> int:  # type: ignore[no-untyped-def]
        for _ in range(n):
            time.sleep(gap)
            tick()
        return n

    t0 = time.monotonic()
    assert runner.run_idle(lambda tick: pages(tick, 8, 0.1), 0.3, "list") == 8  # 0.8 s in all, 0.1 s per page
    assert time.monotonic() - t0 >= 0.8
    t0 = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="no progress within 0.3s"):
        runner.run_idle(lambda tick: pages(tick, 2, 0.6), 0.3, "list")
    assert 0.3 <= time.monotonic() - t0 < 0.6
    assert runner.abandoned_total == 1


def test_breaker_trip_opens_at_once() -> None:
    now = [0.0]
    breaker = CircuitBreaker("b", failure_threshold=5, reset_timeout=10, clock=lambda: now[0])
    breaker.trip("probe: nothing answers")
    assert breaker.state == "open" and not breaker.allow() and breaker.last_error == "probe: nothing answers"
    breaker.trip("again")  # no second transition
    assert breaker.transitions == {"open": 1}
    now[0] = 10.0
    assert breaker.allow() and breaker.state == "half_open"


def test_hung_ha_cluster_costs_one_deadline_then_fails_fast() -> None:
    """Both NameNodes accept TCP and never answer: one deadline plus the probe, no retry
    (nothing answers), and the breaker opens at once, so the next call costs nothing."""
    servers = []
    for _ in range(2):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        servers.append(s)
    ha = {
        "dfs.ha.namenodes.ns": "nn1,nn2",
        "dfs.namenode.rpc-address.ns.nn1": f"127.0.0.1:{servers[0].getsockname()[1]}",
        "dfs.namenode.rpc-address.ns.nn2": f"127.0.0.1:{servers[1].getsockname()[1]}",
    }
    try:
        src = HdfsSource("hdfs://ns/logs", overrides=ha, rpc_timeout=0.5, webhdfs=False)  # default retry: 3 retries
        assert src.guard.retry.attempts == 4 and src.probe_timeout == 0.5
        t0 = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            src.list(src.root_path)
        detect = time.monotonic() - t0
        assert 0.5 <= detect < 0.5 + 0.5 + 1.0  # deadline + probe (+ slack), not 4 deadlines
        assert src.guard.calls["list"] == 1
        assert src.guard.breaker.state == "open" and src.health()["state"] == "offline"
        t0 = time.monotonic()
        with pytest.raises(CircuitOpen):
            src.stat("/logs/x")
        assert time.monotonic() - t0 < 0.1
        src.close()
    finally:
        for s in servers:
            s.close()


def test_standby_answering_keeps_retrying_after_a_deadline() -> None:
    """The exception is marked not retryable only when no NameNode answered the probe."""
    from sparkhist.source.deadline import DeadlineExceeded as DE

    src = HdfsSource("hdfs://ns/logs", overrides=HA, rpc_timeout=0.5, webhdfs=False)
    try:
        src._state = type("S", (), {"generation": 1, "client": None})()  # a client to replace
        src._probe = lambda order: {"nn2": "standby", "nn1": "down"}  # type: ignore[method-assign]
        exc = DE("x")
        src._replace_client(1, exc, "list /logs")
        assert exc.retryable and src.guard.breaker.state == "closed" and src.order == ["nn2", "nn1"]
        src._state = type("S", (), {"generation": 2, "client": None})()
        src._probe = lambda order: {"nn1": "down"}  # type: ignore[method-assign]
        exc = DE("y")
        src._replace_client(2, exc, "list /logs")
        assert not exc.retryable and src.guard.breaker.state == "open"
    finally:
        src.close()


def test_runtime_builds_its_hdfs_source_from_the_settings(tmp_path: Path) -> None:
    """server.build_runtime threads --hadoop-conf and SPARKHIST_SOURCE_* to the source (no connection made)."""
    from sparkhist.config import load_settings
    from sparkhist.server import build_runtime

    flags = {"log_dir": "hdfs://ns/logs", "store_dir": str(tmp_path / "store"), "index_workers": 1,
             "hadoop_conf": tuple(f"{k}={v}" for k, v in HA.items())}
    env = {"SPARKHIST_SOURCE_TIMEOUT": "1500ms", "SPARKHIST_SOURCE_RETRIES": "1", "SPARKHIST_SOURCE_BREAKER_RESET": "4s"}
    runtime = build_runtime(load_settings(flags, environ=env))
    try:
        src = runtime.source.inner
        assert isinstance(src, HdfsSource) and [n.id for n in src.namenodes.nodes] == ["nn1", "nn2"]
        assert (src.rpc_timeout, src.guard.retry.attempts, src.guard.breaker.reset_timeout) == (1.5, 2, 4.0)
    finally:
        runtime.close()
        runtime.source.inner.close()  # runtime.close() closed it already: a second close is harmless
