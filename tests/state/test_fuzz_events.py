"""Fuzzing the event parser (the listing pass, the full state) and the views, seeded with real logs.

The decoded lines of every seed of :mod:`support.fuzz` get valid JSON of the wrong shape
(numbers where strings go, nested arrays, missing keys, known fields set to values of any
type, another event's name over this event's fields) and damaged bytes (NUL bytes,
invalid UTF-8, cut, repeated or spliced lines, lines of several MB). Then they go the way
a log goes:

* the listing pass (:func:`~sparkhist.events.listing.apply_listing_line` on the lines
  the reader's listing filter yields) raises nothing but ``orjson.JSONDecodeError``,
  which the scanner skips with a warning; a malformed listing event is skipped; the
  listing keeps the types the catalog stores, and the application-list entry renders;
* the full indexing (:meth:`~sparkhist.scan.indexer.Indexer.refresh`) builds the state
  and saves its snapshot, skipping a malformed event (one warning per event, never the
  rest of the log), and every view of :mod:`sparkhist.render.views` renders, and so does
  every API answer built from them (an :class:`~sparkhist.errors.ApiError` is an answer).

The framing is intact (the bytes are encoded again), so nothing here is a reason to give
up on the log: no exception at all may escape.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from starlette.datastructures import QueryParams

from sparkhist.api.v1.app_resources import handle
from sparkhist.errors import ApiError, LogError
from sparkhist.events.listing import ENV_UPDATE, LISTING_PREFIXES, AttemptListing, apply_listing_line
from sparkhist.reader.encoders import ENCODERS
from sparkhist.reader.stream import read_lines
from sparkhist.render import views
from sparkhist.render.encode import dumps, format_date
from sparkhist.render.listing import render_entry
from sparkhist.scan.indexer import Indexer
from sparkhist.state.app_state import AppState
from sparkhist.state.events import check_shape
from sparkhist.store.snapshots import SnapshotStore
from support.fuzz import (
    Mutation,
    Put,
    Rename,
    Reshape,
    Set,
    Unkey,
    apply_all,
    byte_mutations,
    event_names,
    field_names,
    fuzz_settings,
    json_mutations,
    load,
    nested,
    replace_files,
    seed,
    seed_names,
    write_log,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

SEEDS = seed_names()
#: Seeds small enough to build a full state per example (every codec is among them).
STATE_SEEDS = seed_names(max_size=300_000)
#: A finished Spark 4.0.1 log (SQL, resource profiles, block managers): the regressions' seed.
#: Its lines: 1 ResourceProfileAdded, 2 ExecutorAdded, 3 BlockManagerAdded, 6 SQLExecutionStart,
#: 9 JobStart, 11 TaskStart, 13 and 14 TaskEnd.
SPARK4 = "spark-4.0.1/local-1795972896863"


def listing_lines(name: str) -> bytes:
    """The seed's listing events only (the listing pass parses nothing else): every JSON
    mutation hits an event the listing parses."""
    return b"".join(line + b"\n" for line in seed(name).lines() if line.startswith(LISTING_PREFIXES))


def write_single(directory: Path, data: bytes, codec: str | None, in_progress: bool = False) -> Path:
    """``data`` encoded with ``codec`` as a single-file log."""
    path = directory / ("fuzzed" + (f".{codec}" if codec else "") + (".inprogress" if in_progress else ""))
    path.write_bytes(ENCODERS[codec](data))
    return path


# --------------------------------------------------------------------------- listing pass
def list_log(path: Path) -> AttemptListing:
    """The scanner's listing pass over one log: a malformed JSON line is skipped, damaged
    compressed data (a :class:`LogError`) ends the pass with what was read before it."""
    source, log = load(path)
    listing = AttemptListing()
    try:
        for line, _ in read_lines(source, log, only=LISTING_PREFIXES):
            try:
                apply_listing_line(listing, line)
            except orjson.JSONDecodeError:
                continue
    except LogError:
        pass
    return listing


def check_listing(listing: AttemptListing) -> None:
    """The listing has the types the catalog stores, and its list entry renders."""
    assert listing.app_id is None or type(listing.app_id) is str
    assert listing.attempt_id is None or type(listing.attempt_id) is str
    assert listing.app_name is None or type(listing.app_name) is str
    assert listing.spark_user is None or type(listing.spark_user) is str
    assert type(listing.spark_version) is str
    assert type(listing.start_time) is int and type(listing.end_time) is int and type(listing.duration) is int
    for acl in (listing.view_acls, listing.admin_acls, listing.view_acls_groups, listing.admin_acls_groups):
        assert acl is None or type(acl) is str
    assert AttemptListing.from_dict(orjson.loads(orjson.dumps(listing.to_dict()))) == listing
    entry, start, end = render_entry(listing.app_id or "app", listing, last_updated=0)
    orjson.loads(entry)
    orjson.loads(entry[start:end])


LISTING_SEEDS = [name for name in SEEDS if seed(name).codec is None]
#: Just inside the environment update of SPARK4's listing lines: where a field goes.
ENV_AT = listing_lines(SPARK4).index(ENV_UPDATE) + len(ENV_UPDATE)
#: The fields the listing pass reads.
LISTING_FIELDS = ["Event", "App ID", "App Name", "App Attempt ID", "Timestamp", "User", "Spark Version", "Spark Properties",
                  "spark.ui.view.acls", "spark.admin.acls", "spark.ui.view.acls.groups", "spark.admin.acls.groups"]


@fuzz_settings(300)
@given(
    name=st.sampled_from(LISTING_SEEDS),
    mutations=st.lists(st.one_of(json_mutations(event_names(), LISTING_FIELDS), byte_mutations(LISTING_SEEDS)),
                       min_size=1, max_size=4),
)
# Regressions, each an exception out of the listing pass (so out of the scan) before:
# TypeError from int(None); a version of None; AttributeError on the properties;
# an ACL list the access check would split; RecursionError in msgspec (nested 4000 deep);
# OverflowError formatting a start past year 9999.
@example(name=SPARK4, mutations=[Set(line=2, where=0, key="Timestamp", value=None)])
@example(name=SPARK4, mutations=[Set(line=0, where=0, key="Spark Version", value=None)])
@example(name=SPARK4, mutations=[Set(line=1, where=0, key="Spark Properties", value=5)])
@example(name=SPARK4, mutations=[Set(line=1, where=2, key="spark.ui.view.acls", value=["alice"])])
@example(name=SPARK4, mutations=[Put(at=ENV_AT, blob=b'"x":' + b"[" * 4000 + b"]" * 4000 + b",")])
@example(name=SPARK4, mutations=[Set(line=2, where=0, key="Timestamp", value=1 << 62)])
def test_listing_pass_of_damaged_events(name: str, mutations: list[Mutation]) -> None:
    data = apply_all(listing_lines(name), mutations, listing_lines)
    with tempfile.TemporaryDirectory() as tmp:
        check_listing(list_log(write_single(Path(tmp), data, None)))


def test_environment_deeper_than_msgspec_goes() -> None:
    """msgspec stops at 1,000 levels (the recursion limit; hypothesis raises it, hence no
    example), orjson at 1,024: in between, the general path reads the ACLs."""
    listing = AttemptListing()
    deep = b"[" * 1010 + b"]" * 1010
    line = ENV_UPDATE + b'"x":' + deep + b',"Spark Properties":{"spark.ui.view.acls":"alice"}}'
    assert apply_listing_line(listing, line)
    assert listing.view_acls == "alice" and listing.got_env


# --------------------------------------------------------------------------- full state and views
def build(path: Path, store: Path) -> AppState:
    """The indexer's full build of the log at ``path``, saved as a snapshot."""
    source, log = load(path)
    snapshot = Indexer(source, SnapshotStore(str(store)), AppState).refresh(log, persist=True)
    assert snapshot.persisted
    state = snapshot.state
    assert isinstance(state, AppState)
    return state


