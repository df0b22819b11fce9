"""HdfsSource and WebHdfsSource against a real HA HDFS (MiniDFSCluster 3.5.0, 2 NameNodes,
2 DataNodes, 1 MiB blocks, replication 2), with NameNode faults played by TCP proxies.

Each scenario prints a ``TIMING`` line (also summarised at the end of the run):
``detect`` is how long the caller waited before the fault surfaced (or was absorbed),
``recover`` how long until calls succeeded again after the fault was lifted or the
failover done.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sparkhist.errors import SourceError, SourceNotFound, SourceUnavailable
from sparkhist.reader.layout import single_file_log
from sparkhist.reader.stream import read_lines
from sparkhist.resilience.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from sparkhist.resilience.retry import Backoff, RetryPolicy
from sparkhist.source.deadline import BackendPanic, DeadlineExceeded, ThreadRunner
from sparkhist.source.faults import translate_error
from sparkhist.source.guard import CircuitOpen
from sparkhist.source.hdfs import HdfsSource
from sparkhist.source.local import LocalSource
from sparkhist.source.webhdfs import WebHdfsSource

from .conftest import HdfsEnv, Timings

pytestmark = pytest.mark.slow

RPC_TIMEOUT = 2.0
READ_TIMEOUT = 4.0
#: Scheduling slack on a loaded 2-core CI machine.
SLACK = 2.0
SAMPLES = Path(__file__).resolve().parents[2] / "src" / "sparkhist" / "samples" / "eventlogs"


def jlines(start: int, count: int, pad: int) -> bytes:
    """Exactly what the harness's ``wlines PATH START COUNT PAD`` writes."""
    return b"".join(b'{"Event":"Test","n":%d,"pad":"%s"}\n' % (n, b"x" * pad) for n in range(start, start + count))


def payload(n_lines: int) -> bytes:
    return b"".join(b'{"Event":"SparkListenerTaskEnd","Task ID":%d}\n' % i for i in range(n_lines))


@contextmanager
def hdfs_source(env: HdfsEnv, path: str = "/", **kwargs) -> Iterator[HdfsSource]:
    kwargs.setdefault("rpc_timeout", RPC_TIMEOUT)
    kwargs.setdefault("read_timeout", READ_TIMEOUT)
    kwargs.setdefault("breaker", CircuitBreaker(f"hdfs://{env.ns}", failure_threshold=5, reset_timeout=2.0))
    src = HdfsSource(f"hdfs://{env.ns}{path}", conf_dir=env.conf_dir, **kwargs)
    try:
        yield src
    finally:
        src.close()


def read_all(stream) -> bytes:
    parts = []
    while chunk := stream.read(1 << 20):
        parts.append(chunk)
    return b"".join(parts)


def fresh_dir(env: HdfsEnv, name: str) -> str:
    client = env.direct()
    base = f"/tests/{name}"
    try:
        client.delete(base, True)
    except FileNotFoundError:
        pass
    client.mkdirs(base, create_parent=True)
    return base


def write(env: HdfsEnv, path: str, data: bytes) -> None:
    with env.direct().create(path) as w:
        w.write(data)


# -- plain reading ------------------------------------------------------------------------
def test_list_stat_and_read_a_log(env: HdfsEnv, timings: Timings) -> None:
    base = fresh_dir(env, "basic")
    data = payload(60_000)  # ~2.8 MB: three 1 MiB blocks
    assert len(data) > 2 * (1 << 20)
    write(env, f"{base}/app-1", data)
    env.direct().mkdirs(f"{base}/eventlog_v2_app-2")
    write(env, f"{base}/eventlog_v2_app-2/events_1_app-2", b"{}\n")
    write(env, f"{base}/eventlog_v2_app-2/appstatus_app-2", b"")

    with hdfs_source(env, base, chunk_size=1 << 20) as src:
        assert src.root == f"hdfs://{env.ns}{base}"
        entries = {e.name: e for e in src.list(src.root_path)}
        assert set(entries) == {"app-1", "eventlog_v2_app-2"}
        assert entries["app-1"].size == len(data) and not entries["app-1"].is_dir
        assert entries["app-1"].path == f"hdfs://{env.ns}{base}/app-1"
        assert entries["eventlog_v2_app-2"].is_dir
        children = src.list(entries["eventlog_v2_app-2"].path)
        assert sorted(c.name for c in children) == ["appstatus_app-2", "events_1_app-2"]
        assert src.stat(f"{base}/app-1") == entries["app-1"]

        t0 = time.monotonic()
        with src.open(entries["app-1"].path, 1000) as stream:
            got = read_all(stream)
        elapsed = time.monotonic() - t0
        assert got == data[1000:]
        calls = src.calls
        assert calls["open"] == 1
        assert calls["read"] == math.ceil((len(data) - 1000) / (1 << 20))
        assert not any(op.startswith("webhdfs") for op in calls)  # a finished file needs no WebHDFS

        with pytest.raises(SourceNotFound):
            src.stat(f"{base}/missing")
        with pytest.raises(SourceNotFound):
            src.open(f"{base}/missing")
        health = src.health()
        assert health["state"] == "ok" and health["breaker"]["state"] == CLOSED
    timings.record("read 2.8 MB (3 blocks)", seconds=elapsed, mb_per_s=f"{len(data) / elapsed / 1e6:.1f}")


