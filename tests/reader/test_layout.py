"""Finding a log's layout from a path: one stat, then a rolling directory or a single file."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkhist.errors import LayoutError, SourceNotFound
from sparkhist.reader.layout import event_log_at, find_event_log, kind_of, log_files
from sparkhist.source.base import FileEntry
from sparkhist.source.local import LocalSource


def _rolling(root: Path, name: str = "eventlog_v2_app-1") -> Path:
    directory = root / name
    directory.mkdir()
    (directory / "events_1_app-1.zstd").write_bytes(b"x" * 3)
    (directory / "events_2_app-1.zstd").write_bytes(b"y" * 5)
    (directory / "appstatus_app-1.inprogress").write_bytes(b"")
    (directory / ".events_1_app-1.zstd.crc").write_bytes(b"crc")
    return directory


def test_a_file_is_a_single_file_log(tmp_path: Path) -> None:
    (tmp_path / "app-1.lz4.inprogress").write_bytes(b"abc")
    source = LocalSource(str(tmp_path))
    log = find_event_log(source, str(tmp_path / "app-1.lz4.inprogress"))
    assert (log.kind, log.codec, log.in_progress, log.total_size) == ("single", "lz4", True, 3)
    assert log.path == str(tmp_path / "app-1.lz4.inprogress")


def test_a_rolling_directory_is_listed(tmp_path: Path) -> None:
    directory = _rolling(tmp_path)
    source = LocalSource(str(tmp_path))
    log = find_event_log(source, str(directory))
    assert (log.kind, log.codec, log.in_progress, log.total_size) == ("rolling", "zstd", True, 8)
    assert [f.name for f in log.files] == ["events_1_app-1.zstd", "events_2_app-1.zstd"]
    assert event_log_at(source, source.stat(str(directory))) == log


def test_missing_and_broken_logs_raise(tmp_path: Path) -> None:
    source = LocalSource(str(tmp_path))
    with pytest.raises(SourceNotFound):
        find_event_log(source, str(tmp_path / "app-404"))
    (tmp_path / "eventlog_v2_app-2").mkdir()
    with pytest.raises(LayoutError, match="no events_"):
        find_event_log(source, str(tmp_path / "eventlog_v2_app-2"))


def test_kind_from_the_name_alone() -> None:
    assert kind_of("/logs/eventlog_v2_app-1") == "rolling"
    assert kind_of("hdfs://nn/logs/app-1.zstd") == "single"


def test_log_files_leave_out_directories_and_dot_files() -> None:
    def entry(name: str, is_dir: bool = False) -> FileEntry:
        return FileEntry(f"/d/{name}", name, 0, 0, is_dir)

    children = [entry("events_1_a"), entry(".events_1_a.crc"), entry("sub", is_dir=True), entry("appstatus_a")]
    assert [c.name for c in log_files(children)] == ["events_1_a", "appstatus_a"]