def render_all(state: AppState) -> None:
    """Every view of every entity, and the API's answers built from them (their sorting and
    summaries too), encoded as the API encodes them. An :class:`ApiError` is an answer."""
    out: list[Any] = [views.environment(state)]
    out += [views.job(job) for job in state.jobs.values()]
    for stage in state.stages.values():
        out.append(views.stage(stage))
        out += [views.executor_stage_summary(summary) for summary in stage.executor_summaries.values()]
    out += [views.task(task, state) for task in state.tasks.values()]
    out += [views.executor(executor, state) for executor in state.executors.values()]
    out += [views.process(process) for process in state.processes.values()]
    out += [views.rdd(rdd, state) for rdd in state.rdds.values()]
    out += [views.execution(x, details, True, now_ms=0) for x in state.executions.values() for details in (False, True)]
    urls = ["jobs", "stages", "stages?details=true&withSummaries=true", "executors", "allexecutors",
            "allmiscellaneousprocess", "storage/rdd", "environment", "sql", "sql?details=true&planDescription=true"]
    urls += [f"jobs/{job_id}" for job_id in state.jobs]
    urls += [f"storage/rdd/{rdd_id}" for rdd_id in state.rdds]
    urls += [f"sql/{x}" for x in state.executions]
    for stage_id, attempt in state.stages:
        urls += [f"stages/{stage_id}", f"stages/{stage_id}/{attempt}", f"stages/{stage_id}/{attempt}/taskSummary",
                 f"stages/{stage_id}/{attempt}/taskList?sortBy=runtime&length=1000"]
    for url in urls:
        path, _, query = url.partition("?")
        try:
            out.append(handle(state, path.split("/"), QueryParams(query), app_id="app"))
        except ApiError:
            continue
    dumps(out)


