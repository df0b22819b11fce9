//! sparkhist's compiled hot path: task events decoded outside the per-event Python loop.
//!
//! `decode_task_event(line)` parses one event-log line and, for a `SparkListenerTaskStart`
//! or `SparkListenerTaskEnd` of the usual shape, returns a flat tuple of exactly the values
//! sparkhist's Python handlers would compute from it (`sparkhist.state.events`: the checked
//! fields, the metric vector, the accumulables, the end reason, the executor metrics, the
//! SQL metric updates). Anything else (another event, invalid JSON, a field of an unusual
//! type, a repeated field, a number outside a Java long, an end reason it does not format)
//! returns `None`: the caller then runs the Python path on the line, which stays the
//! reference. So this module never has to reproduce an error, only the common case, bit
//! for bit.
//!
//! `add_task_end(...)` adds a decoded task end's metrics and peaks to its stage's, executor
//! summary's and executor's vectors in place, or changes nothing and declines (the Python
//! functions then) where Python's unbounded ints would give another result.
//!
//! The line is parsed into typed structs that borrow its strings and skip (but validate)
//! every field the handlers do not read: no tree of the whole event is built. A field of
//! another type than expected, or a field given twice, fails the parse: the Python path.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyList, PyString, PyTuple};
use pyo3::IntoPyObjectExt;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// Not the usual shape: the Python path decides.
struct Bail;
type R<T> = Result<T, Bail>;

const METRIC_PREFIX: &str = "internal.metrics.";

// ------------------------------------------------------------------ field wrappers
/// A field as logged: absent, null, or a value of the expected type.
#[derive(Default)]
enum F<T> {
    #[default]
    Missing,
    Null,
    V(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for F<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            None => F::Null,
            Some(v) => F::V(v),
        })
    }
}

impl<T> F<T> {
    fn value(&self) -> Option<&T> {
        match self {
            F::V(v) => Some(v),
            _ => None,
        }
    }
}

impl<T> F<Obj<T>> {
    fn obj(&self) -> Option<&T> {
        self.value().map(|o| &o.0)
    }
}

impl F<i64> {
    /// `d.get(k, default)` of a field checked to be an int: null is not one.
    fn int_or(&self, default: i64) -> R<i64> {
        match self {
            F::Missing => Ok(default),
            F::Null => Err(Bail),
            F::V(v) => Ok(*v),
        }
    }
    /// An int-or-null field; also `d.get(k, 0) or 0` of a number.
    fn opt(&self) -> Option<i64> {
        self.value().copied()
    }
    fn or0(&self) -> i64 {
        self.opt().unwrap_or(0)
    }
}

type Text<'a> = F<Cow<'a, str>>;

impl Text<'_> {
    /// (present, value) of a string-or-null field.
    fn text_opt(&self) -> (bool, Option<&str>) {
        match self {
            F::Missing => (false, None),
            F::Null => (true, None),
            F::V(s) => (true, Some(s.as_ref())),
        }
    }
}

/// `bool(d.get(k, default))` of a bool field: None when missing, false for null.
fn flag(f: &F<bool>) -> Option<bool> {
    match f {
        F::Missing => None,
        F::Null => Some(false),
        F::V(b) => Some(*b),
    }
}

/// Any JSON value, reduced to what the accumulable decoders ask of it.
enum Scalar<'a> {
    Null,
    Int(i64),
    Str(Cow<'a, str>),
    Bool(bool),
    Float(f64),
    /// An array or an object, with whether it is empty.
    Container(bool),
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_none<E>(self) -> Result<Self::Value, E> {
                Ok(Scalar::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(b))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                i64::try_from(v).map(Scalar::Int).map_err(|_| E::custom("beyond a Java long"))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(s)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut empty = true;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    empty = false;
                }
                Ok(Scalar::Container(empty))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut empty = true;
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
                    empty = false;
                }
                Ok(Scalar::Container(empty))
            }
        }
        d.deserialize_any(V)
    }
}

impl Scalar<'_> {
    /// Python's truthiness.
    fn truthy(&self) -> bool {
        match self {
            Scalar::Null => false,
            Scalar::Bool(b) => *b,
            Scalar::Int(i) => *i != 0,
            Scalar::Float(x) => *x != 0.0,
            Scalar::Str(s) => !s.is_empty(),
            Scalar::Container(empty) => !empty,
        }
    }
}

