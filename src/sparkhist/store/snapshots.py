"""Per-attempt snapshots: the application state and the log position it reflects, in sections.

One file per event log, ``snapshots/<xxh64(log path)>.snap``::

    header   magic "SPKHSNAP" | format u16 | flags u16 | sections u32 | xxh64(header[:16] + table) u64
    table    per section: offset u64 | length u64 | raw length u64 | xxh64(payload) u64
    payloads section 0: the summary, 1: the indices, then one per task group, then one
             stage index per chunked stage attempt

Every payload is a zstd-compressed pickle. Section 0 holds the :class:`Snapshot` with
the state's *summary* (everything but tasks, see :mod:`sparkhist.state.sections`) and
the section index (which section holds which stage attempt's tasks; for a chunked
stage attempt its chunks' sections, the task position each starts at, and the section
of its :class:`~sparkhist.state.sections.StageIndex`); the others hold the indices,
task groups and stage indexes. A request that needs no task reads the header, the
table and section 0 only; tasks are read later from their own sections, checked against its own
checksum, and only if the file still is the one the summary came from (the table's
checksum is the file's *generation*: equal tables mean equal sections).

One file, not one per section: a snapshot is replaced by a single rename, so a
``kill -9`` leaves either the old or the new file, never a mix of sections from two
versions; the disk budget, the scanner's renames and deletions keep handling one file
per attempt.

Files are written atomically (temp file, fsync, rename, directory fsync) and verified
when read (the whole file for a full read, the table and each section read otherwise);
a file that fails verification is moved to ``quarantine/`` and reported as
:class:`StoreCorrupt`, so its application is rebuilt from the log instead of served
wrong. A write that fails (e.g. ENOSPC) leaves no partial file behind.
"""

from __future__ import annotations

import logging
import os
import pickle
import struct
import time
from dataclasses import dataclass, field
from typing import Any

import xxhash
import zstandard

from sparkhist.errors import StoreCorrupt, StoreError
from sparkhist.files import unlink_quietly, write_file_atomically
from sparkhist.reader.position import Position
from sparkhist.state import sections

log = logging.getLogger("sparkhist.store")

MAGIC = b"SPKHSNAP"
# 2: SQL driver updates kept as a list, RDD distributions remember their written "remaining"
# 3: sectioned (summary + task groups, each with its own checksum)
# 4: big stage attempts chunked (in task id order) with a stage index section each
# 5: SQL executions keep queryId and modifiedConfigs, plan nodes their desc (SHS 4.3's fields)
# 6: each stage's RDDs for its DAG (AppState.rdd_graphs); the exit code, the parse variant
#    (states read as another release reads logs are read again) and executor heartbeats applied
FORMAT = 6
_HEADER = struct.Struct("<8sHHIQ")
_ENTRY = struct.Struct("<QQQQ")
_MAX_SECTIONS = 1 << 20
SNAPSHOT_DIR = "snapshots"
QUARANTINE_DIR = "quarantine"
TEMP_SUFFIX = ".tmp"


class SnapshotChanged(StoreError):
    """The snapshot file is no longer the one a summary was read from (rewritten, evicted
    or quarantined): the caller reloads the summary and tries again."""


@dataclass(slots=True)
class Snapshot:
    """The state of one attempt after reading its log up to ``position``."""

    log_path: str
    position: Position
    resume_file: str | None
    log_size: int  # total stored bytes of the log when read (to tell a grown log)
    in_progress: bool  # whether the log was still being written when read
    state: Any
    log_mtime_ms: int = 0  # the log's mtime when read: the completed attempt's lastUpdated
    persisted: bool = False  # set by the indexer; not meaningful inside the file
    #: Uncompressed size of the sections the state was read from (the summary's alone for
    #: :meth:`SnapshotStore.read_summary`), 0 for a state not read from a file: what a
    #: memory estimate needs, for free. Set when read; not meaningful inside the file.
    pickled_bytes: int = 0