def test_reader_gives_the_same_lines_as_from_local_disk(env: HdfsEnv) -> None:
    """A real (lz4) Spark event log through the reader layer: HDFS == local disk."""
    sample = SAMPLES / "local-1795972905472.lz4"
    base = fresh_dir(env, "reader")
    write(env, f"{base}/{sample.name}", sample.read_bytes())
    local = LocalSource(str(SAMPLES))
    expected = [line for line, _ in read_lines(local, single_file_log(local.stat(str(sample))), chunk_size=4096)]
    with hdfs_source(env, base) as src:
        entry = src.stat(f"{base}/{sample.name}")
        got = [line for line, _ in read_lines(src, single_file_log(entry), chunk_size=4096)]
    assert got == expected and len(got) > 10


# -- files still being written -------------------------------------------------------------
def test_inprogress_log_is_read_up_to_the_last_hflush(env: HdfsEnv, timings: Timings) -> None:
    """Spark's writer hflushes; the NameNode lags, hdfs-native sees completed blocks only."""
    base = fresh_dir(env, "inprogress")
    path = f"{base}/app-7.inprogress"
    c = env.cluster
    c.cmd(f"wopen {path}")
    c.cmd(f"wlines {path} 0 100 20")
    c.cmd(f"hflush {path}")
    c.cmd(f"wlines {path} 100 100 20")
    visible1 = int(c.cmd(f"hflush {path}").split("=")[1])
    expected = jlines(0, 200, 20)
    assert visible1 == len(expected)

    # The traps this source works around:
    direct = env.direct()
    assert direct.get_file_info(path).length < visible1  # the NameNode lags behind hflush
    assert len(direct.read(path)) == 0  # hdfs-native: completed blocks only

    with hdfs_source(env, base, chunk_size=256 << 10) as src:
        entry = {e.name: e for e in src.list(src.root_path)}["app-7.inprogress"]
        assert entry.size == visible1
        assert src.stat(path).size == visible1
        with src.open(path) as stream:
            assert read_all(stream) == expected
        beyond_nn = direct.get_file_info(path).length + 10  # past what the NameNode knows
        with src.open(path, beyond_nn) as stream:
            assert read_all(stream) == expected[beyond_nn:]

        # Grow past a block boundary: completed block via RPC, the rest via WebHDFS.
        c.cmd(f"wlines {path} 200 25000 20")
        t0 = time.monotonic()
        visible2 = int(c.cmd(f"hflush {path}").split("=")[1])
        expected += jlines(200, 25000, 20)
        assert visible2 == len(expected) > (1 << 20)
        assert src.stat(path).size == visible2
        seen_after = time.monotonic() - t0
        before = dict(src.calls)
        with src.open(path, visible1) as stream:  # resume where the last read stopped
            assert read_all(stream) == expected[visible1:]
        assert src.calls["read"] > before.get("read", 0)  # the completed block, via RPC
        assert src.calls["webhdfs_read"] > before.get("webhdfs_read", 0)  # the rest
        assert len(direct.read(path)) == 1 << 20  # one completed block

        # Without WebHDFS: up to the last completed block, never a panic.
        with hdfs_source(env, base, webhdfs=False) as rpc_only:
            size = rpc_only.stat(path).size
            assert size <= visible2
            with rpc_only.open(path) as stream:
                got = read_all(stream)
            assert got == expected[: len(got)] and len(got) == 1 << 20

        total = int(c.cmd(f"wclose {path}").split("=")[1])
        assert total == visible2
        assert src.stat(path).size == total
        with src.open(path) as stream:
            assert read_all(stream) == expected
    timings.record("inprogress hflush -> stat", seconds=seen_after)


