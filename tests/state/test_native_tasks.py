"""The compiled task-event path against the Python path: every log indexes to the same state.

:mod:`sparkhist.state.native_tasks` hands ``TaskStart``/``TaskEnd`` lines to the compiled
``sparkhist_native`` module (``native/``) and applies what it decodes; the Python path
(``orjson`` → ``check_shape`` → ``AppState.apply``) is the reference. Each log below is
indexed by the real :class:`~sparkhist.scan.indexer.Indexer` both ways, and the two
states must be equal (every accumulator, deep) and the warnings the same:

* the generated pyspark corpus (every codec and layout), the rich corpus (failures,
  kills, speculation, SQL, streaming, a cluster), the conformance logs and the samples;
* hostile strings in every string field the task path keeps;
* every field of a real ``TaskStart``/``TaskEnd`` set to every awkward value (wrong types,
  longs out of range, floats, containers, nulls), keys removed, duplicated, and
  hypothesis' mutations of whole logs (bytes and JSON);
* huge lines and lines that are not JSON.

Then the compiled module is checked to be in use (not silently off), and
``SPARKHIST_NATIVE=0`` to turn it off.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sparkhist.scan.indexer import Indexer
from sparkhist.state import job_listener, native_tasks
from sparkhist.state.app_state import AppState
from sparkhist.state.entities import EXECUTOR_METRIC_NAMES, N_METRICS
from sparkhist.store.snapshots import SnapshotStore
from support import hostile
from support.corpus import load_manifest
from support.fuzz import (
    AWKWARD,
    apply_all,
    byte_mutations,
    event_names,
    field_names,
    fuzz_settings,
    json_mutations,
    load,
    seed,
    seed_names,
)
from support.rich_corpus import ensure_rich_corpus

NATIVE, WHY = native_tasks.native_decoder()
#: A finished Spark 4.0.1 log with SQL: its lines 11 (TaskStart), 13 and 14 (TaskEnd).
SPARK4 = "spark-4.0.1/local-1795972896863"


def require_native() -> native_tasks.Decoder:
    """The compiled decoder; a skip where it is not installed (``SPARKHIST_NO_SKIPS=1``, as CI
    sets it, makes that a failure: CI installs ``native/``)."""
    if NATIVE is None:
        pytest.skip(f"the compiled path is off: {WHY}")
    return NATIVE


def test_the_compiled_module_is_in_use() -> None:
    """Where ``native/`` is installed the indexer's path is the compiled one, not a silent fallback."""
    assert native_tasks.native_decoder()[0] is require_native()


@pytest.fixture
def fast() -> native_tasks.FastPath:
    return native_tasks._make(require_native())


def index(path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp: Path,
          fast: native_tasks.FastPath | None) -> tuple[AppState, list[str]]:
    """The state the indexer builds of the log at ``path`` with ``fast`` (None: the Python
    path), and the warnings it logged."""
    monkeypatch.setattr(native_tasks, "fast_path", lambda: fast)
    source, event_log = load(path)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        snapshot = Indexer(source, SnapshotStore(str(tmp)), AppState).refresh(event_log, persist=False)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    state = snapshot.state
    assert isinstance(state, AppState)
    return state, warnings


def differences(a: Any, b: Any, where: str = "state") -> Iterator[str]:
    """Where two states differ (the first few), for a readable failure."""
    if type(a) is not type(b):
        yield f"{where}: {type(a).__name__} != {type(b).__name__}"
    elif hasattr(a, "__dataclass_fields__"):
        for f in fields(a):
            yield from differences(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, dict):
        if a.keys() != b.keys():
            yield f"{where}: keys {sorted(map(repr, a.keys() ^ b.keys()))[:5]} differ"
        for k in a.keys() & b.keys():
            yield from differences(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, list | tuple) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from differences(x, y, f"{where}[{i}]")
    elif a != b:
        yield f"{where}: {a!r:.200} != {b!r:.200}"


