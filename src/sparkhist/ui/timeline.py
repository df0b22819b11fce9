"""Event timelines as figures: jobs (or a job's stages) and executors over an application's
life, and a stage's tasks per executor with the phases of each task.

Every bar and marker is placed from an API record's own dates and durations (``jobs``,
``stages``, ``allexecutors``, the ``taskTable`` rows a stage page shows); this module only
turns them into pixels and packs overlapping bars into lanes. The template
:file:`ui_figures.html` draws the figure; its text is escaped there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sparkhist.render.format import duration, epoch_ms

__all__ = ["Timeline", "app_timeline", "task_timeline"]

WIDTH = 1200.0
LABEL_W = 110.0
LANE_H = 18.0
AXIS_H = 22.0
MAX_LANES = 40
#: At most this many bars, the newest: the SHS's ``spark.ui.timeline.jobs.maximum`` and ``.stages.maximum``.
MAX_BARS = 500
#: A task's phases, in the SHS's order and colours (``stagepage.js``): class, label.
PHASES = (("scheduler-delay", "Scheduler Delay"), ("deserialization", "Task Deserialization Time"),
          ("shuffle-read", "Shuffle Read Time"), ("computing", "Executor Computing Time"),
          ("shuffle-write", "Shuffle Write Time"), ("serialization", "Result Serialization Time"),
          ("getting-result", "Getting Result Time"))


@dataclass(frozen=True)
class Part:
    x: float
    w: float
    cls: str


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    cls: str  # status-... : the colour
    title: str
    href: str | None
    key: str  # data-... value: the job, stage or task id
    parts: list[Part] = field(default_factory=list)


@dataclass(frozen=True)
class Marker:
    x: float
    y: float
    cls: str  # executor-added / executor-removed
    title: str
    key: str


@dataclass(frozen=True)
class Lane:
    y: float
    label: str
    h: float


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Timeline:
    kind: str  # data-kind of the bars: job, stage, task
    width: float
    height: float
    lanes: list[Lane]
    bars: list[Bar]
    markers: list[Marker]
    ticks: list[Tick]
    start: int  # ms since the epoch at x = LABEL_W
    shown: int  # bars drawn
    total: int  # bars there were
    legend: tuple[tuple[str, str], ...] = ()


class _Scale:
    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.span = max(end - start, 1)

    def x(self, ms: int) -> float:
        return LABEL_W + (WIDTH - LABEL_W - 8) * (ms - self.start) / self.span

    def ticks(self) -> list[Tick]:
        step = _nice_step(self.span / 6)
        out = []
        t = 0
        while t <= self.span:
            out.append(Tick(self.x(self.start + t), "+" + duration(t) if t else "0"))
            t += step
        return out


def _nice_step(raw: float) -> int:
    for unit in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000,
                 300_000, 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000, 43_200_000, 86_400_000):
        if unit >= raw:
            return unit
    return int(raw)


def _pack(intervals: Sequence[tuple[float, float]], gap: float = 2.0) -> list[int]:
    """A lane for each (left, right) pixel interval, the first free one (greedy by left edge)."""
    lanes_end: list[float] = []
    out = [0] * len(intervals)
    for i in sorted(range(len(intervals)), key=lambda j: intervals[j][0]):
        left, right = intervals[i]
        for lane, end in enumerate(lanes_end):
            if end + gap <= left:
                lanes_end[lane] = right
                out[i] = lane
                break
        else:
            if len(lanes_end) < MAX_LANES:
                lanes_end.append(right)
                out[i] = len(lanes_end) - 1
            else:  # too many at once: they overlap in the last lane
                out[i] = MAX_LANES - 1
                lanes_end[-1] = max(lanes_end[-1], right)
    return out


def app_timeline(kind: str, items: Sequence[dict[str, Any]], executors: Iterable[dict[str, Any]],
                 start: object, end: object, href: Callable[[dict[str, Any]], str],
                 clip: bool = False) -> Timeline | None:
    """Jobs (``kind="job"``) or stages (``"stage"``) as bars from ``submissionTime`` to
    ``completionTime`` (running ones to ``end``), executors added and removed as markers
    (with ``clip``, only those between ``start`` and ``end``: a job's window); None when
    nothing has a date."""
    id_field = "jobId" if kind == "job" else "stageId"
    dated = [i for i in items if epoch_ms(i.get("submissionTime")) is not None]
    dated.sort(key=lambda i: (int(i[id_field]), int(i.get("attemptId", 0))))
    total = len(dated)
    dated = dated[-MAX_BARS:]
    first, last = epoch_ms(start), epoch_ms(end)
    execs = [x for x in executors if epoch_ms(x.get("addTime")) is not None]
    if clip and first is not None:
        def within(x: dict[str, Any]) -> bool:
            moments = [epoch_ms(x.get("addTime")), epoch_ms(x.get("removeTime"))]
            return any(m is not None and m >= first and (last is None or m <= last) for m in moments)
        execs = [x for x in execs if within(x)]
    moments = [m for i in dated for m in (epoch_ms(i.get("submissionTime")), epoch_ms(i.get("completionTime")))]
    moments += [m for x in execs for m in (epoch_ms(x.get("addTime")), epoch_ms(x.get("removeTime")))
                if not clip or m is None or first is None or m >= first]
    known = [m for m in [*moments, first, last] if m is not None]
    if not dated and not execs or not known:
        return None
    scale = _Scale(min(known), max(known))
    now = max(known)
    markers = []
    exec_y = AXIS_H + 4
    for x in execs:
        added = epoch_ms(x.get("addTime"))
        assert added is not None
        if not clip or first is None or added >= first:
                markers.append(Marker(scale.x(added), exec_y, "executor-added",
                                  f"Executor {x['id']} added ({x.get('hostPort', '')})", str(x["id"])))
        removed = epoch_ms(x.get("removeTime"))
        if removed is not None:
            reason = x.get("removeReason") or ""
            markers.append(Marker(scale.x(removed), exec_y + LANE_H, "executor-removed",
                                  f"Executor {x['id']} removed{': ' + reason if reason else ''}", str(x["id"])))
    spans = []
    for i in dated:
        begin = epoch_ms(i.get("submissionTime"))
        assert begin is not None
        finish = epoch_ms(i.get("completionTime")) or now
        left, right = scale.x(begin), scale.x(finish)
        spans.append((left, max(right, left + 3)))
    lanes_of = _pack(spans)
    bars_top = exec_y + 2 * LANE_H + 10
    bars = []
    for i, (left, right), lane in zip(dated, spans, lanes_of, strict=True):
        key = str(i[id_field]) + (f".{i['attemptId']}" if kind == "stage" else "")
        status = str(i.get("status", ""))
        label = f"{'Job' if kind == 'job' else 'Stage'} {key}: {i.get('name', '')} ({status})"
        took = epoch_ms(i.get("completionTime"))
        if took is not None:
            label += f", {duration(took - (epoch_ms(i.get('submissionTime')) or took))}"
        bars.append(Bar(left, bars_top + lane * LANE_H, right - left, "status-" + status, label, href(i), key))
    used = max(lanes_of, default=-1) + 1
    lanes = [Lane(exec_y, "Executors", 2 * LANE_H), Lane(bars_top, "Jobs" if kind == "job" else "Stages",
                                                          max(used, 1) * LANE_H)]
    height = bars_top + max(used, 1) * LANE_H + 6
    return Timeline(kind, WIDTH, height, lanes, bars, markers, scale.ticks(), scale.start, len(bars), total,
                    (("executor-added", "Executor added"), ("executor-removed", "Executor removed")))


def _task_parts(task: dict[str, Any], left: float, width: float, total_ms: int) -> list[Part]:
    """The phases of a task, as the SHS's stage page splits its bar (``stagepage.js``)."""
    m = task.get("taskMetrics")
    if not m or total_ms <= 0:
        return []
    shuffle_read = int(m["shuffleReadMetrics"]["fetchWaitTime"])
    shuffle_write = int(m["shuffleWriteMetrics"]["writeTime"]) // 1_000_000
    deser = int(m["executorDeserializeTime"])
    ser = int(m["resultSerializationTime"])
    getting = int(task.get("gettingResultTime", 0))
    delay = int(task.get("schedulerDelay", 0))
    computing = max(0, int(m["executorRunTime"]) - shuffle_read - shuffle_write)
    values = (delay, deser, shuffle_read, computing, shuffle_write, ser, getting)
    parts = []
    at = left
    for (cls, _), ms in zip(PHASES, values, strict=True):
        w = width * ms / total_ms
        if w > 0:
            parts.append(Part(at, w, cls))
        at += w
    return parts


def task_timeline(tasks: Sequence[dict[str, Any]], href: Callable[[dict[str, Any]], str | None]) -> Timeline | None:
    """``tasks`` (``taskTable`` rows) per executor, each bar split into its phases."""
    dated = [t for t in tasks if epoch_ms(t.get("launchTime")) is not None]
    if not dated:
        return None
    starts = [epoch_ms(t["launchTime"]) or 0 for t in dated]
    ends = [s + int(t.get("duration") or 0) for s, t in zip(starts, dated, strict=True)]
    scale = _Scale(min(starts), max(ends))
    by_executor: dict[str, list[int]] = {}
    for i, t in enumerate(dated):
        by_executor.setdefault(str(t.get("executorId", "")), []).append(i)
    bars, lanes = [], []
    y = AXIS_H + 4
    for executor in sorted(by_executor, key=lambda e: (not e.isdigit(), int(e) if e.isdigit() else 0, e)):
        chosen = by_executor[executor]
        spans = [(scale.x(starts[i]), max(scale.x(ends[i]), scale.x(starts[i]) + 2)) for i in chosen]
        packed = _pack(spans, gap=1.0)
        used = max(packed) + 1
        lanes.append(Lane(y, f"Executor {executor}", used * LANE_H))
        for i, (left, right), lane in zip(chosen, spans, packed, strict=True):
            t = dated[i]
            took = int(t.get("duration") or 0)
            title = (f"Task {t['taskId']} (index {t['index']}, attempt {t['attempt']}) on {t.get('host', '')}: "
                     f"{t.get('status', '')}, {duration(took)}")
            bars.append(Bar(left, y + lane * LANE_H, right - left, "status-" + str(t.get("status", "")), title,
                            href(t), str(t["taskId"]), _task_parts(t, left, right - left, took)))
        y += used * LANE_H + 4
    return Timeline("task", WIDTH, y + 4, lanes, bars, [], scale.ticks(), scale.start, len(bars), len(tasks),
                    tuple((cls, label) for cls, label in PHASES))