def test_hsynced_file_from_hdfs_native_and_panic_containment(env: HdfsEnv) -> None:
    base = fresh_dir(env, "hsync")
    path = f"{base}/app-9.inprogress"
    client = env.direct()
    writer = client.create(path)
    data = payload(500)
    writer.write(data)
    writer.hsync()
    try:
        assert client.get_file_info(path).length == len(data)  # hsync updates the NameNode
        assert len(client.read(path)) == 0
        with pytest.raises(BaseException) as raw:  # the trap: a BaseException, not an Exception
            client.read(path).read_range(0, 100)
        assert type(raw.value).__name__ == "PanicException" and not isinstance(raw.value, Exception)

        # The same panic through our deadline runner becomes an ordinary, translated error.
        runner = ThreadRunner("panic-test")
        with pytest.raises(BackendPanic) as contained:
            runner.run(lambda: client.read(path).read_range(0, 100), 5.0, "panic test")
        assert isinstance(translate_error(contained.value, "read"), SourceError)
        assert runner.run(lambda: 42, 1.0, "after panic") == 42 and runner.hung == 0

        with hdfs_source(env, base) as src:
            assert src.stat(path).size == len(data)
            with src.open(path) as stream:
                assert read_all(stream) == data
    finally:
        writer.close()


# -- NameNode failover ------------------------------------------------------------------------
def _reader_loop(src: HdfsSource, path: str, data: bytes, stop: threading.Event, out: dict) -> None:
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            assert src.stat(path).size == len(data)
            with src.open(path) as stream:
                assert read_all(stream) == data
            out["ok"] += 1
        except SourceError as exc:
            out["errors"].append(f"{time.monotonic():.3f} {exc}")
        out["latencies"].append(time.monotonic() - t0)
        time.sleep(0.05)


def test_graceful_failover_during_reads(env: HdfsEnv, timings: Timings) -> None:
    """Two failovers, each with both NameNodes standby for GAP_MS (as while ZKFC fences),
    under a reader looping stat + open + read: the retries absorb them."""
    gap_ms = 400
    base = fresh_dir(env, "graceful")
    data = payload(8000)
    write(env, f"{base}/app", data)
    out: dict = {"ok": 0, "errors": [], "latencies": []}
    stop = threading.Event()
    retry = RetryPolicy(attempts=5, backoff=Backoff(base=0.2, cap=1.0))  # ~1.4 s of retries
    with hdfs_source(env, base, retry=retry) as src:
        worker = threading.Thread(target=_reader_loop, args=(src, f"{base}/app", data, stop, out))
        worker.start()
        try:
            time.sleep(1.0)
            t0 = time.monotonic()
            env.cluster.cmd(f"failover 0 1 {gap_ms}")
            to_1 = time.monotonic() - t0
            time.sleep(1.5)
            t0 = time.monotonic()
            env.cluster.cmd(f"failover 1 0 {gap_ms}")
            to_0 = time.monotonic() - t0
            time.sleep(1.5)
        finally:
            stop.set()
            worker.join(30)
        assert out["errors"] == []
        assert out["ok"] >= 5
        worst = max(out["latencies"])
        assert worst < gap_ms / 1000 + RPC_TIMEOUT + SLACK
        retried = src.guard.failures.total()
        assert retried >= 1  # the gaps were hit, and absorbed
        assert src.health()["state"] == "ok"
    timings.record(
        f"graceful failover x2 (gap {gap_ms} ms)",
        failover_cmd_0to1=to_1,
        failover_cmd_1to0=to_0,
        worst_call=worst,
        calls=out["ok"],
        failed_attempts=retried,
        caller_errors=len(out["errors"]),
    )