def assert_same(path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp: Path,
                fast: native_tasks.FastPath) -> AppState:
    reference, ref_warnings = index(path, monkeypatch, caplog, tmp, None)
    native, warnings = index(path, monkeypatch, caplog, tmp, fast)
    found = list(differences(reference, native))
    assert not found, f"{path}: the compiled path differs: {found[:10]}"
    assert native == reference
    assert warnings == ref_warnings
    return native


def log_paths(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if not p.name.startswith(".") and not p.name.endswith(".json"))


# --------------------------------------------------------------------------- real logs
@pytest.mark.parametrize("name", seed_names())
def test_conformance_logs_and_samples(name: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                                      tmp_path: Path, fast: native_tasks.FastPath) -> None:
    assert_same(seed(name).path, monkeypatch, caplog, tmp_path, fast)


@pytest.mark.spark
@pytest.mark.slow
def test_generated_corpus(spark_corpus: Path, corpus_manifest: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch,
                          caplog: pytest.LogCaptureFixture, tmp_path: Path, fast: native_tasks.FastPath) -> None:
    tasks = 0
    for entry in corpus_manifest:
        state = assert_same(spark_corpus / entry["path"], monkeypatch, caplog, tmp_path, fast)
        tasks += len(state.tasks)
    assert len(corpus_manifest) >= 10 and tasks > 300


@pytest.mark.spark
@pytest.mark.slow
def test_rich_corpus(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path,
                     fast: native_tasks.FastPath) -> None:
    logs = ensure_rich_corpus()
    kinds: set[str] = set()
    for entry in load_manifest(logs):
        state = assert_same(logs / entry["path"], monkeypatch, caplog, tmp_path, fast)
        kinds.update("FAILED" if t.failed else "KILLED" if t.killed else "OK" for t in state.tasks.values())
    assert {"FAILED", "KILLED", "OK"} <= kinds  # failures and kills went through the compiled path too


def test_hostile_strings(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path,
                         fast: native_tasks.FastPath) -> None:
    directory = hostile.write_logs(tmp_path / "logs", hostile.HOSTILE)
    for path in log_paths(directory):
        state = assert_same(path, monkeypatch, caplog, tmp_path, fast)
        assert any(t.host not in ("", "localhost") for t in state.tasks.values())


# --------------------------------------------------------------------------- damaged task events
def spark4_lines() -> list[bytes]:
    return [line for line in seed(SPARK4).lines() if line.strip()]


def task_lines() -> list[int]:
    """Indexes of SPARK4's task events."""
    return [i for i, line in enumerate(spark4_lines()) if line.startswith(b'{"Event":"SparkListenerTask')]


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key path of a JSON document (list items by index)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield (*prefix, k)
            yield from paths_of(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:3]):
            yield (*prefix, i)
            yield from paths_of(v, (*prefix, i))


def edited(doc: Any, path: tuple[Any, ...], value: Any) -> bytes:
    doc = json.loads(json.dumps(doc))
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is _REMOVE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return orjson.dumps(doc) if _fits(doc) else json.dumps(doc, separators=(",", ":")).encode()


def _fits(doc: Any) -> bool:
    try:
        orjson.dumps(doc)
    except (TypeError, orjson.JSONEncodeError):
        return False
    return True


_REMOVE = object()
#: The awkward values that fit in one line of a log (the nested ones go in the fuzz test).
VALUES = [v for v in AWKWARD if len(json.dumps(v)) < 100] + ["", "Success", "TaskKilled", "ExceptionFailure",
                                                              "internal.metrics.x", "sql", _REMOVE]


def write(directory: Path, name: str, lines: list[bytes]) -> Path:
    path = directory / name
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


@pytest.mark.slow
def test_every_task_field_set_to_every_awkward_value(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                                                      tmp_path: Path, fast: native_tasks.FastPath) -> None:
    """One log per (task event, key path) with that value replaced by each awkward value in
    turn (one event per value, appended to the log): every branch of the compiled decoder
    meets every type, and the Python path decides what it declines."""
    lines = spark4_lines()
    checked = 0
    for i in task_lines():
        doc = orjson.loads(lines[i])
        paths = [p for p in paths_of(doc) if p != ("Event",)]
        for n, path in enumerate(paths):
            variants = [edited(doc, path, value) for value in VALUES]
            log = write(tmp_path, f"edit-{i}-{n}", [*lines[:i], *variants, *lines[i + 1:]])
            assert_same(log, monkeypatch, caplog, tmp_path, fast)
            checked += 1
    assert checked > 100


