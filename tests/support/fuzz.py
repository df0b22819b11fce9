"""Fuzzing with real event logs as seeds: the seed corpus, mutations and settings.

The seeds are the conformance logs (Spark 4.0.1 in every codec, single-file and rolling,
finished and in progress; the Apache SHS suite's plain logs) and the bundled samples.
A fuzzed input is a seed plus a list of mutations, each a small frozen dataclass, so a
failing example prints as readable Python and is pasted as an ``@example`` as is.

Mutations apply to bytes: the stored (compressed) bytes of a file, or the decoded JSON
lines before they are encoded again with the seed's codec. :class:`Reshape`,
:class:`Set`, :class:`Unkey` and :class:`Rename` change one JSON line: a value of the
wrong type (anywhere, or for a known field), a missing key, another event's name over
this event's fields.

Settings: a fixed number of examples, derandomized (CI runs the same examples every
time). ``SPARKHIST_FUZZ_EXAMPLES=N`` runs N random examples instead, for a longer hunt.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from sparkhist.reader import layout
from sparkhist.reader.layout import EventLog
from sparkhist.reader.stream import read_lines
from sparkhist.source.local import LocalSource
from support.conformance import APACHE, SPARK401

SAMPLES = Path(__file__).resolve().parents[2] / "src" / "sparkhist" / "samples" / "eventlogs"
#: Label → directory of seed logs.
SEED_DIRS = {
    "spark-4.0.1": SPARK401 / "eventlogs",
    "apache": APACHE / "spark-events",
    "apache-sql": APACHE / "extras" / "sql-core-spark-events",
    "apache-broken": APACHE / "extras" / "spark-events-broken" / "last-attempt-incomplete",
    "samples": SAMPLES,
}


# --------------------------------------------------------------------------- seeds
@dataclass(frozen=True)
class Seed:
    """One real log: a single file or an ``eventlog_v2_*`` directory."""

    name: str  # its directory's label and its own name, e.g. "spark-4.0.1/local-1795972905472.lz4"
    path: Path

    @property
    def rolling(self) -> bool:
        return self.path.is_dir()

    def files(self) -> list[tuple[str, bytes]]:
        """``(name, stored bytes)`` of its files (a rolling log's appstatus marker too)."""
        return _files(self.path)

    @property
    def codec(self) -> str | None:
        return _log(self.path).codec

    @property
    def in_progress(self) -> bool:
        return _log(self.path).in_progress

    def events_file(self, choice: int = 0) -> int:
        """Index in :meth:`files` of one of the files that hold events (``choice`` modulo
        their number): not a rolling log's appstatus marker."""
        files = self.files()
        indices = [i for i, (name, _) in enumerate(files) if name.startswith(layout.EVENTS_PREFIX) or len(files) == 1]
        return indices[choice % len(indices)]

    def stored(self) -> bytes:
        """The stored bytes of its first events file."""
        return self.files()[self.events_file()][1]

    def decoded(self) -> bytes:
        """Its JSON lines, decoded, each ending with a newline."""
        return _decoded(self.path)

    def lines(self) -> list[bytes]:
        return self.decoded().splitlines()


@functools.cache
def _files(path: Path) -> list[tuple[str, bytes]]:
    if path.is_dir():
        return [(child.name, child.read_bytes()) for child in sorted(path.iterdir())]
    return [(path.name, path.read_bytes())]


@functools.cache
def _log(path: Path) -> EventLog:
    return load(path)[1]


@functools.cache
def _decoded(path: Path) -> bytes:
    source, log = load(path)
    return b"".join(line + b"\n" for line, _ in read_lines(source, log))


def load(path: Path | str) -> tuple[LocalSource, EventLog]:
    """The log at ``path`` as the scanner finds it (no cache: the file may have changed)."""
    source = LocalSource(os.path.dirname(path))
    entry = source.stat(str(path))
    if entry.is_dir:
        return source, layout.rolling_log(entry, source.list(entry.path))
    return source, layout.single_file_log(entry)


@functools.cache
def _seeds() -> dict[str, Seed]:
    found: dict[str, Seed] = {}
    for label, directory in SEED_DIRS.items():
        if not directory.is_dir():  # fuzzing fewer seeds than intended must not pass unnoticed
            raise FileNotFoundError(f"seed directory {directory} is missing (shared/ goes beside the repository)")
        for path in sorted(directory.iterdir()):
            if path.name.startswith(".") or (path.is_dir() and not path.name.startswith(layout.ROLLING_DIR_PREFIX)):
                continue
            name = f"{label}/{path.name}"
            found[name] = Seed(name, path)
    return found


def seed_names(*, max_size: int | None = None) -> list[str]:
    """Names of the seeds (all of them, or those under ``max_size`` stored bytes)."""
    names = []
    for name, seed in _seeds().items():
        if max_size is not None and sum(len(data) for _, data in seed.files()) > max_size:
            continue
        names.append(name)
    return names


def seed(name: str) -> Seed:
    return _seeds()[name]


# --------------------------------------------------------------------------- byte mutations
#: Offsets are drawn up to here and taken modulo the data's length (+1): any offset of any
#: seed, and a shrink towards the start of the data.
MAX_OFFSET = 1 << 22


def _at(offset: int, data: bytes | bytearray) -> int:
    return offset % (len(data) + 1)


@dataclass(frozen=True)
class Flip:
    """One bit flipped."""

    at: int
    bit: int = 0

    def apply(self, data: bytes, other: Callable[[str], bytes]) -> bytes:
        if not data:
            return data
        i = self.at % len(data)
        return data[:i] + bytes([data[i] ^ (1 << (self.bit % 8))]) + data[i + 1 :]


@dataclass(frozen=True)
class Cut:
    """Truncated at an offset."""

    at: int

    def apply(self, data: bytes, other: Callable[[str], bytes]) -> bytes:
        return data[: _at(self.at, data)]


@dataclass(frozen=True)
class Drop:
    """A byte range removed."""

    at: int
    length: int

    def apply(self, data: bytes, other: Callable[[str], bytes]) -> bytes:
        i = _at(self.at, data)
        return data[:i] + data[i + self.length :]


@dataclass(frozen=True)
class Repeat:
    """A byte range duplicated in place."""

    at: int
    length: int

    def apply(self, data: bytes, other: Callable[[str], bytes]) -> bytes:
        i = _at(self.at, data)
        return data[: i + self.length] + data[i : i + self.length] + data[i + self.length :]


@dataclass(frozen=True)
class Put:
    """Bytes inserted (NUL bytes, invalid UTF-8, line breaks, JSON fragments...)."""

    at: int
    blob: bytes

    def apply(self, data: bytes, other: Callable[[str], bytes]) -> bytes:
        i = _at(self.at, data)
        return data[:i] + self.blob + data[i:]


@dataclass(frozen=True)
class Huge:
    """A line of several MB without a newline, inserted."""

    at: int
    size: int
    fill: bytes = b"x"

    def apply(self, data: bytes, other: Callable[[str], bytes]) -> bytes:
        i = _at(self.at, data)
        return data[:i] + (self.fill * (self.size // max(1, len(self.fill)) + 1))[: self.size] + data[i:]


@dataclass(frozen=True)
class Splice:
    """The head of this data, then the tail of another seed's (same kind of bytes)."""

    other: str
    at: int
    other_at: int

    def apply(self, data: bytes, other: Callable[[str], bytes]) -> bytes:
        tail = other(self.other)
        return data[: _at(self.at, data)] + tail[_at(self.other_at, tail) :]


# --------------------------------------------------------------------------- JSON mutations
def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document (not the root), depth first."""
    out: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        items: Sequence[tuple[Any, Any]] = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return out
    for key, child in items:
        out.append((*prefix, key))
        out.extend(_paths(child, (*prefix, key)))
    return out


def _edit_line(line: bytes, edit: Callable[[Any], Any]) -> bytes:
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        return line
    # The standard library's encoder: orjson refuses integers beyond 64 bits.
    return json.dumps(edit(doc), ensure_ascii=False, separators=(",", ":")).encode()


def _container(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


def _edit_lines(data: bytes, line: int, edit: Callable[[Any], Any]) -> bytes:
    lines = data.split(b"\n")
    i = line % len(lines)
    lines[i] = _edit_line(lines[i], edit)
    return b"\n".join(lines)


@dataclass(frozen=True)
class Reshape:
    """One value of one JSON line replaced (often by one of the wrong type)."""

    line: int
    path: int  # index into the line's value paths, modulo their number
    value: Any

    def apply(self, data: bytes, other: Callable[[str], bytes]) -> bytes:
        def edit(doc: Any) -> Any:
            paths = _paths(doc)
            if not paths:
                return self.value
            where = paths[self.path % len(paths)]
            _container(doc, where)[where[-1]] = self.value
            return doc

        return _edit_lines(data, self.line, edit)


@dataclass(frozen=True)
class Unkey:
    """One key of one JSON line removed (a list element, when the path ends in a list)."""

    line: int
    path: int

    def apply(self, data: bytes, other: Callable[[str], bytes]) -> bytes:
        def edit(doc: Any) -> Any:
            paths = _paths(doc)
            if paths:
                where = paths[self.path % len(paths)]
                del _container(doc, where)[where[-1]]
            return doc

        return _edit_lines(data, self.line, edit)


@dataclass(frozen=True)
class Rename:
    """One line's ``Event`` replaced by another event's name: that event with foreign fields."""

    line: int
    event: str

    def apply(self, data: bytes, other: Callable[[str], bytes]) -> bytes:
        def edit(doc: Any) -> Any:
            if isinstance(doc, dict):
                doc["Event"] = self.event
            return doc

        return _edit_lines(data, self.line, edit)


def _objects(value: Any) -> list[dict[str, Any]]:
    """Every JSON object inside a document (the document too), depth first."""
    out: list[dict[str, Any]] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            out.append(item)
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return out


@dataclass(frozen=True)
class Set:
    """One key of one object of one JSON line set (added if absent): a known field's name
    with a value of the wrong type hits what a parser reads far more often than :class:`Reshape`."""

    line: int
    where: int  # index into the line's objects, modulo their number
    key: str
    value: Any

    def apply(self, data: bytes, other: Callable[[str], bytes]) -> bytes:
        def edit(doc: Any) -> Any:
            objects = _objects(doc)
            if objects:
                objects[self.where % len(objects)][self.key] = self.value
            return doc

        return _edit_lines(data, self.line, edit)


Mutation = Flip | Cut | Drop | Repeat | Put | Huge | Splice | Reshape | Unkey | Rename | Set


def apply_all(data: bytes, mutations: Sequence[Mutation], other: Callable[[str], bytes]) -> bytes:
    for mutation in mutations:
        data = mutation.apply(data, other)
    return data


# --------------------------------------------------------------------------- strategies
offsets = st.integers(0, MAX_OFFSET)
lengths = st.integers(1, 1 << 16)

#: Bytes that break parsers: NUL, invalid UTF-8 (a lone continuation byte, an overlong
#: encoding, an encoded surrogate, a truncated sequence), line ends, JSON fragments.
NASTY = [
    b"\x00",
    b"\x00" * 64,
    b"\xff",
    b"\x80",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xf0\x9f\x98",
    b"\n",
    b"\r\n",
    b"\r",
    b"\n\n\n",
    b"{",
    b"}",
    b'"',
    b"\\",
    b'{"Event":',
    b'{"Event":"SparkListenerApplicationStart"',
    b'{"Event":"SparkListenerEnvironmentUpdate",',
    b'{"Event":"SparkListenerTaskEnd"}\n',
    b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    b"1e999999",
    b"-0",
    b"NaN",
]
blobs = st.one_of(st.sampled_from(NASTY), st.binary(min_size=1, max_size=64))

def nested(depth: int, leaf: Any, wrap: Callable[[Any], Any]) -> Any:
    for _ in range(depth):
        leaf = wrap(leaf)
    return leaf


#: The awkward values, drawn as often as all the others together: Java's long bounds and
#: beyond, past year 9999 and before year 1 (in ms), 2**53 + 1, floats where integers go,
#: strings that are almost numbers, containers where scalars go and the reverse, and
#: nesting deeper than JSON encoders go (orjson: 255 levels) but parsers take (1024).
AWKWARD = [None, True, 0, -1, 1 << 62, 1 << 63, -(1 << 63), (1 << 64) - 1, 1 << 70, 10**18, 253402300800000,
           -62135596800001, (1 << 53) + 1, 1e20, -1e20, 0.5, -0.0, "", "-1", "12abc", "NaN", "driver", "\u0000", "é",
           [], [1], [[[]]], {}, {"a": 1}, {"Event": "x"}, [None, "x"], ["a", "b"],
           nested(300, 1, lambda x: [x]), nested(300, "x", lambda x: {"a": x})]

#: JSON values of every type, nested.
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(1 << 70), 1 << 70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=12),
)
json_values = st.one_of(
    st.sampled_from(AWKWARD),
    st.recursive(
        json_scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.dictionaries(st.text(st.characters(exclude_categories=["Cs"]), max_size=8), children, max_size=3),
        ),
        max_leaves=6,
    ),
)


def byte_mutations(splice_with: Sequence[str]) -> st.SearchStrategy[Mutation]:
    """Mutations of raw bytes, stored or decoded."""
    return st.one_of(
        st.builds(Flip, offsets, st.integers(0, 7)),
        st.builds(Cut, offsets),
        st.builds(Drop, offsets, lengths),
        st.builds(Repeat, offsets, lengths),
        st.builds(Put, offsets, blobs),
        st.builds(Huge, offsets, st.integers(1 << 20, 6 << 20), st.sampled_from([b"x", b"\x00", b"\xff", b'{"a":['])),
        st.builds(Splice, st.sampled_from(list(splice_with)), offsets, offsets),
    )


def json_mutations(event_names: Sequence[str], keys: Sequence[str] = ()) -> st.SearchStrategy[Mutation]:
    """Mutations of one decoded JSON line: wrong types, missing keys, other events' names,
    and (given the field names to aim at) known fields set to values of any type."""
    mutations: list[st.SearchStrategy[Mutation]] = [
        st.builds(Reshape, offsets, offsets, json_values),
        st.builds(Unkey, offsets, offsets),
        st.builds(Rename, offsets, st.sampled_from(list(event_names))),
    ]
    if keys:
        mutations.append(st.builds(Set, offsets, offsets, st.sampled_from(list(keys)), json_values))
    return st.one_of(mutations)


def fuzz_settings(max_examples: int, *, deadline_s: float = 5.0) -> settings:
    """Deterministic in CI: ``max_examples`` derandomized examples, none remembered.

    ``deadline_s`` catches slowness (a quadratic path: examples take 1-100 ms, and the
    margin is for a loaded CI machine); a true hang is pytest-timeout's.
    """
    hunt = os.environ.get("SPARKHIST_FUZZ_EXAMPLES")
    return settings(
        max_examples=int(hunt) if hunt else max_examples,
        derandomize=not hunt,
        database=None,
        deadline=timedelta(seconds=deadline_s),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
        print_blob=True,
    )


def replace_files(files: list[tuple[str, bytes]], index: int, data: bytes) -> list[tuple[str, bytes]]:
    out = list(files)
    name, _ = out[index]
    out[index] = (name, data)
    return out


def write_log(directory: Path, name: str, files: list[tuple[str, bytes]], rolling: bool) -> Path:
    """The files written under ``directory`` as one log: a rolling directory or a single file."""
    if rolling:
        target = directory / name
        target.mkdir()
        for file_name, data in files:
            (target / file_name).write_bytes(data)
        return target
    ((file_name, data),) = files
    (directory / file_name).write_bytes(data)
    return directory / file_name


__all__ = [
    "NASTY",
    "Cut",
    "Drop",
    "Flip",
    "Huge",
    "Mutation",
    "Put",
    "Rename",
    "Repeat",
    "Reshape",
    "Seed",
    "Set",
    "Splice",
    "Unkey",
    "apply_all",
    "byte_mutations",
    "event_names",
    "field_names",
    "fuzz_settings",
    "json_mutations",
    "load",
    "nested",
    "replace_files",
    "seed",
    "seed_names",
    "write_log",
]


@functools.cache
def field_names() -> list[str]:
    """Every field name the seeds' events hold (not property names), sorted."""
    names: set[str] = set()
    for name in _seeds():
        for line in seed(name).lines():
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            for obj in _objects(event):
                names.update(key for key in obj if _FIELD.match(key))
    return sorted(names)


#: A field of Spark's JSON ("Task ID", "nodeName"), not a property, path or variable name.
_FIELD = re.compile(r"[A-Za-z][A-Za-z ]*\Z")


@functools.cache
def event_names() -> list[str]:
    """Every ``Event`` name the seeds hold, sorted."""
    names: set[str] = set()
    for name in _seeds():
        for line in seed(name).lines():
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(event, dict) and isinstance(event.get("Event"), str):
                names.add(event["Event"])
    return sorted(names)