def test_active_namenode_killed_then_failover(env: HdfsEnv, timings: Timings) -> None:
    base = fresh_dir(env, "crash")
    data = payload(2000)
    write(env, f"{base}/app", data)
    with hdfs_source(env, base) as src:
        assert src.stat(f"{base}/app").size == len(data)
        env.cluster.cmd("kill 0")  # nn0 (active) gone; nn1 still standby
        t0 = time.monotonic()
        with pytest.raises(SourceUnavailable):
            src.stat(f"{base}/app")
        detect = time.monotonic() - t0
        assert detect < RPC_TIMEOUT + SLACK  # refused + standby: no deadline needed

        t_failover = time.monotonic()
        env.cluster.cmd("active 1")
        cmd_time = time.monotonic() - t_failover
        recover = _until_ok(lambda: src.stat(f"{base}/app"), limit=15.0)
        with src.open(f"{base}/app") as stream:
            assert read_all(stream) == data
        assert src.health()["state"] == "ok"
    timings.record("kill active nn + failover", detect=detect, failover_cmd=cmd_time, recover_after_failover=recover)


def _until_ok(call, limit: float, interval: float = 0.1) -> float:
    """Seconds until ``call()`` succeeds (fails the test after ``limit``)."""
    t0 = time.monotonic()
    while True:
        try:
            call()
            return time.monotonic() - t0
        except SourceError as exc:
            if time.monotonic() - t0 > limit:
                pytest.fail(f"no recovery within {limit}s: {exc}")
            time.sleep(interval)


def test_blackholed_active_namenode_costs_one_deadline(env: HdfsEnv, timings: Timings) -> None:
    """A hung active NameNode (accepts TCP, never answers) after the cluster failed over."""
    base = fresh_dir(env, "blackhole")
    write(env, f"{base}/app", payload(100))
    no_retry = RetryPolicy(attempts=1)
    with hdfs_source(env, base, retry=no_retry) as single, hdfs_source(env, base) as retrying:
        for src in (single, retrying):  # both talk to nn0 through the proxy now
            src.stat(f"{base}/app")
            assert src.order[0] == "nn0"
        env.rpc[0].blackhole()
        env.cluster.cmd("failover 0 1")  # the harness reaches nn0 directly, not through the proxy

        t0 = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            single.stat(f"{base}/app")
        detect = time.monotonic() - t0
        assert RPC_TIMEOUT - 0.1 <= detect < RPC_TIMEOUT + SLACK
        t0 = time.monotonic()
        single.stat(f"{base}/app")  # rotated (and probed): straight to nn1
        recover = time.monotonic() - t0
        assert recover < 1.0 + SLACK / 2
        assert single.order[0] == "nn1"

        t0 = time.monotonic()
        retrying.stat(f"{base}/app")  # one deadline, then the retry goes to nn1
        absorbed = time.monotonic() - t0
        assert absorbed < RPC_TIMEOUT + SLACK
        assert retrying.rebuilds == 1 and retrying.guard.failures["stat"] == 1

        # Later calls never touch the hung NameNode again.
        t0 = time.monotonic()
        for _ in range(5):
            retrying.stat(f"{base}/app")
        assert time.monotonic() - t0 < 1.0 + SLACK / 2
        assert retrying.health()["state"] == "ok"
    timings.record("blackholed active nn", detect=detect, recover_next_call=recover, with_retry_one_call=absorbed)