def test_odd_but_valid_task_events(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path,
                                   fast: native_tasks.FastPath) -> None:
    """Repeated keys (the last wins), reordered keys, whitespace, escapes, a 3.2-era push
    metrics object, a killed and a failed task, huge lines and lines that are not JSON."""
    lines = spark4_lines()
    start, end = task_lines()[0], task_lines()[-1]
    text = lines[end].decode()
    doc = json.loads(text)
    extra = [
        text.replace('"Stage ID":', '"Stage ID":99,"Stage ID":', 1).encode(),
        text.replace('{"Event":"SparkListenerTaskEnd",', '{"Event":"SparkListenerTaskEnd","Event":"Other",', 1).encode(),
        text.replace('"Executor ID":', '"Executor ID":7,"Executor ID":', 1).encode(),
        text.replace(":", ": ").encode(),
        text.replace('"Host":"localhost"', '"Host":"local\\u0068ost\\n\\u00e9"').encode(),
        json.dumps({k: doc[k] for k in reversed(doc)}).encode(),
        (text + "   \t").encode(),
        text[:-1].encode(),
        text.replace('"Reason":"Success"', '"Reason":"TaskKilled","Kill Reason":"stage cancelled"').encode(),
        text.replace('"Reason":"Success"', '"Reason":"ExceptionFailure","Full Stack Trace":"boom\\n\\tat x"').encode(),
        text.replace('"Reason":"Success"', '"Reason":"ExceptionFailure","Class Name":"E","Stack Trace":[]').encode(),
        text.replace('"Reason":"Success"', '"Reason":"Resubmitted"').encode(),
        text.replace('"Reason":"Success"', '"Reason":"FetchFailed","Shuffle ID":1').encode(),
        text.replace('"Push Based Shuffle":', '"Shuffle Push Read Metrics":{"Merged Fallback Count":3},"X":').encode(),
        text.replace('"Push Based Shuffle":{', '"Push Based Shuffle":{"Merged Fallback Count":4,').encode(),
        text.replace('"Task Metrics":{', '"Task Metrics":{"Result Size":9223372036854775808,"Result Size":1,').encode(),
        text.replace('"Task Metrics":{', '"Task Metrics":{"JVM GC Time":9223372036854775808,').encode(),
        text.replace('"Task Metrics":{', '"Task Metrics":{"JVM GC Time":-9223372036854775808,').encode(),
        text.replace('"Speculative":false', '"Speculative":true').encode(),
        b'{"Event":"SparkListenerTaskEnd"' + b" " * (3 << 20) + b"}",
        b'{"Event":"SparkListenerTaskEnd",' + text[len('{"Event":"SparkListenerTaskEnd",'):].encode() * 2,
        b'{"Event":"SparkListenerTaskStart","Stage ID":0,"Task Info":{}}',
        b'{"Event":"SparkListenerTaskStart","Stage ID":0}',
        b'{"Event":"SparkListenerTaskEnd","Stage ID":0,"Task Info":null}',
        b'{"Event":"SparkListenerTaskStart",\xff}',
        # serde reads a struct from an array too; orjson checks the strings of every field.
        b'{"Event":"SparkListenerTaskStart","Stage ID":0,"Task Info":[]}',
        b'{"Event":"SparkListenerTaskStart","Stage ID":0,"Task Info":[7,1]}',
        text.replace('"Task Metrics":{', '"Task Metrics":[1],"X":{', 1).encode(),
        text.replace('"Task Type":"', '"Task Type":"\\ud800', 1).encode(),
        text.replace('"Task Type":"', '"Task Type":"\\u00e9\x01', 1).encode(),
        text.encode().replace(b'"Task Type":"', b'"Task Type":"\xff', 1),
        b"\x00" * 100,
    ]
    assert text.startswith('{"Event":"SparkListenerTaskEnd"') and start < end
    log = write(tmp_path, "odd", [*lines[:end], *extra, *lines[end:]])
    state = assert_same(log, monkeypatch, caplog, tmp_path, fast)
    assert any(t.killed for t in state.tasks.values()) or any(t.error_message for t in state.tasks.values())