@dataclass(frozen=True, slots=True)
class Section:
    offset: int
    length: int
    raw_length: int  # uncompressed: what a memory estimate needs before loading
    checksum: int


@dataclass(slots=True)
class Layout:
    """What a summary reader keeps to load task sections later."""

    generation: int  # the table's checksum
    sections: list[Section]
    stage_sections: dict[tuple[int, int], int] = field(default_factory=dict)  # stage attempt -> (first) section
    section_tasks: list[int] = field(default_factory=list)  # tasks held by each section (0: summary)
    first_task_section: int = 2  # 1 when there is no indices section (not an AppState)
    task_sections_end: int = 0  # the stage index sections follow the task groups
    #: chunked stage attempt -> (its sections, the position each starts at plus the task
    #: count, the section of its StageIndex)
    stage_chunks: dict[tuple[int, int], Chunks] = field(default_factory=dict)

    def task_sections(self) -> int:
        return self.task_sections_end - self.first_task_section


#: A chunked stage attempt in a :class:`Layout`.
Chunks = tuple[tuple[int, ...], tuple[int, ...], int]


def snapshot_name(log_path: str) -> str:
    return xxhash.xxh64_hexdigest(log_path.encode()) + ".snap"


# ------------------------------------------------------------------------- encoding
def _dump(obj: Any, compressor: zstandard.ZstdCompressor) -> tuple[bytes, int]:
    raw = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return compressor.compress(raw), len(raw)


def encode(snapshot: Snapshot) -> bytes:
    compressor = zstandard.ZstdCompressor(level=3)
    state = snapshot.state
    groups: list[sections.TaskGroup] = []
    indexes: list[sections.StageIndex] = []
    extra: list[Any] = []
    if sections.splittable(state):
        state, groups, indices, indexes = sections.split(state)
        extra.append(indices)
    first = 1 + len(extra)
    end = first + len(groups)
    stage_sections: dict[tuple[int, int], int] = {}
    chunk_sections: dict[tuple[int, int], list[int]] = {}
    chunk_starts: dict[tuple[int, int], list[int]] = {}
    for i, group in enumerate(groups, start=first):
        for key, ids, _ in group:
            if key is not None:
                stage_sections.setdefault(key, i)
                chunk_sections.setdefault(key, []).append(i)
                starts = chunk_starts.setdefault(key, [0])
                starts.append(starts[-1] + len(ids))
    stage_chunks = {index.key: (tuple(chunk_sections[index.key]), tuple(chunk_starts[index.key]), end + j)
                    for j, index in enumerate(indexes)}
    section_tasks = [0] * first + [sections.group_tasks(g) for g in groups] + [0] * len(indexes)
    head = Snapshot(snapshot.log_path, snapshot.position, snapshot.resume_file, snapshot.log_size,
                    snapshot.in_progress, state, snapshot.log_mtime_ms)
    payloads = [_dump((head, stage_sections, section_tasks, first, end, stage_chunks), compressor)]
    payloads += [_dump(obj, compressor) for obj in (*extra, *groups, *indexes)]
    snapshot.pickled_bytes = sum(raw for _, raw in payloads)  # as a read of the file sets it: the memory estimate's measure
    offset = _HEADER.size + _ENTRY.size * len(payloads)
    table = bytearray()
    for payload, raw in payloads:
        table += _ENTRY.pack(offset, len(payload), raw, xxhash.xxh64_intdigest(payload))
        offset += len(payload)
    prefix = _HEADER.pack(MAGIC, FORMAT, 0, len(payloads), 0)[:16]
    generation = xxhash.xxh64_intdigest(prefix + table)
    return b"".join([prefix, struct.pack("<Q", generation), table, *(p for p, _ in payloads)])


