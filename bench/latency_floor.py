"""The floor of the 50-client latency on this machine: the big app's ``/stages`` from a server that
does nothing, beside sparkhist and the SHS 4.3.0, with the same client and the same modes.

    .venv/bin/python bench/latency_floor.py [--apps 300] [--budget 20] [--rates 200,1000]
    .venv/bin/python bench/latency_floor.py --apps 1000 --requests 3000 cpu --src h11=/tmp/a/src --src httptools=src

The floor server (:class:`FloorProtocol`, run in its own process: ``latency_floor.py floor``) is an
asyncio protocol on uvloop, HTTP/1.1 keep-alive, that answers every GET with the same bytes: the
status line, headers and body sparkhist sent for the big app's ``/stages``, gzip-compressed when the
request's ``Accept-Encoding`` names gzip (as sparkhist sends them to the lean client) and plain
otherwise. It parses nothing but the end of a request's head, so its latency is what the client,
the kernel's loopback and one event-loop turn cost: no server can answer the same bytes faster with
this client on these cores. Each server is then measured in turn (the others idle) closed loop
(``--concurrency`` clients) and at each fixed rate (``latency.measure_fixed_rate``), with its CPU
and the client's per answered request, the load average and the CPU others used. The table ends
with the ratios: SHS / sparkhist (issue 16's p50 target is 4×) and SHS / floor (the best ratio any
server could show here).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

import httpx

import latency

HEAD_END = b"\r\n\r\n"


# --------------------------------------------------------------------------- the floor server
class FloorProtocol(asyncio.Protocol):
    """Answers each request head with ``gzipped`` when it accepts gzip, else ``plain`` (both whole
    answers: status line, headers, body); requests pipelined in one read are answered in order."""

    def __init__(self, plain: bytes, gzipped: bytes) -> None:
        self.plain, self.gzipped = plain, gzipped
        self.transport: asyncio.Transport | None = None
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio's classes

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        buffer = self.buffer + data if self.buffer else data
        start = 0
        while (end := buffer.find(HEAD_END, start)) >= 0:
            self.transport.write(self.gzipped if accepts_gzip(buffer[start:end]) else self.plain)
            start = end + len(HEAD_END)
        self.buffer = buffer[start:]


def accepts_gzip(head: bytes) -> bool:
    """Whether a request head's ``Accept-Encoding`` names gzip."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"accept-encoding":
            return b"gzip" in value.lower()
    return False


