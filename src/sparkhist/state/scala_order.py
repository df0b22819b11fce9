"""The iteration order of Scala 2.13's immutable ``Map`` / ``Set``, which some SHS answers show.

Where the order shows (read in Spark's 4.2.0 sources, and in the 4.3.0 bytecode where they
could differ; every fact checked against the real SHS 4.3.0):

- ``SQLAppStatusListener.onJobStart`` keeps an execution's jobs in
  ``LiveExecutionData.jobs: immutable.Map[Int, JobExecutionStatus]``, grown by
  ``jobs + (jobId -> RUNNING)``; ``onJobEnd`` replaces the value with ``jobs + (jobId ->
  SUCCEEDED | FAILED)`` (same key: its place does not move). Nothing is ever removed. The
  SHS's default in-memory store keeps that very object in ``SQLExecutionUIData.jobs``.
- The api.v1 ``SqlResource.prepareExecutionData`` walks ``exec.jobs.foreach`` and appends
  each id to ``runningJobIds`` / ``successJobIds`` / ``failedJobIds`` by its status: each list
  is the map's iteration order, filtered.
- ``onJobStart`` also grows ``LiveExecutionData.stages: immutable.Set[Int]`` by
  ``stages ++= event.stageIds.toSet``. ``aggregateMetrics`` walks ``exec.stages.toSeq`` (the
  set's iteration order), keeps the stages that still have live metrics, and per stage the
  (accumulator id → max value, task id) of ``LiveStageMetrics``: one entry per accumulator and
  stage, so the order inside a stage does not matter. Across stages
  ``maxMetricsFromAllStages`` starts with the first stage's entry and is replaced only when
  ``value > updated(0)``: on a tie the stage that comes *first in the set's order* wins. The
  driver's updates then drop the entry when they are larger (``state/sql.py``).
- ``SparkListenerSQLExecutionStart.modifiedConfigs: immutable.Map[String, String]`` is read
  from the log by Jackson (jackson-module-scala builds it with ``Map.newBuilder``, adding the
  JSON object's entries in order); 4.3's ``ExecutionData`` gets that map as it is, and Jackson
  writes it in its iteration order. (The UI's execution page sorts it, and sorts job ids.)

The order of such a collection (``Map1``..``Map4`` / ``Set1``..``Set4`` up to four elements,
then the CHAMP trie ``HashMap`` / ``HashSet``):

- up to 4 elements: insertion order (an update in place keeps its slot);
- from 5 on: the trie's order, which depends only on the keys' hashes (a CHAMP trie is
  canonical). Each key's hash is ``Hashing.improve(key.##)``; a node splits its keys on 5 bits
  of the hash, from the low bits up (``(hash >>> shift) & 31``, shift 0, 5, ..., 30); keys alone
  in their 5-bit slot are the node's data entries, slots holding several keys become sub-nodes.
  Iteration yields a node's data entries (by slot), then each sub-node (by slot), depth first.
  Keys with the same 32-bit hash end in a collision node (below shift 30) holding them in
  insertion order.

``Int.##`` is the int itself, ``String.##`` is ``String.hashCode`` (over UTF-16 code units).
Nothing is ever removed from these collections by Spark, so removal (which can shrink a
trie back) is not modelled.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

__all__ = ["improve", "int_hash", "int_order", "map_from_json", "scala_order", "string_hash", "string_order",
           "string_pair_hash"]

K = TypeVar("K", bound=Hashable)

_MASK32 = 0xFFFFFFFF
#: ``Map4`` / ``Set4``: the largest collection that keeps insertion order.
SMALL_MAX = 4
_BITS = 5
_HASH_BITS = 32


def _int32(value: int) -> int:
    value &= _MASK32
    return value - (1 << 32) if value & 0x80000000 else value


def int_hash(value: int) -> int:
    """``Int.##``: the int itself (Spark's ids are ``Int``)."""
    return _int32(value)


def string_hash(value: str) -> int:
    """``String.hashCode``: ``s[0]*31^(n-1) + ... + s[n-1]`` over UTF-16 code units, as an int."""
    h = 0
    data = value.encode("utf-16-le", "surrogatepass")
    for i in range(0, len(data), 2):
        h = (31 * h + (data[i] | data[i + 1] << 8)) & _MASK32
    return _int32(h)


def improve(hcode: int) -> int:
    """``scala.collection.Hashing.improve``: the hash the CHAMP trie splits on (unsigned 32 bits here)."""
    h = (hcode + ~(hcode << 9)) & _MASK32
    h ^= h >> 14
    h = (h + (h << 4)) & _MASK32
    return h ^ (h >> 10)