def _parse_header(head: bytes, where: str) -> tuple[int, int]:
    """(sections, generation) from the fixed header; StoreCorrupt if it is not ours."""
    if len(head) < _HEADER.size:
        raise StoreCorrupt(f"{where}: truncated header ({len(head)} bytes)")
    magic, fmt, _flags, count, generation = _HEADER.unpack_from(head)
    if magic != MAGIC:
        raise StoreCorrupt(f"{where}: bad magic")
    if fmt != FORMAT:
        raise StoreCorrupt(f"{where}: snapshot format {fmt}, expected {FORMAT}")
    if not 1 <= count <= _MAX_SECTIONS:
        raise StoreCorrupt(f"{where}: bad section count {count}")
    return count, generation


def _parse_table(head: bytes, table: bytes, count: int, generation: int, where: str,
                 file_size: int) -> list[Section]:
    if len(table) != count * _ENTRY.size:
        raise StoreCorrupt(f"{where}: truncated section table")
    if xxhash.xxh64_intdigest(head[:16] + table) != generation:
        raise StoreCorrupt(f"{where}: section table checksum mismatch")
    out = [Section(*_ENTRY.unpack_from(table, i * _ENTRY.size)) for i in range(count)]
    for i, s in enumerate(out):
        if s.offset + s.length > file_size:
            raise StoreCorrupt(f"{where}: section {i} is truncated")
    return out


def _load(payload: bytes | memoryview, section: Section, index: int, where: str) -> Any:
    if len(payload) != section.length:
        raise StoreCorrupt(f"{where}: section {index} is truncated")
    if xxhash.xxh64_intdigest(payload) != section.checksum:
        raise StoreCorrupt(f"{where}: section {index} checksum mismatch")
    try:
        return pickle.loads(zstandard.ZstdDecompressor().decompress(payload))
    except Exception as exc:  # a checksum collision or a code change; never serve it
        raise StoreCorrupt(f"{where}: section {index} cannot be decoded ({exc})") from exc


def _summary(obj: Any, layout: Layout, where: str) -> Snapshot:
    try:
        snapshot, stage_sections, section_tasks, first, end, stage_chunks = obj
    except (TypeError, ValueError) as exc:
        raise StoreCorrupt(f"{where}: not a snapshot") from exc
    if (not isinstance(snapshot, Snapshot) or len(section_tasks) != len(layout.sections) or first not in (1, 2)
            or not first <= end <= len(layout.sections)
            or any(not all(first <= i < end for i in secs) or len(starts) != len(secs) + 1
                   or not end <= index < len(layout.sections) for secs, starts, index in stage_chunks.values())):
        raise StoreCorrupt(f"{where}: not a snapshot")
    layout.stage_sections = stage_sections
    layout.section_tasks = section_tasks
    layout.first_task_section = first
    layout.task_sections_end = end
    layout.stage_chunks = stage_chunks
    snapshot.pickled_bytes = layout.sections[0].raw_length  # set here: files written before the field lack it
    return snapshot


def decode_layout(blob: bytes, where: str) -> tuple[Snapshot, Layout]:
    """A whole file, every section verified; the state has all its tasks back."""
    count, generation = _parse_header(blob, where)
    table_end = _HEADER.size + count * _ENTRY.size
    table = _parse_table(blob, blob[_HEADER.size:table_end], count, generation, where, len(blob))
    end = max(s.offset + s.length for s in table)
    if end != len(blob):
        raise StoreCorrupt(f"{where}: file is {len(blob)} bytes, its sections end at {end}")
    layout = Layout(generation, table)
    view = memoryview(blob)
    snapshot = _summary(_load(view[table[0].offset:table[0].offset + table[0].length], table[0], 0, where), layout, where)
    rest = [_load(view[s.offset:s.offset + s.length], s, i, where) for i, s in enumerate(table) if i > 0]
    first, end = layout.first_task_section, layout.task_sections_end
    groups, indexes = rest[first - 1:end - 1], rest[end - 1:]
    if (not all(isinstance(g, list) for g in groups) or not all(isinstance(x, sections.StageIndex) for x in indexes)
            or len(indexes) != len(layout.stage_chunks)):
        raise StoreCorrupt(f"{where}: a section holds the wrong kind of content")
    if layout.first_task_section == 2:
        if not sections.splittable(snapshot.state) or not rest:
            raise StoreCorrupt(f"{where}: sections without an application state")
        sections.merge(snapshot.state, groups, rest[0])
        snapshot.pickled_bytes += sum(s.raw_length for s in table[1:])
    elif rest:
        raise StoreCorrupt(f"{where}: task sections without an application state")
    return snapshot, layout