def serve_floor(port: int, plain: bytes, gzipped: bytes) -> None:
    """Runs the floor server on 127.0.0.1:``port`` until the process is stopped."""
    try:
        import uvloop
        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(lambda: FloorProtocol(plain, gzipped), "127.0.0.1", port,
                                                        backlog=1024))
    print("listening", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()
        loop.close()


# --------------------------------------------------------------------------- the answer to copy
def raw_answer(url: str, request: bytes) -> bytes:
    """The whole answer (status line, headers, body) a server sends to ``request``."""
    target = urlsplit(url)
    with socket.create_connection((target.hostname or "127.0.0.1", target.port or 80), timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while HEAD_END not in data:
            chunk = sock.recv(65536)
            if not chunk:
                raise latency.HttpError(f"{url}: connection closed in the head")
            data += chunk
        head, _, body = data.partition(HEAD_END)
        lengths = [int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")[1:]
                   if line.lower().startswith(b"content-length:")]
        if not lengths:  # chunked: read to the last chunk
            while not body.endswith(b"0\r\n\r\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    raise latency.HttpError(f"{url}: connection closed in the body")
                body += chunk
            return head + HEAD_END + body
        length = lengths[0]
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise latency.HttpError(f"{url}: connection closed in the body")
            body += chunk
    return head + HEAD_END + body[:length]


def lean_request(url: str, *, gzip: bool) -> bytes:
    """The GET the lean client sends (httpx's headers), or the same without ``Accept-Encoding``."""
    with httpx.Client() as client:
        request = client.build_request("GET", url)
    lines = [f"GET {request.url.raw_path.decode('ascii')} HTTP/1.1".encode("ascii")]
    lines += [k + b": " + v for k, v in request.headers.raw if gzip or k.lower() != b"accept-encoding"]
    return b"\r\n".join(lines) + HEAD_END


@contextmanager
def floor_process(plain: bytes, gzipped: bytes, workdir: Path) -> Iterator[tuple[str, int]]:
    """The floor server in its own process: (its base URL, its pid)."""
    (workdir / "plain").write_bytes(plain)
    (workdir / "gzip").write_bytes(gzipped)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    proc = subprocess.Popen([sys.executable, __file__, "floor", "--port", str(port), "--answers", str(workdir)],
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "listening":
            raise RuntimeError("the floor server did not start")
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


# --------------------------------------------------------------------------- the runs
@dataclass(frozen=True)
class Run:
    result: latency.Latency
    server_cpu_ms: float  # the server's CPU per answered request
    client_cpu_ms: float  # this process's CPU (the load generator) per answered request
    others: str  # CPU used by other processes meanwhile, and the load average at the end


def _cpu_seconds(pid: int) -> float:
    import servers
    return servers.Server("", "", pid, 0.0, Path("/dev/null")).cpu_seconds()


def measure_modes(url: str, pid: int, args: argparse.Namespace) -> dict[str, Run]:
    """Closed loop, then each fixed rate, on ``url`` (``pid`` the server's process)."""
    import noise

    runs: dict[str, Run] = {}
    modes: list[tuple[str, float | None]] = [("closed loop", None)] + [(f"{r:g} req/s", r) for r in args.rates]
    for label, rate in modes:
        server_cpu, client_cpu = _cpu_seconds(pid), time.process_time()
        with noise.ForeignLoad(interval=1.0) as load:
            if rate is None:
                result = latency.measure(url, total=args.requests, concurrency=args.concurrency, budget_s=args.budget)
            else:
                result = latency.measure_fixed_rate(url, rate=rate, duration_s=args.budget, concurrency=args.concurrency)
        answered = max(1, result.requests)
        runs[label] = Run(result, (_cpu_seconds(pid) - server_cpu) / answered * 1000,
                          (time.process_time() - client_cpu) / answered * 1000,
                          f"{load.mean():.2f} cores, load {os.getloadavg()[0]:.1f}")
        print(f"  {label}: {result.summary()}; server CPU {runs[label].server_cpu_ms:.3f} ms/answer, "
              f"client {runs[label].client_cpu_ms:.3f} ms/answer; others {runs[label].others}", flush=True)
    return runs


def table(by_server: dict[str, dict[str, Run]]) -> str:
    """Markdown: p50 (p99) per mode and server, CPU per answer, the ratios."""
    names = list(by_server)
    modes = list(next(iter(by_server.values())))
    out = ["| big `/stages`, p50 (p99) | " + " | ".join(names) + " | SHS / sparkhist | SHS / floor | sparkhist / floor |",
           "|---|" + "---:|" * (len(names) + 3)]

    def ratio(a: latency.Latency, b: latency.Latency) -> str:
        return f"{'≥' if a.p50_censored else ''}{a.p50_ms / b.p50_ms:.2f}×"

    for mode in modes:
        cells = [f"{latency.fmt_ms(r.result.p50_ms, r.result.p50_censored)} "
                 f"({latency.fmt_ms(r.result.p99_ms, r.result.p99_censored)})" for r in (by_server[n][mode] for n in names)]
        shs, sh, floor = (by_server[n][mode].result for n in ("SHS 4.3.0", "sparkhist", "floor"))
        out.append(f"| {mode} | " + " | ".join(cells) + f" | {ratio(shs, sh)} | {ratio(shs, floor)} | {ratio(sh, floor)} |")
    for mode in modes:
        out.append(f"| {mode}: server CPU · client CPU per answer, answers/s | " + " | ".join(
            f"{r.server_cpu_ms:.3f} · {r.client_cpu_ms:.3f} ms, {r.result.per_second:.0f}/s"
            for r in (by_server[n][mode] for n in names)) + " | | | |")
    for mode in modes:
        out.append(f"| {mode}: others' CPU, load average | " + " | ".join(by_server[n][mode].others for n in names)
                   + " | | | |")
    return "\n".join(out)


def main_bench(args: argparse.Namespace) -> None:
    import corpus
    import servers

    big = corpus.ensure_big_log()
    logs = corpus.ensure_scaled(args.apps, "rolling", big=big)
    work = Path(tempfile.mkdtemp(prefix="sparkhist-bench-floor-"))
    path = f"applications/{logs.big_app_id}/stages"
    by_server: dict[str, dict[str, Run]] = {}

    def warm(server: servers.Server) -> None:
        with httpx.Client(timeout=600) as client:
            servers.wait_listed(server, args.apps + 1, client, 1200)
            if server.kind == "sparkhist":
                servers.wait_first_scan(server, client, 1200)
            client.get(server.url(path))  # the state loaded, the kept answer built

    env = {**os.environ, "SPARKHIST_SERVE_PROCESSES": str(args.processes)}
    with servers.sparkhist(logs.log_dir, work / "store", work, env) as sh:
        warm(sh)
        url = sh.url(path)
        print("sparkhist", flush=True)
        by_server["sparkhist"] = measure_modes(url, sh.pid, args)
        # Taken after the runs: every serving process has its kept answer then (each keeps its own).
        gzipped, plain = raw_answer(url, lean_request(url, gzip=True)), raw_answer(url, lean_request(url, gzip=False))
        for name, answer in (("Accept-Encoding: gzip, deflate, zstd", gzipped), ("no Accept-Encoding", plain)):
            head = answer.partition(HEAD_END)[0].decode("latin-1").replace("\r\n", " | ")
            print(f"sparkhist's big /stages to {name}: {len(answer):,} bytes: {head}", flush=True)
    with floor_process(plain, gzipped, work) as (base, pid):
        print("floor", flush=True)
        by_server["floor"] = measure_modes(f"{base}/api/v1/{path}", pid, args)
    with servers.shs(logs.log_dir) as shs:
        warm(shs)
        answer = raw_answer(shs.url(path), lean_request(shs.url(path), gzip=True))
        head = answer.partition(HEAD_END)[0].decode("latin-1").replace("\r\n", " | ")
        print(f"SHS 4.3.0's big /stages to the lean client: {len(answer):,} bytes: {head}", flush=True)
        by_server["SHS 4.3.0"] = measure_modes(shs.url(path), shs.pid, args)
    ordered = {n: by_server[n] for n in ("floor", "sparkhist", "SHS 4.3.0")}
    print()
    print(table(ordered))


def main_cpu(args: argparse.Namespace) -> None:
    """Server CPU per answer and the fixed-rate p50 of sparkhist built from each ``--src`` (a copy of
    ``src/``, e.g. before and after a change), one serving process, the runs interleaved ``--rounds``
    times over the same store: the figures of ``bench/RESULTS.md`` "15:40" and the fixed-rate p50."""
    import corpus
    import noise
    import servers

    big = corpus.ensure_big_log()
    logs = corpus.ensure_scaled(args.apps, "rolling", big=big)
    work = Path(tempfile.mkdtemp(prefix="sparkhist-bench-cpu-"))
    sources = dict(item.split("=", 1) for item in args.src)
    print(f"{args.apps + 1} apps, 1 serving process, {args.concurrency} clients; sources: {sources}", flush=True)
    for round_ in range(1, args.rounds + 1):
        for label, src in sources.items():
            env = {**os.environ, "SPARKHIST_SERVE_PROCESSES": "1",
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(src).resolve()), os.environ.get("PYTHONPATH")]))}
            with servers.sparkhist(logs.log_dir, work / "store", work, env) as sh:
                with httpx.Client(timeout=600) as client:
                    servers.wait_listed(sh, args.apps + 1, client, 1200)
                    servers.wait_first_scan(sh, client, 1200)
                    stages = client.get(sh.url(f"applications/{logs.big_app_id}/stages")).json()
                    stage = max(stages, key=lambda s: s["numTasks"])
                    endpoints = {"list": "applications", "stages": f"applications/{logs.big_app_id}/stages",
                                 "tasks": f"applications/{logs.big_app_id}/stages/{stage['stageId']}/"
                                          f"{stage['attemptId']}/taskList"}
                    for path in endpoints.values():
                        client.get(sh.url(path))
                cells = []
                for name, path in endpoints.items():
                    cpu = sh.cpu_seconds()
                    with noise.ForeignLoad(interval=1.0) as load:
                        closed = latency.measure(sh.url(path), total=args.requests, concurrency=args.concurrency,
                                                 budget_s=args.budget)
                    per = (sh.cpu_seconds() - cpu) / max(1, closed.requests) * 1000
                    opened = latency.measure_fixed_rate(sh.url(path), rate=args.rates[0], duration_s=args.budget / 2,
                                                        concurrency=args.concurrency) if name != "list" else None
                    cells.append(f"{name} {per:.3f} ms CPU, {closed.per_second:,.0f}/s, p50 "
                                 f"{latency.fmt_ms(closed.p50_ms, closed.p50_censored)}"
                                 + (f", {args.rates[0]:g} req/s p50 {latency.fmt_ms(opened.p50_ms, opened.p50_censored)}"
                                    if opened else "") + f" (others {load.mean():.2f} cores)")
            print(f"round {round_}, {label}: " + "; ".join(cells) + f"; load {os.getloadavg()[0]:.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what")
    floor = sub.add_parser("floor", help="run the floor server alone (what the benchmark starts)")
    floor.add_argument("--port", type=int, required=True)
    floor.add_argument("--answers", type=Path, required=True, help="a directory holding the files plain and gzip")
    cpu = sub.add_parser("cpu", help="server CPU per answer of sparkhist from several copies of src/, interleaved")
    cpu.add_argument("--src", action="append", required=True, help="LABEL=DIR, a copy of src/ (repeat)")
    cpu.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--apps", type=int, default=300)
    parser.add_argument("--processes", type=int, default=2, help="sparkhist's serving processes (its default on 2 cores)")
    parser.add_argument("--requests", type=int, default=20_000, help="closed loop: requests at most")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per run (closed loop at most, fixed rate exactly)")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rates", type=lambda v: [float(x) for x in v.split(",")], default=[200.0, 1000.0])
    args = parser.parse_args()
    if args.what == "floor":
        serve_floor(args.port, (args.answers / "plain").read_bytes(), (args.answers / "gzip").read_bytes())
    elif args.what == "cpu":
        main_cpu(args)
    else:
        main_bench(args)


if __name__ == "__main__":
    main()