@fuzz_settings(250, deadline_s=10.0)
@given(
    name=st.sampled_from(STATE_SEEDS),
    mutations=st.lists(st.one_of(json_mutations(event_names(), field_names()), byte_mutations(STATE_SEEDS)),
                       min_size=1, max_size=6),
)
# Regressions. Before, the build raised (and with it the scan): AttributeError in the plan
# graph; TypeError adding a metric that is a string. Or a view or answer raised: ValueError
# formatting a submission time of 0.5; TypeError comparing an on-heap memory "x"; TypeError
# from int(None) for a resource amount; TypeError sorting job ids "x" and 0; OverflowError
# formatting a launch time of -2**63 (and in the task summary's array for its duration);
# OverflowError for a sum beyond 64 bits; TypeError sorting RDD ids None and 1; orjson's
# recursion limit on a log URL nested 300 deep; TypeError from divmod on a time [1].
@example(name="spark-4.0.1/local-1795972971772.inprogress", mutations=[Reshape(line=7, path=3, value="x")])
@example(name=SPARK4, mutations=[Set(line=13, where=0, key="Task Metrics", value={"Executor Run Time": "x"})])
@example(name=SPARK4, mutations=[Set(line=9, where=0, key="Submission Time", value=0.5)])
@example(name=SPARK4, mutations=[Set(line=3, where=0, key="Maximum Onheap Memory", value="x")])
@example(name=SPARK4, mutations=[Set(line=1, where=2, key="Amount", value=None)])
@example(name=SPARK4, mutations=[Set(line=9, where=0, key="Job ID", value="x")])
@example(name=SPARK4, mutations=[Set(line=13, where=2, key="Launch Time", value=-(1 << 63))])
@example(name=SPARK4, mutations=[Set(line=13, where=0, key="Task Metrics", value={"Result Size": (1 << 64) - 1}),
                                 Set(line=14, where=0, key="Task Metrics", value={"Result Size": (1 << 64) - 1})])
@example(name="apache/local-1422981759269", mutations=[Unkey(line=4, path=8)])  # Stage Info/RDD Info/0/RDD ID
@example(name=SPARK4, mutations=[Set(line=2, where=1, key="Log Urls", value={"stdout": nested(300, 1, lambda x: [x])})])
@example(name=SPARK4, mutations=[Set(line=6, where=0, key="time", value=[1])])
def test_state_and_views_of_damaged_events(name: str, mutations: list[Mutation]) -> None:
    log = seed(name)
    data = apply_all(log.decoded(), mutations, lambda other: seed(other).decoded())
    with tempfile.TemporaryDirectory() as tmp, warnings_of("sparkhist.index") as skipped:
        render_all(build(write_single(Path(tmp), data, log.codec, log.in_progress), Path(tmp) / "store"))
    if all(isinstance(m, Set | Reshape | Unkey | Rename) for m in mutations):
        # Each JSON mutation changes one line: a malformed event costs that event, not the log.
        assert len(skipped) <= len(mutations)


@contextmanager
def warnings_of(logger: str) -> Iterator[list[logging.LogRecord]]:
    """The warnings ``logger`` logs inside the block (no pytest fixture: hypothesis runs the
    test body many times per fixture)."""
    records: list[logging.LogRecord] = []
    handler = _Collect(records)
    target = logging.getLogger(logger)
    target.addHandler(handler)
    try:
        yield records
    finally:
        target.removeHandler(handler)


class _Collect(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.WARNING)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_real_events_pass_the_shape_check() -> None:
    """The shape check rejects no event of a real log: every seed's events pass it."""
    checked = 0
    for name in SEEDS:
        for line in seed(name).lines():
            event = orjson.loads(line)
            check_shape(event)
            checked += 1
    assert checked > 2000


@pytest.mark.parametrize(("ms", "text"), [
    (0, "1970-01-01T00:00:00.000GMT"),
    (253402300799999, "9999-12-31T23:59:59.999GMT"),
    (253402300800000, "10000-01-01T00:00:00.000GMT"),
    ((1 << 63) - 1, "292278994-08-17T07:12:55.807GMT"),  # as the SHS prints Long.MaxValue
])
def test_any_java_long_is_a_date(ms: int, text: str) -> None:
    assert format_date(ms) == text



# --------------------------------------------------------------------------- damaged storage
@fuzz_settings(100, deadline_s=10.0)
@given(
    name=st.sampled_from(STATE_SEEDS),
    mutations=st.lists(byte_mutations(STATE_SEEDS), min_size=1, max_size=3),
)
def test_listing_and_state_of_damaged_stored_bytes(name: str, mutations: list[Mutation]) -> None:
    """The stored bytes damaged, framing and all: the listing pass and the indexer stop at a
    codec error with what they read before it, and the listing and every view render."""
    log = seed(name)
    files = log.files()
    index = log.events_file()
    damaged = apply_all(files[index][1], mutations, lambda other: seed(other).stored())
    with tempfile.TemporaryDirectory() as tmp:
        path = write_log(Path(tmp), log.path.name, replace_files(files, index, damaged), log.rolling)
        check_listing(list_log(path))
        render_all(build(path, Path(tmp) / "store"))