/// A struct that must be logged as a JSON object (serde would also read one from an array).
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(V(PhantomData)).map(Obj)
    }
}

/// Only the truthiness of a value.
struct Truth(bool);

impl<'de> Deserialize<'de> for Truth {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Truth(Scalar::deserialize(d)?.truthy()))
    }
}

// ------------------------------------------------------------------ the event, as far as it is read
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "Event", borrow)]
    event: Cow<'a, str>,
    #[serde(rename = "Stage ID", default)]
    stage_id: F<i64>,
    #[serde(rename = "Stage Attempt ID", default)]
    stage_attempt: F<i64>,
    #[serde(rename = "Task Info", default, borrow)]
    info: F<Obj<TaskInfo<'a>>>,
    #[serde(rename = "Task End Reason", default, borrow)]
    reason: F<Obj<Reason<'a>>>,
    #[serde(rename = "Task Metrics", default)]
    metrics: F<Obj<TaskMetrics>>,
    #[serde(rename = "Task Executor Metrics", default)]
    executor_metrics: F<Obj<ExecutorMetrics>>,
}

#[derive(Deserialize)]
struct TaskInfo<'a> {
    #[serde(rename = "Task ID", default)]
    task_id: F<i64>,
    #[serde(rename = "Index", default)]
    index: F<i64>,
    #[serde(rename = "Attempt", default)]
    attempt: F<i64>,
    #[serde(rename = "Partition ID", default)]
    partition_id: F<i64>,
    #[serde(rename = "Launch Time", default)]
    launch: F<i64>,
    #[serde(rename = "Executor ID", default, borrow)]
    executor_id: Text<'a>,
    #[serde(rename = "Host", default, borrow)]
    host: Text<'a>,
    #[serde(rename = "Locality", default, borrow)]
    locality: Text<'a>,
    #[serde(rename = "Speculative", default)]
    speculative: F<bool>,
    #[serde(rename = "Getting Result Time", default)]
    getting_result: F<i64>,
    #[serde(rename = "Finish Time", default)]
    finish: F<i64>,
    #[serde(rename = "Failed", default)]
    failed: F<bool>,
    #[serde(rename = "Killed", default)]
    killed: F<bool>,
    #[serde(rename = "Accumulables", default, borrow)]
    accumulables: F<Vec<Obj<Accumulable<'a>>>>,
}

#[derive(Deserialize)]
struct Accumulable<'a> {
    #[serde(rename = "ID", default, borrow)]
    id: F<Scalar<'a>>,
    #[serde(rename = "Name", default, borrow)]
    name: F<Scalar<'a>>,
    #[serde(rename = "Update", default, borrow)]
    update: F<Scalar<'a>>,
    #[serde(rename = "Value", default, borrow)]
    value: F<Scalar<'a>>,
    #[serde(rename = "Internal", default, borrow)]
    internal: F<Scalar<'a>>,
    #[serde(rename = "Metadata", default, borrow)]
    metadata: F<Scalar<'a>>,
}

#[derive(Deserialize)]
struct Reason<'a> {
    #[serde(rename = "Reason", default, borrow)]
    reason: Text<'a>,
    #[serde(rename = "Kill Reason", default, borrow)]
    kill_reason: F<Scalar<'a>>,
    #[serde(rename = "Full Stack Trace", default, borrow)]
    full_stack_trace: F<Scalar<'a>>,
}