def scala_order(keys: Iterable[K], hash_of: Callable[[K], int]) -> list[K]:
    """The iteration order of a Scala 2.13 immutable ``Map``/``Set`` grown by adding ``keys`` in order.

    A key added again keeps its first place (an update). ``hash_of`` is the key's ``##``.
    """
    unique = list(dict.fromkeys(keys))
    if len(unique) <= SMALL_MAX:
        return unique
    return _trie_order([(key, improve(hash_of(key))) for key in unique], 0)


def _trie_order(entries: list[tuple[K, int]], shift: int) -> list[K]:
    if shift >= _HASH_BITS:  # one full hash: a collision node, in insertion order
        return [key for key, _ in entries]
    slots: dict[int, list[tuple[K, int]]] = {}
    for entry in entries:
        slots.setdefault((entry[1] >> shift) & 0x1F, []).append(entry)
    ordered = sorted(slots.items())
    out = [group[0][0] for _, group in ordered if len(group) == 1]
    for _, group in ordered:
        if len(group) > 1:
            out.extend(_trie_order(group, shift + _BITS))
    return out


def int_order(keys: Iterable[int]) -> list[int]:
    """:func:`scala_order` of ``Int`` keys (job ids, stage ids)."""
    return scala_order(keys, int_hash)


def string_order(keys: Iterable[str]) -> list[str]:
    """:func:`scala_order` of ``String`` keys (configuration names)."""
    return scala_order(keys, string_hash)


# --------------------------------------------------------------------------- JsonProtocol.mapFromJson
#
# ``JsonProtocol.mapFromJson`` (an executor's ``Log Urls`` and ``Attributes``, the application
# start's ``Driver Logs`` and ``Driver Attributes``) is
# ``json.properties.asScala.map { f => (f.getKey, f.getValue.extractString) }.toMap``: the Java
# set of the JSON object's fields, wrapped as a Scala *mutable* ``Set``, is mapped into a
# ``mutable.HashSet`` of ``(key, value)`` tuples, whose iteration order then becomes the
# immutable ``Map``'s insertion order (up to four entries; from five on the trie's key order
# above). So a map of two entries shows ``stderr`` before ``stdout`` or not depending on the
# hash of the *pairs*, i.e. on the URLs (the SHS 4.3.0 on Apache's logs: executor 0 of
# app-20161115172038-0000 ``stdout`` first, executors 1, 2 and 3 ``stderr`` first).
#
# ``mutable.HashSet`` (Scala 2.13): a table of 16 buckets (doubled when the 12th element comes,
# never reached below five), an element's bucket ``improved & 15`` where ``improved = h ^ (h >>>
# 16)`` of its ``##``; a bucket's chain is kept sorted by that improved hash (signed; equal
# hashes in insertion order); iteration walks the buckets in order. A tuple's ``##`` is
# ``MurmurHash3.productHash``: seed ``0xcafebabe``, mixed with ``"Tuple2".hashCode``, then each
# element's ``##``, finalised with the arity.

_PRODUCT_SEED = 0xCAFEBABE
_HASH_SET_BUCKETS = 16


def _rotl(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (32 - bits))) & _MASK32


def _mix_last(h: int, data: int) -> int:
    k = (data * 0xCC9E2D51) & _MASK32
    k = _rotl(k, 15)
    k = (k * 0x1B873593) & _MASK32
    return (h ^ k) & _MASK32


def _mix(h: int, data: int) -> int:
    h = _rotl(_mix_last(h, data), 13)
    return (h * 5 + 0xE6546B64) & _MASK32


def _finalize(h: int, length: int) -> int:
    h = (h ^ length) & _MASK32
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK32
    h ^= h >> 16
    return _int32(h)


def string_pair_hash(key: str, value: str) -> int:
    """``(key, value).##`` of two strings (Scala 2.13's ``Tuple2``: ``MurmurHash3.productHash``)."""
    h = _mix(_PRODUCT_SEED, string_hash("Tuple2") & _MASK32)
    h = _mix(h, string_hash(key) & _MASK32)
    h = _mix(h, string_hash(value) & _MASK32)
    return _finalize(h, 2)


def _hash_set_slot(hcode: int) -> tuple[int, int]:
    """(bucket, chain order) of an element of ``##`` ``hcode`` in a ``mutable.HashSet`` of 16 buckets."""
    unsigned = hcode & _MASK32
    improved = _int32(unsigned ^ (unsigned >> 16))
    return improved & (_HASH_SET_BUCKETS - 1), improved


def map_from_json(fields: dict[str, str]) -> dict[str, str]:
    """The map ``JsonProtocol.mapFromJson`` builds from a JSON object's ``fields`` (in the log's
    order), in the order the SHS iterates it (and Jackson writes it). A map holding anything but
    strings (a malformed log) keeps its order."""
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items()):
        return dict(fields)
    if len(fields) > SMALL_MAX:
        return {key: fields[key] for key in string_order(fields)}
    ordered = sorted(fields.items(), key=lambda kv: _hash_set_slot(string_pair_hash(kv[0], kv[1])))
    return dict(ordered)