def decode(blob: bytes, where: str) -> Snapshot:
    return decode_layout(blob, where)[0]


# ------------------------------------------------------------------------- the directory
class SnapshotStore:
    """The ``snapshots/`` directory of a store."""

    def __init__(self, store_dir: str, *, create: bool = True) -> None:
        self.dir = os.path.join(store_dir, SNAPSHOT_DIR)
        self.quarantine_dir = os.path.join(store_dir, QUARANTINE_DIR)
        if create:
            os.makedirs(self.dir, exist_ok=True)
        self.corrupt_found = 0
        self.quarantined: dict[str, str] = {}  # log path -> reason
        self.section_reads = 0  # task sections read on their own (for tests and metrics)
        self.summary_reads = 0

    def path_for(self, log_path: str) -> str:
        return os.path.join(self.dir, snapshot_name(log_path))

    def remove_temp_files(self) -> int:
        """Half-written files of a process that died mid-write."""
        removed = 0
        for name in os.listdir(self.dir):
            if name.endswith(TEMP_SUFFIX):
                os.unlink(os.path.join(self.dir, name))
                removed += 1
        if removed:
            log.info("removed %d half-written snapshot files", removed)
        return removed

    def write(self, snapshot: Snapshot) -> int:
        """Atomically replace the snapshot of ``snapshot.log_path``; returns its size."""
        blob = encode(snapshot)
        final = self.path_for(snapshot.log_path)
        temp = f"{final}.{os.getpid()}{TEMP_SUFFIX}"
        try:
            write_file_atomically(final, blob, temp)
        except OSError as exc:
            raise StoreError(f"cannot write snapshot for {snapshot.log_path}: {exc}") from exc
        self.quarantined.pop(snapshot.log_path, None)
        return len(blob)

    def read(self, log_path: str) -> Snapshot | None:
        """The verified snapshot with every section (the writer's resume), None if there is none;
        :class:`StoreCorrupt` after quarantining a bad one."""
        path = self.path_for(log_path)
        try:
            with open(path, "rb") as f:
                blob = f.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read snapshot {path}: {exc}") from exc
        try:
            snapshot = decode(blob, path)
            if snapshot.log_path != log_path:
                raise StoreCorrupt(f"{path}: belongs to {snapshot.log_path}")
        except StoreCorrupt as exc:
            self._corrupt(log_path, exc)
            raise
        return snapshot

    def read_summary(self, log_path: str) -> tuple[Snapshot, Layout] | None:
        """The snapshot with its summary state only (no task), and the layout to load task
        sections with :meth:`read_section`; None if there is none, StoreCorrupt after quarantine."""
        path = self.path_for(log_path)
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read snapshot {path}: {exc}") from exc
        try:
            with f:
                size = os.fstat(f.fileno()).st_size
                head = f.read(_HEADER.size)
                count, generation = _parse_header(head, path)
                table = _parse_table(head, f.read(count * _ENTRY.size), count, generation, path, size)
                layout = Layout(generation, table)
                first = table[0]
                snapshot = _summary(_load(os.pread(f.fileno(), first.length, first.offset), first, 0, path), layout, path)
            if snapshot.log_path != log_path:
                raise StoreCorrupt(f"{path}: belongs to {snapshot.log_path}")
        except StoreCorrupt as exc:
            self._corrupt(log_path, exc)
            raise
        except OSError as exc:
            raise StoreError(f"cannot read snapshot {path}: {exc}") from exc
        self.summary_reads += 1
        return snapshot, layout

    def read_section(self, log_path: str, layout: Layout, index: int, kind: type = list) -> Any:
        """Task section ``index`` of the file ``layout`` was read from (a task group; a
        :class:`~sparkhist.state.sections.StageIndex` with ``kind=StageIndex``).

        :class:`SnapshotChanged` if the file was replaced or removed since; StoreCorrupt
        (after quarantining the file) if the section fails its checksum.
        """
        path = self.path_for(log_path)
        section = layout.sections[index]
        try:
            with open(path, "rb") as f:
                head = f.read(_HEADER.size)
                try:
                    _count, generation = _parse_header(head, path)
                except StoreCorrupt:
                    generation = None
                if generation != layout.generation:
                    raise SnapshotChanged(f"{path} was replaced since its summary was read")
                payload = os.pread(f.fileno(), section.length, section.offset)
            group = _load(payload, section, index, path)
            if not isinstance(group, kind):
                raise StoreCorrupt(f"{path}: section {index} is not a {kind.__name__}")
        except FileNotFoundError as exc:
            raise SnapshotChanged(f"{path} was removed since its summary was read") from exc
        except StoreCorrupt as exc:
            self._corrupt(log_path, exc)
            raise
        except OSError as exc:
            raise StoreError(f"cannot read snapshot {path}: {exc}") from exc
        self.section_reads += 1
        return group

    def _corrupt(self, log_path: str, exc: StoreCorrupt) -> None:
        self.corrupt_found += 1
        self.quarantine(log_path, str(exc))

    def pickled_size(self, log_path: str) -> int:
        """The uncompressed size of a snapshot's summary section, from its first bytes (0 if unknown).

        Lets the state cache make room *before* loading a summary.
        """
        try:
            with open(self.path_for(log_path), "rb") as f:
                head = f.read(_HEADER.size + _ENTRY.size)
            _parse_header(head, log_path)
            return Section(*_ENTRY.unpack_from(head, _HEADER.size)).raw_length
        except (OSError, StoreCorrupt, struct.error):
            return 0

    def read_file(self, name: str) -> Snapshot:
        """A snapshot by file name (catalog rebuild); a damaged one is quarantined."""
        path = os.path.join(self.dir, name)
        try:
            with open(path, "rb") as f:
                blob = f.read()
        except OSError as exc:
            raise StoreError(f"cannot read snapshot {path}: {exc}") from exc
        try:
            snapshot = decode(blob, path)
            if snapshot_name(snapshot.log_path) != name:
                raise StoreCorrupt(f"{path}: belongs to {snapshot.log_path}")
        except StoreCorrupt as exc:
            self.corrupt_found += 1
            os.makedirs(self.quarantine_dir, exist_ok=True)
            os.replace(path, os.path.join(self.quarantine_dir, f"{name}.{int(time.time() * 1000)}"))
            log.warning("snapshot %s quarantined: %s", name, exc)
            raise
        return snapshot

    def quarantine(self, log_path: str, reason: str) -> None:
        path = self.path_for(log_path)
        os.makedirs(self.quarantine_dir, exist_ok=True)
        target = os.path.join(self.quarantine_dir, f"{os.path.basename(path)}.{int(time.time() * 1000)}")
        try:
            os.replace(path, target)
        except FileNotFoundError:
            pass
        self.quarantined[log_path] = reason
        log.warning("snapshot of %s quarantined: %s", log_path, reason, extra={"event": "quarantine", "log_path": log_path})

    def delete(self, log_path: str) -> None:
        unlink_quietly(self.path_for(log_path))

    def file_names(self) -> list[str]:
        return [n for n in os.listdir(self.dir) if n.endswith(".snap")]
