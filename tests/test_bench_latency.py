"""The latency harness's figures (``bench/latency.py``): a request unanswered when a run
ends stays in the percentiles as a lower bound (never dropped), failed requests are
counted apart, and every answer is read in full, against a local HTTP server that
answers some requests at once, some late, some never within the run and some with 500.
The fixed-rate (open-loop) mode times each request from when it was due: a server that
stalls once is charged for every request due during the stall, not one per client.
"""

from __future__ import annotations

import http.server
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import latency  # bench/ is not a package: on sys.path above

BODY = b"x" * 70_000
STALL_S = 2.0


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for every handler: nothing left running
    release: threading.Event
    served: int
    lock: threading.Lock
    stall_until: float  # time.monotonic(): every request arriving before then waits until then


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.served += 1
            n = self.server.served
        mode, _, arg = self.path.strip("/").partition("/")
        if mode == "stall":  # request number ``arg`` stalls the whole server for STALL_S once
            with self.server.lock:
                if n == int(arg):
                    self.server.stall_until = time.monotonic() + STALL_S
                until = self.server.stall_until
            if (wait := until - time.monotonic()) > 0:
                time.sleep(wait)
        try:
            if mode == "hang" and n > int(arg) and n % 3 != 0:  # past the warm-up, two in three never answered
                self.server.release.wait(30)
                return
            if mode == "fail" and n % 2 == 0:
                self._send(500, b"no")
                return
            if mode == "slow":
                time.sleep(0.05)
            if mode == "chunked":
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for part in (BODY[:1000], BODY[1000:]):
                    self.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
                return
            self._send(200, BODY)
            if mode == "once":  # closed after each answer without saying so: an idle keep-alive timeout
                self.close_connection = True
        except OSError:  # the client gave up on this connection
            self.close_connection = True

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.release, httpd.served, httpd.lock = threading.Event(), 0, threading.Lock()
    httpd.stall_until = 0.0
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,))
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_censored_percentile_is_exact_below_every_unanswered_request() -> None:
    samples = [(0.01, False), (0.02, False), (0.03, False), (0.5, True)]
    assert latency.censored_percentile(samples, 0.5) == (0.02, False)
    assert latency.censored_percentile(samples, 0.99) == (0.5, True)
    # An unanswered request pending for less time than some answers: every rank at or above it is a bound.
    samples = [(0.01, False), (0.02, True), (0.9, False), (1.0, False)]
    assert latency.censored_percentile(samples, 0.25) == (0.01, False)
    assert latency.censored_percentile(samples, 0.5) == (0.02, True)
    assert latency.censored_percentile(samples, 0.99) == (1.0, True)


def test_unanswered_requests_stay_in_the_percentiles_as_lower_bounds(server: str) -> None:
    budget = 0.6
    started = time.perf_counter()
    # Number 1 is the first request, alone; 2-6 the warm-up (one per client); of the timed 7-11, 9 is answered.
    result = latency.measure(f"{server}/hang/6", total=5, concurrency=5, budget_s=budget, warmup=0)
    took = time.perf_counter() - started
    assert result.asked == 5
    assert result.requests == 1 and result.unanswered == 4 and result.errors == 0
    assert result.fewer_answered
    # Half the requests pending at the run's end (twice the budget): the median is theirs, a lower bound.
    assert result.p50_censored and result.p99_censored
    assert 2 * budget * 0.9 <= result.p50_ms / 1000 <= took
    assert result.mean_ms >= 0.5 * result.p50_ms
    assert "≥" in result.summary() and "4 unanswered" in result.summary()


def test_all_answered_gives_exact_percentiles_and_the_request_rate(server: str) -> None:
    result = latency.measure(f"{server}/slow", total=40, concurrency=4, budget_s=10, warmup=2)
    assert (result.asked, result.requests, result.unanswered, result.errors) == (40, 40, 0, 0)
    assert not result.p50_censored and not result.p99_censored and not result.fewer_answered
    assert 50 <= result.p50_ms <= result.p99_ms < 5000
    assert 0 < result.per_second <= 4 / 0.05 * 1.1  # four clients, each answer 50 ms late at least
    assert "≥" not in result.summary()


def test_failed_requests_are_counted_apart_not_in_the_percentiles(server: str) -> None:
    result = latency.measure(f"{server}/fail", total=10, concurrency=1, budget_s=10, warmup=0)  # 1 alone, 2 warm-up
    assert result.error_kinds == {"HTTP 500": 5}  # 4, 6, 8, 10, 12 of the timed 3-12
    assert (result.asked, result.requests, result.unanswered) == (10, 5, 0)
    assert not result.p50_censored and result.fewer_answered


def test_chunked_and_sized_bodies_are_read_in_full_on_one_connection(server: str) -> None:
    for path in ("chunked", "plain"):
        result = latency.measure(f"{server}/{path}", total=30, concurrency=3, budget_s=10, warmup=3)
        assert (result.requests, result.errors, result.unanswered) == (30, 0, 0), path


def test_a_kept_connection_the_server_closed_is_opened_again_not_failed(server: str) -> None:
    result = latency.measure(f"{server}/once", total=40, concurrency=4, budget_s=10, warmup=4)
    assert (result.requests, result.errors, result.unanswered) == (40, 0, 0), result.error_kinds


def _at_least(result: latency.Latency, seconds: float) -> int:
    return sum(1 for value, _ in result.samples if value >= seconds)