macro_rules! metric_struct {
    ($name:ident { $($field:ident : $key:literal),+ $(,)? } $(extra { $($efield:ident : $ekey:literal => $ety:ty),+ })?) => {
        #[derive(Deserialize, Default)]
        struct $name {
            $(#[serde(rename = $key, default)] $field: F<i64>,)+
            $($(#[serde(rename = $ekey, default)] $efield: F<Obj<$ety>>,)+)?
        }
    };
}

metric_struct!(TaskMetrics {
    executor_deserialize_time: "Executor Deserialize Time",
    executor_deserialize_cpu_time: "Executor Deserialize CPU Time",
    executor_run_time: "Executor Run Time",
    executor_cpu_time: "Executor CPU Time",
    result_size: "Result Size",
    jvm_gc_time: "JVM GC Time",
    result_serialization_time: "Result Serialization Time",
    memory_bytes_spilled: "Memory Bytes Spilled",
    disk_bytes_spilled: "Disk Bytes Spilled",
    peak_execution_memory: "Peak Execution Memory",
} extra {
    input: "Input Metrics" => InputMetrics,
    output: "Output Metrics" => OutputMetrics,
    shuffle_read: "Shuffle Read Metrics" => ShuffleReadMetrics,
    shuffle_write: "Shuffle Write Metrics" => ShuffleWriteMetrics
});
metric_struct!(InputMetrics { bytes_read: "Bytes Read", records_read: "Records Read" });
metric_struct!(OutputMetrics { bytes_written: "Bytes Written", records_written: "Records Written" });
metric_struct!(ShuffleWriteMetrics {
    bytes_written: "Shuffle Bytes Written",
    write_time: "Shuffle Write Time",
    records_written: "Shuffle Records Written",
});
metric_struct!(ShuffleReadMetrics {
    remote_blocks_fetched: "Remote Blocks Fetched",
    local_blocks_fetched: "Local Blocks Fetched",
    fetch_wait_time: "Fetch Wait Time",
    remote_bytes_read: "Remote Bytes Read",
    remote_bytes_read_to_disk: "Remote Bytes Read To Disk",
    local_bytes_read: "Local Bytes Read",
    total_records_read: "Total Records Read",
    remote_requests_duration: "Remote Requests Duration",
} extra {
    push: "Push Based Shuffle" => PushMetrics,
    legacy_push: "Shuffle Push Read Metrics" => Truth
});
metric_struct!(PushMetrics {
    corrupt_merged_block_chunks: "Corrupt Merged Block Chunks",
    merged_fetch_fallback_count: "Merged Fetch Fallback Count",
    legacy_merged_fallback_count: "Merged Fallback Count",
    merged_remote_blocks_fetched: "Merged Remote Blocks Fetched",
    merged_local_blocks_fetched: "Merged Local Blocks Fetched",
    merged_remote_chunks_fetched: "Merged Remote Chunks Fetched",
    merged_local_chunks_fetched: "Merged Local Chunks Fetched",
    merged_remote_bytes_read: "Merged Remote Bytes Read",
    merged_local_bytes_read: "Merged Local Bytes Read",
    merged_remote_requests_duration: "Merged Remote Requests Duration",
});
metric_struct!(ExecutorMetrics {
    jvm_heap_memory: "JVMHeapMemory",
    jvm_off_heap_memory: "JVMOffHeapMemory",
    on_heap_execution_memory: "OnHeapExecutionMemory",
    off_heap_execution_memory: "OffHeapExecutionMemory",
    on_heap_storage_memory: "OnHeapStorageMemory",
    off_heap_storage_memory: "OffHeapStorageMemory",
    on_heap_unified_memory: "OnHeapUnifiedMemory",
    off_heap_unified_memory: "OffHeapUnifiedMemory",
    direct_pool_memory: "DirectPoolMemory",
    mapped_pool_memory: "MappedPoolMemory",
    process_tree_jvm_v_memory: "ProcessTreeJVMVMemory",
    process_tree_jvm_rss_memory: "ProcessTreeJVMRSSMemory",
    process_tree_python_v_memory: "ProcessTreePythonVMemory",
    process_tree_python_rss_memory: "ProcessTreePythonRSSMemory",
    process_tree_other_v_memory: "ProcessTreeOtherVMemory",
    process_tree_other_rss_memory: "ProcessTreeOtherRSSMemory",
    minor_gc_count: "MinorGCCount",
    minor_gc_time: "MinorGCTime",
    major_gc_count: "MajorGCCount",
    major_gc_time: "MajorGCTime",
    total_gc_time: "TotalGCTime",
    concurrent_gc_count: "ConcurrentGCCount",
    concurrent_gc_time: "ConcurrentGCTime",
});

// ------------------------------------------------------------------ the decoders of events.py
/// `_as_text`: a string as is, an int or a bool as JSON text.
fn as_text(v: &F<Scalar>) -> R<Option<String>> {
    match v.value() {
        None | Some(Scalar::Null) => Ok(None),
        Some(Scalar::Str(s)) => Ok(Some(s.to_string())),
        Some(Scalar::Bool(b)) => Ok(Some(if *b { "true" } else { "false" }.to_string())),
        Some(Scalar::Int(i)) => Ok(Some(i.to_string())),
        Some(_) => Err(Bail),
    }
}

type Accum = (i64, Option<String>, Option<String>, Option<String>);

/// `accumulables`: the non-internal, non-SQL accumulables; and `(id, update)` of every
/// one with an update, as `sql_listener` converts them (ids and updates that `int()`
/// would have to parse bail; those it rejects are left out, as it skips them).
fn accumulables(items: &F<Vec<Obj<Accumulable>>>, with_sql: bool) -> R<(Vec<Accum>, Vec<(i64, i64)>)> {
    let mut out = Vec::new();
    let mut sql = Vec::new();
    let empty = Vec::new();
    let items = match items {
        F::Missing | F::Null => &empty,
        F::V(items) => items,
    };
    for Obj(acc) in items {
        if with_sql {
            if let Some(update) = acc.update.value().filter(|u| !matches!(u, Scalar::Null)) {
                let id = match acc.id.value() {
                    None | Some(Scalar::Null) | Some(Scalar::Container(_)) => None,
                    Some(Scalar::Int(i)) => Some(*i),
                    Some(_) => return Err(Bail),
                };
                if let Some(id) = id {
                    let value = match update {
                        Scalar::Int(i) => Some(*i),
                        Scalar::Str(s) => Some(parse_long(s)?),
                        Scalar::Container(_) => None,
                        _ => return Err(Bail),
                    };
                    if let Some(value) = value {
                        sql.push((id, value));
                    }
                }
            }
        }
        if acc.internal.value().is_some_and(Scalar::truthy) {
            continue;
        }
        if matches!(acc.metadata.value(), Some(Scalar::Str(m)) if m == "sql") {
            continue;
        }
        let name = match acc.name.value() {
            None | Some(Scalar::Null) => None,
            Some(Scalar::Str(s)) => {
                if s.starts_with(METRIC_PREFIX) {
                    continue;
                }
                Some(s.to_string())
            }
            Some(_) => return Err(Bail),
        };
        let id = match acc.id {
            F::Missing => 0,
            F::V(Scalar::Int(i)) => i,
            _ => return Err(Bail),
        };
        out.push((id, name, as_text(&acc.update)?, as_text(&acc.value)?));
    }
    Ok((out, sql))
}

/// `int(s)` for the plain decimal strings Spark writes; anything fancier bails.
fn parse_long(s: &str) -> R<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Bail);
    }
    s.parse::<i64>().map_err(|_| Bail)
}