def test_hung_active_namenode_before_any_failover_is_bounded(env: HdfsEnv, timings: Timings) -> None:
    """The active NameNode hangs and nothing fails over (yet): every attempt costs one
    deadline, the breaker opens, calls then fail fast, and the abandoned threads are
    counted and end once the connection breaks. A later failover is picked up by the
    breaker's trial call."""
    base = fresh_dir(env, "hung")
    write(env, f"{base}/app", payload(100))
    breaker = CircuitBreaker(f"hdfs://{env.ns}", failure_threshold=2, reset_timeout=1.5)
    with hdfs_source(env, base, breaker=breaker, retry=RetryPolicy(attempts=1), probe_timeout=1.0) as src:
        src.stat(f"{base}/app")
        env.rpc[0].blackhole()
        costs = []
        for _ in range(2):
            t0 = time.monotonic()
            with pytest.raises(DeadlineExceeded):
                src.stat(f"{base}/app")
            costs.append(time.monotonic() - t0)
        assert all(RPC_TIMEOUT - 0.1 <= c < RPC_TIMEOUT + 1.0 + SLACK for c in costs)  # deadline + probe
        assert breaker.state == OPEN
        t0 = time.monotonic()
        with pytest.raises(CircuitOpen):
            src.stat(f"{base}/app")
        fast = time.monotonic() - t0
        hung = src.health()["hung_calls"]
        assert 2 <= hung <= 4  # the two calls, and the probes of the hung NameNode

        env.cluster.cmd("failover 0 1")
        time.sleep(1.6)
        recover = _until_ok(lambda: src.stat(f"{base}/app"), limit=10.0)
        assert breaker.state == CLOSED and src.order[0] == "nn1"

        env.rpc[0].pass_()
        env.rpc[0].cut()  # the hung connections break: their threads return
        deadline = time.monotonic() + 10
        while src.health()["hung_calls"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert src.health()["hung_calls"] == 0
    timings.record("hung active nn, no failover", per_call=max(costs), fail_fast=fast, hung_threads=hung,
                   recover_after_failover=recover)


def test_slow_namenode_under_the_deadline_is_just_slow(env: HdfsEnv, timings: Timings) -> None:
    base = fresh_dir(env, "delay")
    write(env, f"{base}/app", payload(100))
    with hdfs_source(env, base) as src:
        src.stat(f"{base}/app")
        env.rpc[0].delay(300)
        t0 = time.monotonic()
        src.stat(f"{base}/app")
        slow = time.monotonic() - t0
        assert slow >= 0.3
        assert src.rebuilds == 0 and src.guard.failures.total() == 0
    timings.record("active nn delayed 300 ms", call=slow)


def test_cut_connections_are_reopened(env: HdfsEnv, timings: Timings) -> None:
    """Every open connection to the active NameNode reset (a NameNode restart, a firewall
    flush): the next calls reconnect, at most one retry each."""
    base = fresh_dir(env, "cut")
    write(env, f"{base}/app", payload(100))
    with hdfs_source(env, base) as src:
        src.stat(f"{base}/app")
        assert env.rpc[0].cut() >= 1
        t0 = time.monotonic()
        for _ in range(3):
            src.stat(f"{base}/app")
        elapsed = time.monotonic() - t0
        assert elapsed < 1.0 + SLACK
        assert src.health()["state"] == "ok"
        retried = src.guard.failures["stat"]
    timings.record("connections cut", three_calls=elapsed, failed_attempts=retried)


def test_whole_cluster_unreachable_opens_the_breaker_then_recovers(env: HdfsEnv, timings: Timings) -> None:
    base = fresh_dir(env, "partition")
    write(env, f"{base}/app", payload(100))
    breaker = CircuitBreaker(f"hdfs://{env.ns}", failure_threshold=3, reset_timeout=1.5)
    retry = RetryPolicy(attempts=3, backoff=Backoff(base=0.1, cap=0.5))
    with hdfs_source(env, base, breaker=breaker, retry=retry) as src:
        src.stat(f"{base}/app")
        for p in (*env.rpc, *env.http):
            p.refuse()

        t0 = time.monotonic()
        with pytest.raises(SourceUnavailable) as first:
            src.stat(f"{base}/app")
        detect = time.monotonic() - t0
        assert not isinstance(first.value, CircuitOpen)
        assert detect < 3.0 + SLACK
        assert breaker.state == OPEN  # 3 failed attempts in a row
        assert src.health()["state"] == "offline"

        calls_before = sum(src.guard.calls.values())
        t0 = time.monotonic()
        with pytest.raises(CircuitOpen):
            src.list(src.root_path)
        fast = time.monotonic() - t0
        assert fast < 0.05
        assert sum(src.guard.calls.values()) == calls_before  # nothing was sent

        # Still down after the cool-down: the half-open trial fails and the breaker reopens.
        time.sleep(1.6)
        with pytest.raises(SourceUnavailable):
            src.stat(f"{base}/app")
        assert breaker.state == OPEN and breaker.transitions[HALF_OPEN] == 1 and breaker.transitions[OPEN] == 2

        for p in (*env.rpc, *env.http):
            p.pass_()
        recover = _until_ok(lambda: src.stat(f"{base}/app"), limit=10.0)
        assert breaker.state == CLOSED
        assert src.health()["state"] == "ok"
        assert src.health()["breaker"]["transitions"] == {OPEN: 2, HALF_OPEN: 2, CLOSED: 1}
    timings.record("cluster unreachable", detect=detect, fail_fast=fast, recover_after_pass=recover)


# -- DataNode failure ----------------------------------------------------------------------------
def test_datanode_lost_mid_read(env: HdfsEnv, timings: Timings) -> None:
    base = fresh_dir(env, "datanode")
    data = payload(90_000)  # ~4.3 MB: five blocks, two replicas each
    write(env, f"{base}/app", data)
    with hdfs_source(env, base, chunk_size=512 << 10) as src:
        with src.open(f"{base}/app") as stream:
            head = stream.read(512 << 10)
            env.cluster.cmd("killdn 0")
            worst = 0.0
            parts = [head]
            while True:
                t0 = time.monotonic()
                chunk = stream.read(512 << 10)
                worst = max(worst, time.monotonic() - t0)
                if not chunk:
                    break
                parts.append(chunk)
        assert b"".join(parts) == data
        assert worst < READ_TIMEOUT + SLACK
        failures = src.guard.failures["read"]
    timings.record("datanode killed mid-read", worst_chunk=worst, read_failures_retried=failures)


# -- the cleaner's delete ---------------------------------------------------------------------------
def test_delete_removes_files_and_trees_and_ignores_missing_ones(env: HdfsEnv) -> None:
    """Both remote sources: a file, a rolling directory with its files, then the same paths again."""
    base = fresh_dir(env, "delete")
    for app in ("rpc", "web"):
        write(env, f"{base}/app-{app}", b"{}\n")
        env.direct().mkdirs(f"{base}/eventlog_v2_{app}")
        write(env, f"{base}/eventlog_v2_{app}/events_1_{app}", b"{}\n")
    web = WebHdfsSource(env.webhdfs_url(base), timeout=RPC_TIMEOUT, read_timeout=READ_TIMEOUT)
    try:
        with hdfs_source(env, base) as src:
            for source, app in ((src, "rpc"), (web, "web")):
                for name in (f"app-{app}", f"eventlog_v2_{app}"):
                    path = source.join(source.root_path, name)
                    source.delete(path)
                    with pytest.raises(SourceNotFound):
                        source.stat(path)
                    source.delete(path)  # already gone: no error
                assert source.calls["delete"] == 4
            assert {e.name for e in src.list(src.root_path)} == set()
    finally:
        web.close()


# -- WebHDFS source ---------------------------------------------------------------------------------
def test_webhdfs_source_reads_fails_over_and_rotates(env: HdfsEnv, timings: Timings) -> None:
    base = fresh_dir(env, "webhdfs")
    data = payload(30_000)
    write(env, f"{base}/app-1", data)
    c = env.cluster
    path = f"{base}/app-2.inprogress"
    c.cmd(f"wopen {path}")
    c.cmd(f"wlines {path} 0 50 10")
    c.cmd(f"hflush {path}")
    c.cmd(f"wlines {path} 50 50 10")
    visible = int(c.cmd(f"hflush {path}").split("=")[1])

    src = WebHdfsSource(env.webhdfs_url(base), timeout=RPC_TIMEOUT, read_timeout=READ_TIMEOUT, retry=RetryPolicy(attempts=1))
    try:
        entries = {e.name: e for e in src.list(src.root_path)}
        assert entries["app-1"].size == len(data)
        assert entries["app-2.inprogress"].size == visible
        with src.open(entries["app-1"].path, 5) as stream:
            assert read_all(stream) == data[5:]
        with src.open(entries["app-2.inprogress"].path) as stream:
            assert read_all(stream) == jlines(0, 100, 10)
        assert src.client.active == 0

        c.cmd("failover 0 1")  # nn0 answers StandbyException: skipped within the call
        assert src.stat(f"{base}/app-1").size == len(data)
        assert src.client.active == 1

        env.http[1].blackhole()
        c.cmd("failover 1 0")
        t0 = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            src.stat(f"{base}/app-1")
        detect = time.monotonic() - t0
        assert RPC_TIMEOUT - 0.1 <= detect < RPC_TIMEOUT + SLACK
        t0 = time.monotonic()
        assert src.stat(f"{base}/app-1").size == len(data)
        recover = time.monotonic() - t0
        assert recover < 1.0 + SLACK / 2
        assert src.client.active == 0
    finally:
        src.close()
        c.cmd(f"wclose {path}")
    timings.record("webhdfs blackholed active", detect=detect, recover_next_call=recover)
