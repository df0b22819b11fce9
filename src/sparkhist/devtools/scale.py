"""The corpus scaler: real Spark event logs copied as N applications with new ids.

Each copy is the template's lines with its application id rewritten, re-encoded in
the template's codec framing (or a chosen one) and layout (or a chosen one), so a
handful of logs written by real Spark becomes thousands of distinct applications
that read exactly like the originals.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import orjson

from sparkhist.reader.encoders import ENCODERS
from sparkhist.reader.layout import IN_PROGRESS, find_event_log
from sparkhist.reader.stream import read_lines
from sparkhist.source.local import LocalSource

DEFAULT_BLOCK = 32768


@dataclass(frozen=True)
class Template:
    path: Path
    app_id: str
    codec: str | None
    kind: str  # single | rolling
    in_progress: bool
    lines: tuple[bytes, ...]


def load_template(path: Path) -> Template:
    source = LocalSource(str(path.parent))
    log = find_event_log(source, str(path))
    lines = tuple(line for line, _ in read_lines(source, log))
    app_id = None
    for line in lines:
        if line.startswith(b'{"Event":"SparkListenerApplicationStart"'):
            app_id = orjson.loads(line)["App ID"]
            break
    if app_id is None:
        raise ValueError(f"{path}: no ApplicationStart event")
    return Template(path, app_id, log.codec, log.kind, log.in_progress, lines)


def rewrite(template: Template, new_id: str) -> list[bytes]:
    old, new = template.app_id.encode(), new_id.encode()
    return [line.replace(old, new) for line in template.lines]


def write_log(
    dest: Path,
    app_id: str,
    lines: list[bytes],
    *,
    codec: str | None,
    kind: str,
    in_progress: bool,
    max_file_bytes: int = 128 << 20,
) -> Path:
    """Write ``lines`` as Spark would name and frame them; returns the log's path."""
    encode = ENCODERS[codec]
    suffix = f".{codec}" if codec else ""
    if kind == "single":
        path = dest / f"{app_id}{suffix}{IN_PROGRESS if in_progress else ''}"
        path.write_bytes(encode(b"".join(line + b"\n" for line in lines), DEFAULT_BLOCK))
        return path
    directory = dest / f"eventlog_v2_{app_id}"
    directory.mkdir()
    index, chunk, size = 1, [], 0
    for line in lines:
        chunk.append(line + b"\n")
        size += len(line) + 1
        if size >= max_file_bytes:
            (directory / f"events_{index}_{app_id}{suffix}").write_bytes(encode(b"".join(chunk), DEFAULT_BLOCK))
            index, chunk, size = index + 1, [], 0
    if chunk or index == 1:
        (directory / f"events_{index}_{app_id}{suffix}").write_bytes(encode(b"".join(chunk), DEFAULT_BLOCK))
    (directory / f"appstatus_{app_id}{IN_PROGRESS if in_progress else ''}").write_bytes(b"")
    return directory


def scale(
    templates: list[Template],
    dest: Path,
    count: int,
    *,
    codec: str | None | bool = False,
    kind: str | None = None,
    id_prefix: str = "local-9",
    mtime_base: float | None = None,
) -> list[tuple[str, Path]]:
    """``count`` copies cycling through ``templates``; ``codec=False``/``kind=None`` keep the template's."""
    dest.mkdir(parents=True, exist_ok=True)
    width = 19 - len(id_prefix)
    out = []
    for i in range(count):
        template = templates[i % len(templates)]
        app_id = f"{id_prefix}{i:0{width}d}"
        path = write_log(
            dest,
            app_id,
            rewrite(template, app_id),
            codec=template.codec if codec is False else codec,  # type: ignore[arg-type]
            kind=kind or template.kind,
            in_progress=template.in_progress,
        )
        if mtime_base is not None:
            os.utime(path, (mtime_base + i, mtime_base + i))
        out.append((app_id, path))
    return out