/// `task_metrics(...) or [0] * N_METRICS`, in `METRIC_NAMES` order.
fn task_metrics(tm: &F<Obj<TaskMetrics>>) -> R<Vec<i64>> {
    let Some(g) = tm.obj() else {
        return Ok(vec![0; 34]);
    };
    let none_i = InputMetrics::default();
    let none_o = OutputMetrics::default();
    let none_r = ShuffleReadMetrics::default();
    let none_w = ShuffleWriteMetrics::default();
    let none_p = PushMetrics::default();
    let i = g.input.obj().unwrap_or(&none_i);
    let o = g.output.obj().unwrap_or(&none_o);
    let r = g.shuffle_read.obj().unwrap_or(&none_r);
    let w = g.shuffle_write.obj().unwrap_or(&none_w);
    // 3.2-era logs name the push metrics otherwise, and only some releases read those names
    // (releases.legacy_push_read_metrics): where they might count, the Python path decides.
    if r.legacy_push.obj().is_some_and(|t| t.0) {
        return Err(Bail);
    }
    let p = r.push.obj().unwrap_or(&none_p);
    let fallback = match p.merged_fetch_fallback_count.or0() {
        0 if p.legacy_merged_fallback_count.or0() != 0 => return Err(Bail),
        v => v,
    };
    Ok(vec![
        g.executor_deserialize_time.or0(),
        g.executor_deserialize_cpu_time.or0(),
        g.executor_run_time.or0(),
        g.executor_cpu_time.or0(),
        g.result_size.or0(),
        g.jvm_gc_time.or0(),
        g.result_serialization_time.or0(),
        g.memory_bytes_spilled.or0(),
        g.disk_bytes_spilled.or0(),
        g.peak_execution_memory.or0(),
        i.bytes_read.or0(),
        i.records_read.or0(),
        o.bytes_written.or0(),
        o.records_written.or0(),
        r.remote_blocks_fetched.or0(),
        r.local_blocks_fetched.or0(),
        r.fetch_wait_time.or0(),
        r.remote_bytes_read.or0(),
        r.remote_bytes_read_to_disk.or0(),
        r.local_bytes_read.or0(),
        r.total_records_read.or0(),
        r.remote_requests_duration.or0(),
        p.corrupt_merged_block_chunks.or0(),
        fallback,
        p.merged_remote_blocks_fetched.or0(),
        p.merged_local_blocks_fetched.or0(),
        p.merged_remote_chunks_fetched.or0(),
        p.merged_local_chunks_fetched.or0(),
        p.merged_remote_bytes_read.or0(),
        p.merged_local_bytes_read.or0(),
        p.merged_remote_requests_duration.or0(),
        w.bytes_written.or0(),
        w.write_time.or0(),
        w.records_written.or0(),
    ])
}

