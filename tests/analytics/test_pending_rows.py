"""Issue 19: pending row files hold any values of the tables' types, and DuckDB reads them back
as written, from the pending files (the query engine's views) and from the table files (after
compaction): strings with quotes, newlines, NUL and any Unicode, NULL apart from '', the whole
BIGINT range, any finite double, booleans.

Files are written in the pending format (:func:`pending.payload` in batches written by
:func:`pending.write_batch`) and read by the real engine and the real compaction.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparkhist.analytics import compaction, pending
from sparkhist.analytics.layout import pending_dir
from sparkhist.analytics.query import Engine
from sparkhist.analytics.tables import APPLICATIONS, TABLES, Table
from sparkhist.errors import StoreError

_VALUES = {
    "VARCHAR": st.none() | st.text(max_size=20) | st.sampled_from(["", "\x00", 'a"b\\c\nd\re', "é😀\u2028", "NULL"]),
    "BIGINT": st.none() | st.integers(-(1 << 63), (1 << 63) - 1),
    "DOUBLE": st.none() | st.floats(allow_nan=False, allow_infinity=False),
    "BOOLEAN": st.none() | st.booleans(),
}


def _rows(table: Table) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    row = st.tuples(*(_VALUES[kind] for _, kind, _ in table.columns[2:]))
    return st.lists(row, min_size=1, max_size=1) if table is APPLICATIONS else st.lists(row, max_size=3)


_attempt = st.fixed_dictionaries({
    "app_id": st.text(min_size=1, max_size=12),
    "attempt_id": st.none() | st.text(max_size=4),
    "rows": st.fixed_dictionaries({t.name: _rows(t) for t in TABLES}),
})


def _entry(key: str, stamp: int, attempt: dict[str, Any]) -> pending.Entry:
    return pending.Entry(key, stamp, pending.payload(key, stamp, attempt["app_id"], attempt["attempt_id"], attempt["rows"]))


def _tables(store: str) -> dict[str, Counter[tuple[Any, ...]]]:
    engine = Engine(store, max_rows=1_000_000)
    try:
        return {t.name: Counter(engine.run(f"SELECT * FROM {t.name}").rows) for t in TABLES}
    finally:
        engine.close()


@settings(max_examples=25, deadline=None)
@given(attempts=st.lists(_attempt, min_size=1, max_size=3), removed=st.booleans())
def test_any_rows_come_back_as_written_from_pending_files_and_from_table_files(attempts: list[dict[str, Any]],
                                                                                removed: bool) -> None:
    store = tempfile.mkdtemp(prefix="sparkhist-test-pending-")
    try:
        keys = [f"{i:016x}" for i in range(len(attempts))]
        entries = [_entry(key, 1_000 + i, attempt) for i, (key, attempt) in enumerate(zip(keys, attempts, strict=True))]
        pending.write_batch(store, entries[:1])  # a batch of one, then one of the others
        pending.write_batch(store, entries[1:])
        expected = {t.name: Counter((a["app_id"], a["attempt_id"], *row) for a in attempts for row in a["rows"][t.name])
                    for t in TABLES}
        assert _tables(store) == expected  # the pending files, through the engine's views
        assert compaction.compact(store).attempts == len(attempts)
        assert os.listdir(pending_dir(store)) == []
        assert _tables(store) == expected  # the table files
        if removed:  # a tombstone: the attempt's rows go, from the views at once and from the files when compacted
            pending.write_batch(store, [pending.tombstone(keys[0])])
            gone = attempts[0]
            expected = {name: rows - Counter((gone["app_id"], gone["attempt_id"], *row) for row in gone["rows"][name])
                        for name, rows in expected.items()}
            assert _tables(store) == expected
            assert compaction.compact(store).removed == 1
            assert _tables(store) == expected
    finally:
        shutil.rmtree(store)


def test_a_value_beyond_64_bits_is_refused_when_written_not_at_compaction() -> None:
    rows: dict[str, list[tuple[Any, ...]]] = {t.name: [] for t in TABLES}
    rows["applications"] = [(None,) * (len(APPLICATIONS.columns) - 3) + (1 << 64,)]
    with pytest.raises(StoreError, match="cannot encode the analytics rows of attempt k"):
        pending.payload("k", 1, "app", None, rows)