def test_fixed_rate_charges_a_stall_to_every_request_due_during_it(server: str) -> None:
    rate, clients = 100.0, 10
    # Number 1 is the first request, alone; 2-21 the warm-up (20, at least one per client); the stall
    # comes with the 100th timed request, ~1 s into a 4 s schedule.
    result = latency.measure_fixed_rate(f"{server}/stall/121", rate=rate, duration_s=4.0, concurrency=clients)
    assert (result.asked, result.requests, result.unanswered, result.errors) == (400, 400, 0, 0)
    assert result.rate == rate and len(result.samples) == 400
    # A request due `s` seconds into the stall waits at least STALL_S - s: about rate x (STALL_S - x) of them
    # wait x or more. Timed from when it was sent, only the one in flight on each connection would.
    for x in (0.5, 1.0, 1.5):
        expected = rate * (latency_stall := STALL_S - x)
        assert 0.8 * expected <= _at_least(result, x) <= rate * (latency_stall + 0.3) + clients, x
    assert result.p99_ms >= 1000 * STALL_S * 0.8


def test_closed_loop_sees_one_slow_request_per_client_in_the_same_stall(server: str) -> None:
    clients = 10
    result = latency.measure(f"{server}/stall/121", total=400, concurrency=clients, budget_s=10)
    assert (result.requests, result.unanswered, result.errors) == (400, 0, 0)
    assert 1 <= _at_least(result, 0.5) <= clients  # the stall is one sample per client: coordinated omission


def test_fixed_rate_on_a_server_that_keeps_up_measures_its_service_time(server: str) -> None:
    # 50 ms per answer, each of 8 connections due every 200 ms: no request waits for its connection.
    result = latency.measure_fixed_rate(f"{server}/slow", rate=40.0, duration_s=2.0, concurrency=8, warmup=8)
    assert (result.asked, result.requests, result.unanswered, result.errors) == (80, 80, 0, 0)
    assert not result.p50_censored and not result.p99_censored
    assert 50 <= result.p50_ms <= 150 and result.p99_ms < 400
    assert "fixed rate 40 req/s" in result.summary()


def test_fixed_rate_on_a_server_too_slow_for_the_rate_falls_behind(server: str) -> None:
    # 50 ms per answer, each of 2 connections due every 20 ms: the queue grows, and so does the latency.
    result = latency.measure_fixed_rate(f"{server}/slow", rate=100.0, duration_s=1.0, concurrency=2, warmup=2)
    assert result.requests + result.unanswered == result.asked == 100
    # By the end of the schedule each connection has ~30 requests queued: the answers that follow each
    # waited for the ones before it. Timed from when they were sent, every one would be ~50 ms.
    assert max(value for value, censored in result.samples if not censored) >= 0.5
    assert result.p99_ms >= 500


def test_fixed_rate_counts_requests_never_sent_behind_a_hung_one(server: str) -> None:
    duration = 0.5
    # 1 alone, 2-6 the warm-up; from 7 on two requests in three are never answered, and their connections
    # are stuck: the requests due on them later are never sent.
    result = latency.measure_fixed_rate(f"{server}/hang/6", rate=20.0, duration_s=duration, concurrency=5, warmup=0)
    assert result.asked == 10 and result.errors == 0
    assert result.requests + result.unanswered == 10 and result.unsent >= 1
    assert result.unsent < result.unanswered  # the hung ones themselves, in flight, are not "unsent"
    # Every request due in the schedule and not answered waited at least until the end (twice the duration).
    assert all(value >= duration for value, censored in result.samples if censored)
    assert result.p50_censored and "never sent" in result.summary()


# --------------------------------------------------------------------------- the floor server (bench/latency_floor.py)
def _answer(body: bytes, encoding: str | None) -> bytes:
    head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" + (f"content-encoding: {encoding}\r\n" if encoding else "")
    return head.encode() + f"content-length: {len(body)}\r\n\r\n".encode() + body


def test_the_floor_server_answers_each_request_its_fixed_bytes_as_the_client_asks(tmp_path: Path) -> None:
    """The floor server (its own process, as the benchmark runs it) sends the gzip answer to a request that
    accepts gzip and the plain one otherwise, every request of a kept-alive connection, heads split over
    writes or pipelined in one; the lean client's closed loop and fixed rate read them all."""
    import gzip
    import socket

    import latency_floor

    body = b'[{"stageId": 1}]' * 200
    plain, gzipped = _answer(body, None), _answer(gzip.compress(body), "gzip")
    lean = latency_floor.lean_request("http://127.0.0.1:1/api/v1/x", gzip=True)
    bare = latency_floor.lean_request("http://127.0.0.1:1/api/v1/x", gzip=False)
    assert b"accept-encoding: gzip" in lean.lower() and b"accept-encoding" not in bare.lower()
    with latency_floor.floor_process(plain, gzipped, tmp_path) as (base, pid):
        url = f"{base}/api/v1/x"
        assert latency_floor.raw_answer(url, lean) == gzipped
        assert latency_floor.raw_answer(url, bare) == plain
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(lean[:7])
            time.sleep(0.05)
            sock.sendall(lean[7:] + bare + lean)  # the rest of one head, then two pipelined
            expected, data = gzipped + plain + gzipped, b""
            while len(data) < len(expected):
                chunk = sock.recv(65536)
                assert chunk, "the floor server closed a kept-alive connection"
                data += chunk
            assert data == expected
        closed = latency.measure(url, total=500, concurrency=10, budget_s=10)
        opened = latency.measure_fixed_rate(url, rate=200, duration_s=1, concurrency=10)
        assert (closed.requests, closed.errors, opened.requests, opened.errors) == (500, 0, 200, 0)
        assert latency_floor._cpu_seconds(pid) > 0
