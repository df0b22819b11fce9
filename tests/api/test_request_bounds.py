"""Safe in front of people: what one request may ask is bounded, and a client's mistake
is the client's (a 4xx like the SHS's, never a 500, never a source failure).

* ``quantiles`` are at most 128 finite numbers in [0, 1]: 12,000 of them built a 131 MB
  answer (``NaN`` and ``inf`` were 500s with a traceback);
* an id with an encoded NUL is Jetty's 400, an over-long request target its 414;
* an implausible application id (over 255 characters, or a file name over 255 bytes) is
  answered from the index, never looked up in the log directory: a 300-character id
  marked the log directory degraded for a minute and logged the id twice;
* integers and path segments convert as Java does (32 bits, ASCII digits in paths);
* connections: a request head must arrive within the header timeout (half-open
  connections stayed open for over 70 s), and beyond ``SPARKHIST_HTTP_MAX_CONNECTIONS``
  open connections a request is answered 503 at once.

Expected answers were taken from the stock SHS 4.0.1 where it has one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sparkhist.api.v1.params import MAX_QUANTILES
from sparkhist.config import bundled_samples
from support.conformance import SPARK401
from support.server import copy_logs, runtime_for

DONE = "local-1795972896863"  # finished, single file, uncompressed
APP = f"/api/v1/applications/{DONE}"
JETTY_400 = "<h1>Bad Message 400</h1><pre>reason: Bad Request</pre>"
JETTY_414 = "<h1>Bad Message 414</h1><pre>reason: URI Too Long</pre>"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, object]]:
    base = tmp_path_factory.mktemp("bounds")
    logs = copy_logs(SPARK401 / "eventlogs", base / "logs")
    with runtime_for(logs, base / "store") as (runtime, client):
        yield runtime, client


def _source_calls(runtime: object) -> int:
    status = runtime.source.status()  # type: ignore[attr-defined]
    return sum(status.requests.values())


# ---------------------------------------------------------------------------------- quantiles
def test_many_quantiles_are_a_400_that_costs_no_memory(served) -> None:
    _, client = served
    many = ",".join(["0.5"] * 1000)  # 4 KB of URL: within the request-line bound
    tracemalloc.start()
    try:
        started = time.monotonic()
        answer = client.get(f"{APP}/stages?withSummaries=true&quantiles={many}")
        seconds = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "text/plain"
    assert answer.text == f'Bad value for parameter "quantiles".  Expected at most {MAX_QUANTILES} values, got 1000'
    assert peak < 5 << 20, f"one refused request allocated {peak / 1e6:.0f} MB"  # it was 30 MB (131 MB at 12,000)
    assert seconds < 2.0


def test_twelve_thousand_quantiles_are_refused_at_the_request_line(served) -> None:
    _, client = served
    answer = client.get(f"{APP}/stages/0/0/taskSummary?quantiles=" + ",".join(["0.5"] * 12_000))
    assert (answer.status_code, answer.text) == (414, JETTY_414)  # the SHS's Jetty answers the same


def test_the_most_quantiles_allowed_still_answer(served) -> None:
    _, client = served
    qs = [i / (MAX_QUANTILES - 1) for i in range(MAX_QUANTILES)]
    answer = client.get(f"{APP}/stages/0/0/taskSummary?quantiles=" + ",".join(map(str, qs)))
    assert answer.status_code == 200
    assert answer.json()["quantiles"] == qs and len(answer.json()["duration"]) == MAX_QUANTILES


@pytest.mark.parametrize(("value", "message"), [
    ("nan", 'Expected a double, got "nan"'),  # the SHS's answer (Java reads only "NaN")
    ("inf", 'Expected a double, got "inf"'),
    ("NaN", 'Expected a number between 0 and 1, got "NaN"'),  # beyond the SHS, which answers NaN quantiles
    ("Infinity", 'Expected a number between 0 and 1, got "Infinity"'),
    ("1e400", 'Expected a number between 0 and 1, got "1e400"'),
    ("1.5", 'Expected a number between 0 and 1, got "1.5"'),
    ("-0.1", 'Expected a number between 0 and 1, got "-0.1"'),
    ("1_0", 'Expected a double, got "1_0"'),  # Python's float() reads it; Java does not
])
def test_a_bad_quantile_is_a_400_without_a_traceback(served, caplog, value: str, message: str) -> None:
    _, client = served
    with caplog.at_level(logging.WARNING):
        for path in (f"{APP}/stages/0/0/taskSummary", f"{APP}/stages", f"{APP}/stages/0"):
            answer = client.get(f"{path}?withSummaries=true&quantiles={value}")
            assert (answer.status_code, answer.headers["content-type"]) == (400, "text/plain")
            assert answer.text == f'Bad value for parameter "quantiles".  {message}'
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize(("value", "expected"), [
    ("%200.5", [0.5]), ("0.5%0a", [0.5]), ("0x.8p0", [0.5]), ("0.5d", [0.5]), (".25", [0.25]),
    ("0.5,", [0.5]), (",", []), ("0.9,0.1", [0.1, 0.9]), ("-0", [-0.0]),
])
def test_quantiles_read_as_java_reads_them(served, value: str, expected: list[float]) -> None:
    """What ``Double.parseDouble`` and Scala's ``split(",")`` accept (each checked on the SHS 4.0.1)."""
    _, client = served
    answer = client.get(f"{APP}/stages/0/0/taskSummary?quantiles={value}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["quantiles"] == expected


# ---------------------------------------------------------------------------------- ids and paths
@pytest.mark.parametrize("path", ["/api/v1/applications/a%00b", "/api/v1/applications/a%00b/jobs",
                                  f"{APP}/jobs%00", "/api/v1/applications/a%zzb", "/api/v1/applications/a%2"])
def test_an_encoded_nul_or_broken_escape_in_the_path_is_jettys_400(served, caplog, path: str) -> None:
    runtime, client = served
    calls = _source_calls(runtime)
    with caplog.at_level(logging.WARNING):
        answer = client.get(path)
    assert (answer.status_code, answer.text) == (400, JETTY_400)
    assert answer.headers["content-type"] == "text/html;charset=iso-8859-1"
    assert not [r for r in caplog.records if r.exc_info]
    assert _source_calls(runtime) == calls


def test_a_request_target_over_8_kib_is_jettys_414(served) -> None:
    runtime, client = served
    calls = _source_calls(runtime)
    answer = client.get("/api/v1/applications/" + "x" * 9000)
    assert (answer.status_code, answer.text) == (414, JETTY_414)
    assert _source_calls(runtime) == calls


@pytest.mark.parametrize("app_id", ["x" * 300, "é" * 200, "a\x01b", "x" * 3000])
def test_an_implausible_id_never_reaches_the_source(served, caplog, app_id: str) -> None:
    """404s with the SHS's bodies, no source call, the health untouched, one short log line."""
    runtime, client = served
    calls = _source_calls(runtime)
    quoted = "/api/v1/applications/" + urllib.parse.quote(app_id, safe="")
    with caplog.at_level(logging.INFO):
        for path, body in ((quoted, f"unknown app: {app_id}"), (f"{quoted}/jobs", f"no such app: {app_id}")):
            answer = client.get(path)
            assert (answer.status_code, answer.text) == (404, body)
    assert _source_calls(runtime) == calls
    health = client.get("/health/details").json()
    assert health["status"] == "ok", health["reasons"]
    shown = repr(app_id[:20])[1:-1]
    mentions = [r.getMessage() for r in caplog.records if r.name.startswith("sparkhist") and shown in r.getMessage()]
    assert len(mentions) == 2, mentions  # one line per request
    assert all(len(m) < 250 for m in mentions)


def test_a_plausible_unknown_id_is_still_looked_up(served) -> None:
    runtime, client = served
    calls = _source_calls(runtime)
    assert client.get("/api/v1/applications/app-20990101000000-0000").status_code == 404
    assert _source_calls(runtime) > calls  # the on-demand lookup ran


def test_an_encoded_slash_stays_inside_its_segment(served) -> None:
    _, client = served
    assert client.get("/api/v1/applications/a%2Fb").text == "unknown app: a/b"  # as the SHS
    assert client.get(f"/api/v1/applications/{DONE}%2Fjobs").text == f"unknown app: {DONE}/jobs"


@pytest.mark.parametrize(("path", "status", "content_type"), [
    ("/jobs/2147483647", 404, "text/plain"),  # unknown job: 2147483647
    ("/jobs/2147483648", 404, "text/html;charset=iso-8859-1"),  # fails Int conversion
    ("/jobs/%D9%A3", 404, "text/plain"),  # an Arabic-Indic 3 is no \d: falls through, the URI as message
    ("/jobs/00", 200, "application/json"),
    ("/stages/0/2147483648", 404, "text/html;charset=iso-8859-1"),
    ("/storage/rdd/2147483648", 404, "text/html;charset=iso-8859-1"),
    ("/sql/9223372036854775807", 404, "text/plain"),
    ("/sql/9223372036854775808", 404, "text/html;charset=iso-8859-1"),
    ("/stages/0/0/taskList?offset=2147483648", 404, "text/html;charset=iso-8859-1"),
    ("/stages/0/0/taskList?length=%202", 404, "text/html;charset=iso-8859-1"),  # Integer.parseInt does not trim
    ("/stages/0/0/taskList?length=", 200, "application/json"),  # empty: the default
    ("/stages/0/0/taskList?length=0", 500, "text/html;charset=iso-8859-1"),  # KVStoreView.max(0) throws
    ("/jobs?status=%20succeeded", 404, "text/html;charset=iso-8859-1"),  # enum names are not trimmed
    ("/jobs?status=", 200, "application/json"),
])
def test_numbers_and_names_convert_as_jersey_converts_them(served, path: str, status: int, content_type: str) -> None:
    """Each answer's status and content type is the SHS 4.0.1's for the same request."""
    _, client = served
    answer = client.get(APP + path)
    assert (answer.status_code, answer.headers["content-type"]) == (status, content_type), answer.text[:200]


def test_list_parameters_read_as_jersey_reads_them(served) -> None:
    _, client = served
    everything = client.get("/api/v1/applications").json()
    assert client.get("/api/v1/applications?limit=").json() == everything
    assert client.get("/api/v1/applications?minDate=").json() == everything
    assert client.get("/api/v1/applications?limit=%2B2").json() == everything[:2]
    assert client.get("/api/v1/applications?status=").json() == []
    assert client.get("/api/v1/applications?limit=2147483648").status_code == 404
    assert client.get("/api/v1/applications?limit=1_0").status_code == 404
    assert client.get(f"{APP}/jobs?status=").json() == []
    assert client.get(f"{APP}/stages/0/0?details=%20true").json().get("tasks") is None  # parseBoolean(" true")
    assert client.get(f"{APP}/stages/0/0?details=TRUE").json().get("tasks") is not None


# ---------------------------------------------------------------------------------- connections
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


HEADER_TIMEOUT = 3.0
# How late past its header timeout a connection may still be closed: a loaded CI machine
# (load 20 on 2 cores) runs the server's timers seconds late; the bug this guards held
# such connections open for over 70 s.
CLOSE_SLACK = 10.0
MAX_CONNECTIONS = 260


@pytest.fixture(scope="module")
def server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``sparkhist serve`` (uvicorn as in production) with a short header timeout."""
    base = tmp_path_factory.mktemp("serve")
    logs = copy_logs(Path(bundled_samples()), base / "logs")
    port = _free_port()
    env = {**os.environ, "SPARKHIST_HTTP_HEADER_TIMEOUT": f"{HEADER_TIMEOUT}s",
           "SPARKHIST_HTTP_MAX_CONNECTIONS": str(MAX_CONNECTIONS), "SPARKHIST_INDEX_WORKERS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "sparkhist.cli", "serve", "--log-dir", str(logs), "--store",
                             str(base / "store"), "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/api/v1/version", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "sparkhist serve did not start"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def _connect(url: str, first_bytes: bytes) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    if first_bytes:
        sock.sendall(first_bytes)
    return sock


def _closed_by_server(sock: socket.socket, deadline: float) -> bool:
    """True when the server closes ``sock`` (reads end of stream) before ``deadline``."""
    try:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.close()


def test_half_open_connections_are_closed_after_the_header_timeout(server_process: str) -> None:
    url = server_process
    # (socket, when its header timeout started): each is judged against its own clock
    connections: list[tuple[socket.socket, float]] = []
    stop = threading.Event()
    thread = None
    try:
        started = time.monotonic()
        for _ in range(200):  # half a request line each
            connections.append((_connect(url, b"GET /api/v1/ver"), time.monotonic()))
        for _ in range(10):  # nothing at all
            connections.append((_connect(url, b""), time.monotonic()))
        trickled = _connect(url, b"G")
        connections.append((trickled, time.monotonic()))

        def trickle() -> None:  # one byte every 0.5 s: more bytes do not buy more time
            for byte in b"ET /api/v1/version HTTP/1.1\r\nX-Slow: " + b"y" * 100:
                if stop.wait(0.5):
                    return
                try:
                    trickled.sendall(bytes([byte]))
                except OSError:
                    return

        thread = threading.Thread(target=trickle, daemon=True)
        thread.start()
        with httpx.Client(base_url=url, timeout=5) as client:
            # a kept-alive connection that then sends half a request is bounded too
            assert client.get("/api/v1/version").status_code == 200
            assert client.get(f"/api/v1/applications/{'local-1795972905472'}").status_code == 200
        keep_alive = _connect(url, b"GET /api/v1/version HTTP/1.1\r\nHost: x\r\n\r\n")
        connections.append((keep_alive, float("inf")))
        time.sleep(0.2)
        keep_alive.recv(65536)
        keep_alive.sendall(b"GET /api/v1/vers")
        connections[-1] = (keep_alive, time.monotonic())
        closed, first_closed = [], None
        for sock, opened in connections:
            closed.append(_closed_by_server(sock, opened + HEADER_TIMEOUT + CLOSE_SLACK))
            first_closed = first_closed or time.monotonic()
    finally:
        stop.set()
        if thread is not None:
            thread.join()
        for sock, _ in connections:
            sock.close()  # (a second close is a no-op) none is left to the garbage collector
    assert all(closed), (f"{closed.count(False)} of {len(closed)} connections still open "
                         f"{HEADER_TIMEOUT + CLOSE_SLACK} s after their header timeout started")
    assert first_closed - started >= HEADER_TIMEOUT - 0.5  # not closed at once
    assert httpx.get(f"{url}/api/v1/version", timeout=5).status_code == 200


def _head(pad: int, *, close: bool = False) -> bytes:
    """A GET of /api/v1/version whose head (request line and headers) is ``pad`` bytes long and more."""
    return (b"GET /api/v1/version HTTP/1.1\r\nHost: x\r\n" + (b"Connection: close\r\n" if close else b"")
            + b"X-Pad: " + b"y" * pad + b"\r\n\r\n")


def _answers(sock: socket.socket, count: int) -> list[tuple[int, bytes]]:
    """(status, body) of the next ``count`` answers on ``sock`` (Content-Length bodies), fewer if it closes."""
    sock.settimeout(10 + CLOSE_SLACK)
    data, answers = b"", []
    while len(answers) < count:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            head = data[:head_end].decode("latin-1").lower()
            length = int(head.split("content-length:", 1)[1].split("\r\n", 1)[0])
            if len(data) >= head_end + 4 + length:
                body_end = head_end + 4 + length
                answers.append((int(head.split(" ", 2)[1]), data[head_end + 4:body_end]))
                data = data[body_end:]
                continue
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            break
        data += chunk
    return answers


def _send(sock: socket.socket, data: bytes, piece: int | None) -> None:
    """``data`` in one write, or in writes of ``piece`` bytes a little apart (each its own read)."""
    if piece is None:
        with contextlib.suppress(OSError):  # refused and closed before the rest was sent
            sock.sendall(data)
        return
    for i in range(0, len(data), piece):
        try:
            sock.sendall(data[i:i + piece])
        except OSError:  # refused and closed before the rest was sent
            return
        time.sleep(0.005)


@pytest.mark.parametrize("piece", [None, 1000], ids=["one write", "1 KB writes"])
def test_a_request_head_over_16_kib_is_a_400_and_the_connection_closed(server_process: str, piece: int | None) -> None:
    """At most 16 KiB of request line and headers, however the head arrives: a longer one is uvicorn's
    400 and the connection is closed (its rest never read); one just under is answered."""
    url = server_process
    with _connect(url, b"") as sock:
        _send(sock, _head(16 * 1024 - 200), piece)
        assert [status for status, _ in _answers(sock, 1)] == [200]
    for pad in (16 * 1024 + 10, 1 << 20):
        with _connect(url, b"") as sock:
            started = time.monotonic()
            _send(sock, _head(pad), piece)
            assert _answers(sock, 2) == [(400, b"Invalid HTTP request received.")]  # then the end: closed
            assert time.monotonic() - started < 5 + CLOSE_SLACK
    assert httpx.get(f"{url}/api/v1/version", timeout=5).status_code == 200


def test_the_head_bound_is_per_request_on_a_kept_alive_connection(server_process: str) -> None:
    """Requests of 10 KiB heads one after another, and pipelined in one write (42 KiB of heads), are all
    answered; an oversized head after them is still refused."""
    url = server_process
    with _connect(url, b"") as sock:
        for _ in range(3):
            sock.sendall(_head(10 * 1024))
            assert [status for status, _ in _answers(sock, 1)] == [200]
        sock.sendall(_head(14 * 1024) * 3)
        assert [status for status, _ in _answers(sock, 3)] == [200, 200, 200]
        sock.sendall(_head(17 * 1024))
        assert _answers(sock, 2) == [(400, b"Invalid HTTP request received.")]


def test_beyond_the_connection_limit_a_request_is_a_503_at_once(server_process: str) -> None:
    url = server_process
    idle = [_connect(url, b"") for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.3)  # let the server accept them all
        started = time.monotonic()
        refused = httpx.get(f"{url}/api/v1/version", timeout=5)
        assert refused.status_code == 503 and time.monotonic() - started < 2.0
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 5
    while httpx.get(f"{url}/api/v1/version", timeout=5).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)
