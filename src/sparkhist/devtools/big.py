"""A huge application made of a real log's events: one stage with N tasks.

Built from the events real Spark wrote (the template log's start-up events, one of
its jobs, stages and task events), with task ids, indices and partitions renumbered,
so memory and speed can be measured at sizes local Spark cannot produce quickly
(a stage of 200,000 tasks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from sparkhist.devtools.scale import Template

_HEAD = (
    "SparkListenerLogStart", "SparkListenerResourceProfileAdded", "SparkListenerExecutorAdded",
    "SparkListenerBlockManagerAdded", "SparkListenerEnvironmentUpdate", "SparkListenerApplicationStart",
)


def write_big_log(template: Template, dest: Path, app_id: str, tasks: int) -> Path:
    """Write ``<dest>/<app_id>``: a finished app with one job whose one stage has ``tasks`` tasks."""
    events = [orjson.loads(line) for line in template.lines]
    first = {e["Event"]: e for e in reversed(events)}
    task_start = first["SparkListenerTaskStart"]
    task_end = next(e for e in events if e["Event"] == "SparkListenerTaskEnd" and e["Task End Reason"]["Reason"] == "Success")
    stage_id = task_end["Stage ID"]
    submitted = next(e for e in events if e["Event"] == "SparkListenerStageSubmitted" and e["Stage Info"]["Stage ID"] == stage_id)
    completed = next(e for e in events if e["Event"] == "SparkListenerStageCompleted" and e["Stage Info"]["Stage ID"] == stage_id)
    job_start = next(e for e in events if e["Event"] == "SparkListenerJobStart" and stage_id in e["Stage IDs"])
    job_end = next(e for e in events if e["Event"] == "SparkListenerJobEnd" and e["Job ID"] == job_start["Job ID"])
    for stage in (submitted["Stage Info"], completed["Stage Info"], *job_start["Stage Infos"]):
        if stage["Stage ID"] == stage_id:
            stage["Number of Tasks"] = tasks
    job_start["Stage IDs"] = [stage_id]
    job_start["Stage Infos"] = [s for s in job_start["Stage Infos"] if s["Stage ID"] == stage_id]
    path = dest / app_id
    old_id = template.app_id.encode()
    with open(path, "wb") as out:
        def emit(event: dict[str, Any]) -> None:
            out.write(orjson.dumps(event).replace(old_id, app_id.encode()) + b"\n")

        for event in events:
            if event["Event"] in _HEAD:
                emit(event)
        emit(job_start)
        emit(submitted)
        start_info, end_info = task_start["Task Info"], task_end["Task Info"]
        for i in range(tasks):
            for info in (start_info, end_info):
                info["Task ID"], info["Index"], info["Partition ID"] = i, i, i
            emit(task_start)
            emit(task_end)
        emit(completed)
        emit(job_end)
        emit(first["SparkListenerApplicationEnd"])
    return path