/// `executor_metrics`: missing names (or a missing object) are 0.
fn executor_metrics(em: &F<Obj<ExecutorMetrics>>) -> Vec<i64> {
    let none = ExecutorMetrics::default();
    let m = em.obj().unwrap_or(&none);
    vec![
        m.jvm_heap_memory.or0(),
        m.jvm_off_heap_memory.or0(),
        m.on_heap_execution_memory.or0(),
        m.off_heap_execution_memory.or0(),
        m.on_heap_storage_memory.or0(),
        m.off_heap_storage_memory.or0(),
        m.on_heap_unified_memory.or0(),
        m.off_heap_unified_memory.or0(),
        m.direct_pool_memory.or0(),
        m.mapped_pool_memory.or0(),
        m.process_tree_jvm_v_memory.or0(),
        m.process_tree_jvm_rss_memory.or0(),
        m.process_tree_python_v_memory.or0(),
        m.process_tree_python_rss_memory.or0(),
        m.process_tree_other_v_memory.or0(),
        m.process_tree_other_rss_memory.or0(),
        m.minor_gc_count.or0(),
        m.minor_gc_time.or0(),
        m.major_gc_count.or0(),
        m.major_gc_time.or0(),
        m.total_gc_time.or0(),
        m.concurrent_gc_count.or0(),
        m.concurrent_gc_time.or0(),
    ]
}

/// `end_reason`, for the reasons whose message needs no formatting of other fields.
fn end_reason<'a>(reason: &'a F<Obj<Reason<'a>>>) -> R<(&'a str, Option<&'a str>)> {
    let Some(reason) = reason.obj() else {
        return Ok(("Success", None));
    };
    let kind = match &reason.reason {
        F::Missing => "Success",
        F::V(s) => s.as_ref(),
        F::Null => return Err(Bail),
    };
    match kind {
        "Success" => Ok((kind, None)),
        "TaskKilled" => match &reason.kill_reason {
            F::Missing => Ok((kind, Some("unknown reason"))),
            F::V(Scalar::Str(s)) => Ok((kind, Some(s.as_ref()))),
            _ => Err(Bail),
        },
        "ExceptionFailure" => match &reason.full_stack_trace {
            F::V(Scalar::Str(s)) if !s.is_empty() => Ok((kind, Some(s.as_ref()))),
            _ => Err(Bail),
        },
        "Resubmitted" => Ok((kind, Some("Resubmitted (resubmitted due to lost executor)"))),
        "TaskResultLost" => Ok((kind, Some("TaskResultLost (result lost from block manager)"))),
        _ => Err(Bail),
    }
}

// ------------------------------------------------------------------ to Python
/// A Python tuple of any length from Rust values.
macro_rules! tuple {
    ($py:expr; $($x:expr),+ $(,)?) => {
        PyTuple::new($py, [$($x.into_bound_py_any($py)?),+])?
    };
}

fn accums_to_py<'py>(py: Python<'py>, accs: Vec<Accum>) -> PyResult<Bound<'py, PyList>> {
    let items = accs.into_iter().map(|a| a.into_pyobject(py)).collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

/// The values both task handlers read, checked as `events._check_task` checks them.
struct Fields<'a> {
    stage_id: i64,
    attempt: i64,
    task_id: i64,
    index: i64,
    attempt_no: i64,
    launch: i64,
    executor_id: Option<&'a str>, // None: missing
}