# --------------------------------------------------------------------------- fuzzing
TASK_FIELDS = ["Stage ID", "Stage Attempt ID", "Task ID", "Index", "Attempt", "Partition ID", "Launch Time",
               "Executor ID", "Host", "Locality", "Speculative", "Getting Result Time", "Finish Time", "Failed",
               "Killed", "Accumulables", "ID", "Name", "Update", "Value", "Internal", "Metadata", "Reason",
               "Kill Reason", "Full Stack Trace", "Task Metrics", "Input Metrics", "Shuffle Read Metrics",
               "Push Based Shuffle", "Executor Run Time", "JVM GC Time", "Task Executor Metrics", "JVMHeapMemory"]
SMALL_SEEDS = [name for name in seed_names(max_size=300_000) if seed(name).codec is None]


@pytest.mark.slow
@fuzz_settings(150, deadline_s=20.0)
@given(
    name=st.sampled_from(SMALL_SEEDS),
    mutations=st.lists(st.one_of(json_mutations(event_names(), [*TASK_FIELDS, *field_names()[:40]]),
                                 json_mutations(["SparkListenerTaskStart", "SparkListenerTaskEnd"], TASK_FIELDS),
                                 byte_mutations(SMALL_SEEDS)),
                       min_size=1, max_size=5),
)
def test_fuzzed_logs(name: str, mutations: list[Any], tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("fuzz")
    data = apply_all(b"".join(line + b"\n" for line in seed(name).lines()), mutations,
                     lambda other: b"".join(line + b"\n" for line in seed(other).lines()))
    path = tmp / "fuzzed"
    path.write_bytes(data)
    decoder = require_native()
    with pytest.MonkeyPatch.context() as monkeypatch:
        caplog = _Capture()
        reference = _index_quietly(path, monkeypatch, caplog, tmp, None)
        native = _index_quietly(path, monkeypatch, caplog, tmp, native_tasks._make(decoder))
    found = list(differences(reference[0], native[0]))
    assert not found, f"the compiled path differs: {found[:10]}"
    assert native == reference


class _Capture(logging.Handler):
    """The warnings of one indexing (hypothesis' examples cannot take the caplog fixture)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _index_quietly(path: Path, monkeypatch: pytest.MonkeyPatch, capture: _Capture, tmp: Path,
                   fast: native_tasks.FastPath | None) -> tuple[AppState, list[str]]:
    monkeypatch.setattr(native_tasks, "fast_path", lambda: fast)
    source, event_log = load(path)
    capture.messages = []
    root = logging.getLogger("sparkhist")
    root.addHandler(capture)
    try:
        snapshot = Indexer(source, SnapshotStore(str(tmp)), AppState).refresh(event_log, persist=False)
    finally:
        root.removeHandler(capture)
    assert isinstance(snapshot.state, AppState)
    return snapshot.state, capture.messages


# --------------------------------------------------------------------------- the switch
def test_the_switch_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPARKHIST_NATIVE", "0")
    decoder, why = native_tasks.native_decoder()
    assert decoder is None and why == "SPARKHIST_NATIVE=0"
    monkeypatch.setenv("SPARKHIST_NATIVE", "1")
    assert native_tasks.native_decoder()[0] is require_native()


def test_another_task_listener_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """A listener the compiled path does not mirror taking task events: the Python path runs."""
    from sparkhist.state import app_state

    monkeypatch.setattr(app_state, "LISTENERS", (*app_state.LISTENERS, {"SparkListenerTaskEnd": lambda s, e: None}))
    monkeypatch.setattr(native_tasks, "LISTENERS", app_state.LISTENERS)
    decoder, why = native_tasks.native_decoder()
    assert decoder is None and "SparkListenerTaskEnd" in why


def test_most_task_events_take_the_compiled_path(fast: native_tasks.FastPath) -> None:
    """The usual task event is decoded by the compiled module (not declined to Python)."""
    lines = spark4_lines()
    state = AppState()
    taken = [fast(state, line) for line in lines if line.startswith(b'{"Event":"SparkListenerTask')]
    assert taken and all(taken)


# --------------------------------------------------------------------------- the SQL metric updates
def _recorder() -> native_tasks.Recorder:
    require_native()
    import sparkhist_native

    recorder: native_tasks.Recorder = sparkhist_native.record_sql_updates
    return recorder


#: Few ids, so that the updates, the execution's metrics and what is held meet.
IDS = st.integers(-1, 5) | st.sampled_from([300, 1 << 40, -(1 << 62)])
#: Small values meet each other (equal maxima) as often as the extremes.
LONGS = st.integers(-3, 3) | st.integers(-(1 << 63), (1 << 63) - 1)
#: What a StageMetrics already holds: values lists of any length (another stage attempt's
#: num_tasks), maxima of either path (a Python-path update may exceed a long).
HELD = st.tuples(st.dictionaries(IDS, st.lists(LONGS, max_size=6), max_size=4),
                 st.dictionaries(IDS, st.tuples(LONGS | st.integers(1 << 63, 1 << 70), st.integers(-1, 2)), max_size=4))


@fuzz_settings(300)
@given(
    types=st.dictionaries(IDS, st.sampled_from(["sum", "size", "timing", "nsTiming", "average", "Sum", ""]), max_size=8),
    updates=st.lists(st.tuples(IDS, LONGS), max_size=12),
    held=HELD,
    num_tasks=st.integers(-2, 8),
    index=st.integers(-2, 9),
    task_id=st.integers(-1, 2) | LONGS,
)
def test_sql_updates_are_recorded_as_the_listener_records_them(
        types: dict[int, str], updates: list[tuple[int, int]], held: tuple[dict[int, list[int]], dict[int, Any]],
        num_tasks: int, index: int, task_id: int) -> None:
    """``record_sql_updates`` against ``sql_listener._record`` on the same StageMetrics: every
    value list created, written or left alone, every maximum kept or raised (the first task
    to reach it keeps it), repeats of an id in one task in order."""
    import sparkhist_native

    from sparkhist.state import sql_listener
    from sparkhist.state.sql import SQLExecution, StageMetrics

    record = _recorder()

    def stage() -> tuple[AppState, StageMetrics]:
        s = AppState()
        s.executions[7] = SQLExecution(7, metric_types=dict(types))
        sm = StageMetrics(3, 0, num_tasks, 7, values={k: list(v) for k, v in held[0].items()},
                          max_values={k: list(v) for k, v in held[1].items()})
        return s, sm

    s, reference = stage()
    # The Python path's accumulables: the updates as Spark logs SQL metrics (strings).
    sql_listener._record(s, reference, task_id, index, [{"ID": a, "Update": str(v)} for a, v in updates])
    _, compiled = stage()
    record(sparkhist_native.SqlUpdates(updates), types, compiled.values, compiled.max_values, num_tasks, index, task_id)
    assert compiled.values == reference.values
    assert compiled.max_values == reference.max_values
    assert all(type(v) is list for v in [*compiled.values.values(), *compiled.max_values.values()])


def test_decoded_sql_updates_are_the_listeners() -> None:
    """A TaskEnd's ``SqlUpdates``: the (id, update) pair of every accumulable with an update, in
    order, as ``sql_listener._record`` converts them (task metrics included: the execution's
    types pick)."""
    decode = require_native()
    from sparkhist.state.events import sql_accum_updates

    seen = 0
    for i in task_lines():
        line = spark4_lines()[i]
        decoded = decode(line)
        assert decoded is not None
        if decoded[0]:
            items = orjson.loads(line)["Task Info"]["Accumulables"]
            pairs = decoded[-1].pairs()
            assert pairs == sql_accum_updates(items) and len(decoded[-1]) == len(pairs)
            seen += len(pairs)
    assert seen > 10


# --------------------------------------------------------------------------- tasks in snapshots
def test_tasks_pickle_as_their_fields_and_old_pickles_load() -> None:
    """A task pickles as ``Task(*fields)`` (snapshots hold thousands), equal after the round
    trip at every protocol; a task pickled the default way (its slots' state, as snapshots
    written before hold them) loads equal too."""
    import copyreg
    import io
    import pickle

    from sparkhist.state.entities import Task

    task = Task(7, 3, 1, 3, 1_796_630_102_905, "driver", "localhost", "PROCESS_LOCAL", True, 2, 1,
                getting_result_time=5, finish_time=1_796_630_102_956, failed=True,
                accumulables=[(1, "a", "1", None)], error_message="boom", metrics=list(range(34)))
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        clone = pickle.loads(pickle.dumps(task, protocol))
        assert type(clone) is Task and clone == task and clone.metrics is not task.metrics
    data = pickle.dumps([task, task], pickle.HIGHEST_PROTOCOL)
    assert data.count(b"PROCESS_LOCAL") == 1 and b"error_message" not in data  # fields, not a dict of slots

    class Default(pickle.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            if type(obj) is Task:
                return copyreg.__newobj__, (Task,), (None, {name: getattr(obj, name) for name in Task.__slots__})
            return NotImplemented

    out = io.BytesIO()
    Default(out, pickle.HIGHEST_PROTOCOL).dump(task)
    assert b"error_message" in out.getvalue()
    assert pickle.loads(out.getvalue()) == task


def test_indexing_leaves_the_collector_as_it_found_it(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
                                                      tmp_path: Path, fast: native_tasks.FastPath) -> None:
    """The indexer pauses the cyclic garbage collector while it applies a log's events (the state
    grows by objects per task): on again afterwards, and still off if it was off."""
    import gc

    seen: list[bool] = []

    def watching(state: AppState, line: bytes) -> bool:
        seen.append(gc.isenabled())
        return fast(state, line)

    assert gc.isenabled()
    index(seed(SPARK4).path, monkeypatch, caplog, tmp_path, watching)
    assert gc.isenabled() and seen and not any(seen)
    gc.disable()
    try:
        index(seed(SPARK4).path, monkeypatch, caplog, tmp_path, watching)
        assert not gc.isenabled()
    finally:
        gc.enable()


# --------------------------------------------------------------------------- a task's end, summed in place
def _sums() -> job_listener.TaskSums:
    require_native()
    import sparkhist_native

    sums: job_listener.TaskSums = sparkhist_native.add_task_end
    return sums


#: Vector values: small ones, any long, and what only Python's ints hold (sums of longs beyond
#: one, a bool from a damaged log's Python path); lengths mostly the usual, sometimes not.
VALUE = st.integers(-3, 3) | LONGS | st.integers(1 << 63, 1 << 70) | st.integers(-(1 << 70), -(1 << 63) - 1) | st.booleans()
EDGE = st.integers(-3, 3) | st.sampled_from([(1 << 63) - 1, -(1 << 63), (1 << 62), -(1 << 62)])


def _vector(n: int, fit: bool) -> st.SearchStrategy[list[int]]:
    """A vector of ``n`` values (sometimes another length unless ``fit``), exact longs when ``fit``."""
    values = st.lists(EDGE, min_size=n, max_size=n)
    return values if fit else values | st.lists(VALUE, min_size=n, max_size=n) | st.lists(VALUE, max_size=n + 2)


def _vectors(fit: bool) -> st.SearchStrategy[tuple[Any, ...]]:
    n, m = N_METRICS, len(EXECUTOR_METRIC_NAMES)
    return st.tuples(_vector(n, fit), _vector(n, fit), st.none() | _vector(n, fit), st.none() | _vector(m, fit),
                     _vector(m, fit), _vector(m, fit), st.none() | _vector(m, fit))


@fuzz_settings(400)
@given(vectors=st.booleans().flatmap(_vectors))
def test_a_task_end_is_summed_in_place_as_the_python_functions_sum_it(vectors: tuple[Any, ...]) -> None:
    """``add_task_end`` against ``add_metrics`` and ``update_peaks`` on the same vectors: when it
    sums, every list equals the Python functions' result (exact ints, negative deltas included);
    when anything is not of the usual shape (a length, a bool, a value or a sum beyond a long,
    which Python's ints hold), it changes nothing and declines, and the Python functions run."""
    from sparkhist.state.entities import add_metrics, update_peaks

    sums = _sums()
    stage_metrics, summary_metrics, delta, peaks, stage_peaks, summary_peaks, executor_peaks = vectors
    reference = [list(stage_metrics), list(summary_metrics), None, None, list(stage_peaks), list(summary_peaks),
                 None if executor_peaks is None else list(executor_peaks)]
    if delta is not None:
        reference[0], reference[1] = add_metrics(reference[0], delta), add_metrics(reference[1], delta)
    raised: list[bool] = []
    for target in (reference[4], reference[5], reference[6]):
        if target is not None:
            try:
                update_peaks(target, peaks)
            except IndexError:  # peaks longer than the target: the Python path's own error
                raised.append(True)
    compiled = [None if v is None else list(v) for v in vectors]
    before = [None if v is None else list(v) for v in vectors]
    done = sums(*compiled)

    def exact(v: list[int] | None, like: list[int]) -> bool:
        return v is None or (len(v) == len(like) and all(type(x) is int and -(1 << 63) <= x < (1 << 63) for x in v))

    # The targets are read only when there is something to add to them.
    usual = ((delta is None or all(exact(v, delta) for v in (delta, stage_metrics, summary_metrics)))
             and (peaks is None or all(exact(v, peaks) for v in (peaks, stage_peaks, summary_peaks, executor_peaks))))
    in_range = delta is None or all(-(1 << 63) <= x < (1 << 63) for x in [*reference[0], *reference[1]])
    assert done == (usual and in_range)
    if done:
        assert not raised
        for got, want in zip(compiled, reference, strict=True):
            if want is not None:
                assert got == want and [type(x) for x in got] == [type(x) for x in want]
        assert compiled[2] == before[2] and compiled[3] == before[3]  # the task's own vectors untouched
    else:
        assert compiled == before
        assert all(type(x) is type(y) for got, was in zip(compiled, before, strict=True) if got is not None
                   for x, y in zip(got, was, strict=True))


@fuzz_settings(200)
@given(vectors=st.booleans().flatmap(_vectors), live=st.booleans(),
       kind=st.sampled_from(["Success", "TaskKilled", "Resubmitted"]))
def test_end_task_with_the_compiled_sums_is_the_python_end_task(vectors: tuple[Any, ...], live: bool, kind: str) -> None:
    """``job_listener.end_task`` given ``add_task_end`` leaves the stage, its executor summary and
    the executor as the Python functions leave them, whether the compiled sums run or decline."""
    from sparkhist.state.entities import Executor, Stage, StageInfo

    sums = _sums()
    stage_metrics, summary_metrics, delta, peaks, stage_peaks, summary_peaks, executor_peaks = vectors

    def state() -> AppState:
        s = AppState()
        info = StageInfo(4, 0, "s", 10, [], "", 1, None, None, [], 0, False, 0)
        stage = s.stages[(4, 0)] = Stage(info, status="ACTIVE", active_tasks=1, metrics=list(stage_metrics),
                                         peaks=list(stage_peaks))
        summary = stage.executor_summary("1")
        summary.metrics, summary.peaks = list(summary_metrics), list(summary_peaks)
        ex = s.executors["1"] = Executor("1", 0, is_active=live, active_tasks=1)
        if executor_peaks is not None:
            ex.peaks = list(executor_peaks)
        return s

    def end(s: AppState, with_sums: job_listener.TaskSums | None) -> None:
        try:
            job_listener.end_task(s, 4, 0, 2, kind, None, "1", False, None if peaks is None else list(peaks),
                                  [0] * N_METRICS, None if delta is None else list(delta), 5, with_sums)
        except IndexError:  # peaks longer than a target: the Python path's own error, the compiled one declines
            pass

    reference, compiled = state(), state()
    end(reference, None)
    end(compiled, sums)
    assert compiled.stages == reference.stages
    assert compiled.executors == reference.executors
