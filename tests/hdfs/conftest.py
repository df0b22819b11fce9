"""Fixtures for the real HA HDFS tests: one MiniDFSCluster per session, behind proxies.

``hdfs_env`` starts the cluster once (about 10-25 s) with a TCP proxy in front of each
NameNode's RPC port and each one's HTTP port; the client configuration it writes names
the proxies, so a test can refuse, black-hole or delay a NameNode. ``env`` (the
per-test fixture) puts everything back before and after each test: proxies passing,
both NameNodes and DataNodes up, nn0 active. Measured times are collected with
``timings.record`` and printed at the end of the run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from .cluster import ClusterError, HaCluster, HarnessUnavailable, build_harness
from .proxy import Proxy, ProxyLoop

_TIMINGS: list[str] = []


@dataclass
class Timings:
    lines: list[str] = field(default_factory=lambda: _TIMINGS)

    def record(self, scenario: str, **values: float | int | str) -> None:
        parts = [f"{k}={v:.3f}s" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()]
        line = f"{scenario:<28} " + " ".join(parts)
        self.lines.append(line)
        print("TIMING", line)


@dataclass
class HdfsEnv:
    cluster: HaCluster
    rpc: list[Proxy]
    http: list[Proxy]
    build_seconds: float
    build_mode: str

    @property
    def ns(self) -> str:
        assert self.cluster.ready is not None
        return self.cluster.ready.nameservice

    @property
    def conf_dir(self) -> str:
        assert self.cluster.ready is not None
        return self.cluster.ready.conf_dir

    def direct(self) -> Any:
        """An hdfs-native client on the real ports (no proxy): for writing test data."""
        import hdfs_native

        return hdfs_native.Client(f"hdfs://{self.ns}", self.cluster.direct_config())

    def webhdfs_url(self, path: str) -> str:
        return "webhdfs://" + ",".join(f"127.0.0.1:{p.port}" for p in self.http) + path

    def all_pass(self) -> None:
        for p in (*self.rpc, *self.http):
            if p.mode != "pass":
                p.pass_()
            p.cut()  # no connection carries held bytes from a fault into the next test

    def restore(self) -> None:
        """Both NameNodes and DataNodes up, nn0 active, proxies passing."""
        self.all_pass()
        state = self.cluster.state()
        for j in (0, 1):
            if state.get(f"dn{j}") == "down":
                self.cluster.cmd(f"restartdn {j}")
        for i in (0, 1):
            if state.get(f"nn{i}") == "down":
                self.cluster.cmd(f"restart {i}")
        state = self.cluster.state()
        if state.get("nn0") != "active":
            if state.get("nn1") == "active":
                self.cluster.cmd("failover 1 0")
            else:
                self.cluster.cmd("active 0")


@pytest.fixture(scope="session")
def timings() -> Timings:
    return Timings()


@pytest.fixture(scope="session")
def hdfs_env(timings: Timings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HdfsEnv]:
    t0 = time.monotonic()
    try:
        build = build_harness()
    except HarnessUnavailable as why:
        pytest.skip(str(why))
    loop = ProxyLoop()
    rpc = [Proxy(loop, f"nn{i}-rpc") for i in (0, 1)]
    http = [Proxy(loop, f"nn{i}-http") for i in (0, 1)]
    workdir = tmp_path_factory.mktemp("hdfs")  # kept for the last few runs, as pytest does
    cluster = HaCluster(workdir, datanodes=2, rpc_proxy_ports=[p.port for p in rpc], http_proxy_ports=[p.port for p in http])
    try:
        ready = cluster.start(timeout=float(os.environ.get("SPARKHIST_HDFS_START_TIMEOUT", "240")))
        for i in (0, 1):
            rpc[i].set_target(*ready.nn[i])
            http[i].set_target(*ready.http[i])
        timings.record(
            "cluster start",
            build=build.seconds,
            build_mode=build.mode,
            jvm_to_ready=cluster.start_seconds,
            inside_jvm=ready.startup_ms / 1000,
            total=time.monotonic() - t0,
        )
        yield HdfsEnv(cluster, rpc, http, build.seconds, build.mode)
    except ClusterError as exc:
        pytest.fail(f"the HDFS harness failed: {exc}")
    finally:
        cluster.stop()
        for p in (*rpc, *http):
            p.close()
        loop.close()


@pytest.fixture
def env(hdfs_env: HdfsEnv) -> Iterator[HdfsEnv]:
    """The shared cluster, healthy before and after the test."""
    hdfs_env.restore()
    yield hdfs_env
    hdfs_env.restore()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _TIMINGS:
        terminalreporter.section("HDFS resilience timings")
        for line in _TIMINGS:
            terminalreporter.write_line(line)