fn fields<'a>(e: &'a Event, ti: &'a TaskInfo) -> R<Fields<'a>> {
    Ok(Fields {
        stage_id: e.stage_id.int_or(0)?,
        attempt: e.stage_attempt.opt().unwrap_or(0),
        task_id: ti.task_id.int_or(0)?,
        index: ti.index.int_or(0)?,
        attempt_no: ti.attempt.int_or(0)?,
        launch: ti.launch.int_or(0)?,
        executor_id: match &ti.executor_id {
            F::Missing => None,
            F::Null => return Err(Bail),
            F::V(s) => Some(s.as_ref()),
        },
    })
}

/// The `(accumulator id, update)` pairs of a `TaskEnd`, as `sql_listener` converts them, kept
/// on the Rust side: most tasks belong to no SQL stage, and those that do have them applied by
/// [`record_sql_updates`] without a Python tuple per pair.
#[pyclass(frozen, module = "sparkhist_native")]
struct SqlUpdates(Vec<(i64, i64)>);

#[pymethods]
impl SqlUpdates {
    #[new]
    fn new(pairs: Vec<(i64, i64)>) -> Self {
        SqlUpdates(pairs)
    }
    fn __len__(&self) -> usize {
        self.0.len()
    }
    /// The pairs, in the order the accumulables were logged.
    fn pairs(&self) -> Vec<(i64, i64)> {
        self.0.clone()
    }
}

/// `sql_listener._record` (``LiveStageMetrics.updateTaskMetrics``) over the decoded pairs:
/// for each update of one of the execution's metrics (`types`: id -> metric type), the task's
/// value at `index` of `all_values[id]` (created as `[0] * num_tasks`), and for a metric not
/// of type "sum" its maximum with the first task that reached it (`max_values[id]`:
/// `[value, task id]`). The same dicts and lists the Python path fills, the same order.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn record_sql_updates<'py>(
    py: Python<'py>,
    updates: &SqlUpdates,
    types: &Bound<'py, PyDict>,
    all_values: &Bound<'py, PyDict>,
    max_values: &Bound<'py, PyDict>,
    num_tasks: &Bound<'py, PyAny>,
    index: i64,
    task_id: i64,
) -> PyResult<()> {
    let mut zeros: Option<Bound<'py, PyList>> = None;
    for &(acc_id, value) in &updates.0 {
        let Some(mtype) = types.get_item(acc_id)? else {
            continue;
        };
        let values = match all_values.get_item(acc_id)? {
            Some(values) => values,
            None => {
                let one = match &zeros {
                    Some(z) => z.clone(),
                    None => zeros.insert(PyList::new(py, [0i64])?).clone(),
                };
                let values = one.as_any().mul(num_tasks)?; // [0] * num_tasks, as Python computes it
                all_values.set_item(acc_id, &values)?;
                values
            }
        };
        let values = values.cast::<PyList>()?;
        if index >= 0 && (index as usize) < values.len() {
            values.set_item(index as usize, value)?;
        }
        let is_sum = match mtype.cast::<PyString>() {
            Ok(s) => s.to_str()? == "sum",
            Err(_) => mtype.eq("sum")?,
        };
        if is_sum {
            continue;
        }
        match max_values.get_item(acc_id)? {
            None => max_values.set_item(acc_id, PyList::new(py, [value, task_id])?)?,
            Some(current) => {
                let current = current.cast::<PyList>()?;
                let first = current.get_item(0)?;
                let greater = match first.extract::<i64>() {
                    Ok(v) => value > v,
                    Err(_) => value.into_pyobject(py)?.gt(&first)?, // a value the Python path read
                };
                if greater {
                    current.set_item(0, value)?;
                    current.set_item(1, task_id)?;
                }
            }
        }
    }
    Ok(())
}

fn decode<'py>(py: Python<'py>, line: &[u8]) -> PyResult<Option<Bound<'py, PyTuple>>> {
    // serde_json skips the strings of unread fields without checking them as orjson checks
    // every string: the whole line must be UTF-8, and a \\u escape (which may be a lone
    // surrogate) leaves the line to the Python path.
    let Ok(text) = std::str::from_utf8(line) else {
        return Ok(None);
    };
    if memchr::memmem::find(line, b"\\u").is_some() {
        return Ok(None);
    }
    let Ok(Obj(e)) = serde_json::from_str::<Obj<Event>>(text) else {
        return Ok(None);
    };
    let start = match e.event.as_ref() {
        "SparkListenerTaskStart" => true,
        "SparkListenerTaskEnd" => false,
        _ => return Ok(None),
    };
    let Some(ti) = e.info.obj() else {
        return Ok(None);
    };
    let Ok(f) = fields(&e, ti) else {
        return Ok(None);
    };
    let host = ti.host.text_opt();
    let locality = ti.locality.text_opt();
    let speculative = flag(&ti.speculative);
    if start {
        let Ok((accs, _)) = accumulables(&ti.accumulables, false) else {
            return Ok(None);
        };
        return Ok(Some(tuple!(py;
            0,
            f.stage_id,
            f.attempt,
            f.task_id,
            f.index,
            f.attempt_no,
            ti.partition_id.opt(),
            f.launch,
            f.executor_id.unwrap_or(""),
            if host.0 { host.1 } else { Some("") },
            if locality.0 { locality.1 } else { Some("") },
            speculative.unwrap_or(false),
            accums_to_py(py, accs)?
        )));
    }
    let decoded = (|| -> R<_> {
        let (accs, sql) = accumulables(&ti.accumulables, true)?;
        Ok((end_reason(&e.reason)?, task_metrics(&e.metrics)?, accs, sql))
    })();
    let Ok(((kind, message), metrics, accs, sql)) = decoded else {
        return Ok(None);
    };
    // Which optional fields were logged: the handler keeps the task's own value otherwise.
    let present = (f.executor_id.is_some() as i64)
        | ((host.0 as i64) << 1)
        | ((locality.0 as i64) << 2)
        | ((speculative.is_some() as i64) << 3);
    Ok(Some(tuple!(py;
        1,
        f.stage_id,
        f.attempt,
        f.task_id,
        f.index,
        kind,
        message,
        PyList::new(py, metrics)?,
        ti.finish.or0(),
        f.launch,
        ti.getting_result.or0(),
        flag(&ti.failed).unwrap_or(false),
        flag(&ti.killed).unwrap_or(false),
        present,
        f.executor_id.unwrap_or(""),
        host.1,
        locality.1,
        speculative.unwrap_or(false),
        ti.partition_id.opt(),
        accums_to_py(py, accs)?,
        PyList::new(py, executor_metrics(&e.executor_metrics))?,
        Bound::new(py, SqlUpdates(sql))?
    )))
}

/// The decoded values of a task event, or None when the Python path must read the line.
#[pyfunction]
fn decode_task_event<'py>(py: Python<'py>, line: &[u8]) -> PyResult<Option<Bound<'py, PyTuple>>> {
    decode(py, line)
}

/// The listing pass's filter over one decoded chunk, in one pass over its newlines:
/// `(newlines, last, found)`: how many `\n` the chunk holds, where the last one is (-1: none),
/// and `(start, end, before)` of each complete line that begins after a `\n` and either starts
/// with one of `prefixes` or is the chunk's last complete line: its first byte, its `\n`, and
/// how many `\n` come before it. (A line that begins the chunk may continue a line of the
/// previous chunk: the caller checks it.)
#[pyfunction]
fn scan_lines(py: Python<'_>, data: &[u8], prefixes: Vec<Vec<u8>>) -> (usize, isize, Vec<(usize, usize, usize)>) {
    py.detach(|| {
        let mut found = Vec::new();
        let mut newlines = 0usize;
        let mut open: Option<(usize, usize)> = None; // a wanted line still looking for its end
        let mut previous: Option<usize> = None; // the newline before the last one seen
        let mut last: Option<usize> = None;
        for i in memchr::memchr_iter(b'\n', data) {
            if let Some((start, before)) = open.take() {
                found.push((start, i, before));
            }
            previous = last;
            last = Some(i);
            newlines += 1;
            let rest = &data[i + 1..];
            if prefixes.iter().any(|p| rest.starts_with(p)) {
                open = Some((i + 1, newlines));
            }
        }
        // The last complete line, if it begins after a newline and is not already there.
        if let (Some(end), Some(before_end)) = (last, previous) {
            let start = before_end + 1;
            if found.last().is_none_or(|f| f.0 != start) {
                found.push((start, end, newlines - 1));
            }
        }
        (newlines, last.map_or(-1, |l| l as isize), found)
    })
}

// ------------------------------------------------------------------ a task's end, summed
/// Longest vector `add_task_end` takes (task metrics are 34, executor metrics 23).
const MAX_VECTOR: usize = 64;

/// The values of `list` into `out` if each is an exact Python int (not a bool, not a
/// subclass) that fits an i64 and the list is `out`'s length; false otherwise.
fn exact_ints(list: &Bound<'_, PyList>, out: &mut [i64]) -> PyResult<bool> {
    if list.len() != out.len() {
        return Ok(false);
    }
    for (i, slot) in out.iter_mut().enumerate() {
        let item = list.get_item(i)?;
        if !item.is_exact_instance_of::<PyInt>() {
            return Ok(false);
        }
        match item.extract::<i64>() {
            Ok(v) => *slot = v,
            Err(_) => return Ok(false), // beyond a Java long: Python's ints decide
        }
    }
    Ok(true)
}

/// What a task's end adds to its stage, the stage's executor summary and its executor, in
/// place: `delta` (None: nothing) added to `stage_metrics` and `summary_metrics`
/// (`add_metrics`), and `peaks` (None: nothing) raising `stage_peaks`, `summary_peaks` and
/// `executor_peaks` (None: no live executor) (`update_peaks`). All or nothing: when a
/// vector is not of the usual shape (lengths that differ, a value that is not an exact
/// int within an i64, a sum beyond one), nothing is changed and false leaves it all to
/// the Python functions, whose ints do not overflow.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (stage_metrics, summary_metrics, delta, peaks, stage_peaks, summary_peaks, executor_peaks))]
fn add_task_end(
    stage_metrics: &Bound<'_, PyList>,
    summary_metrics: &Bound<'_, PyList>,
    delta: Option<&Bound<'_, PyList>>,
    peaks: Option<&Bound<'_, PyList>>,
    stage_peaks: &Bound<'_, PyList>,
    summary_peaks: &Bound<'_, PyList>,
    executor_peaks: Option<&Bound<'_, PyList>>,
) -> PyResult<bool> {
    let mut d = [0i64; MAX_VECTOR];
    let mut sums = [[0i64; MAX_VECTOR]; 2];
    let mut n = 0;
    if let Some(delta) = delta {
        n = delta.len();
        if n > MAX_VECTOR || !exact_ints(delta, &mut d[..n])? {
            return Ok(false);
        }
        for (target, sum) in [stage_metrics, summary_metrics].into_iter().zip(sums.iter_mut()) {
            if !exact_ints(target, &mut sum[..n])? {
                return Ok(false);
            }
            for (s, x) in sum[..n].iter_mut().zip(&d[..n]) {
                match s.checked_add(*x) {
                    Some(v) => *s = v,
                    None => return Ok(false),
                }
            }
        }
    }
    let mut p = [0i64; MAX_VECTOR];
    let mut current = [[0i64; MAX_VECTOR]; 3];
    let mut m = 0;
    let targets = [Some(stage_peaks), Some(summary_peaks), executor_peaks];
    if let Some(peaks) = peaks {
        m = peaks.len();
        if m > MAX_VECTOR || !exact_ints(peaks, &mut p[..m])? {
            return Ok(false);
        }
        for (target, values) in targets.iter().zip(current.iter_mut()) {
            if let Some(target) = target {
                if !exact_ints(target, &mut values[..m])? {
                    return Ok(false);
                }
            }
        }
    }
    // Everything checked: write what changed.
    if delta.is_some() {
        for (target, sum) in [stage_metrics, summary_metrics].into_iter().zip(&sums) {
            for i in 0..n {
                if d[i] != 0 {
                    target.set_item(i, sum[i])?;
                }
            }
        }
    }
    if peaks.is_some() {
        for (target, values) in targets.iter().zip(&current) {
            if let Some(target) = target {
                for i in 0..m {
                    if p[i] > values[i] {
                        target.set_item(i, p[i])?;
                    }
                }
            }
        }
    }
    Ok(true)
}

#[pymodule]
fn sparkhist_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(decode_task_event, m)?)?;
    m.add_function(wrap_pyfunction!(scan_lines, m)?)?;
    m.add_function(wrap_pyfunction!(record_sql_updates, m)?)?;
    m.add_function(wrap_pyfunction!(add_task_end, m)?)?;
    m.add_class::<SqlUpdates>()?;
    m.add("ABI", 2)?;
    Ok(())
}
