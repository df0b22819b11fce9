"""Finding an application's logs by the names Spark gives them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sparkhist.scan.on_demand import find_logs
from sparkhist.source.local import LocalSource


def test_finds_each_log_of_the_app_and_skips_broken_ones(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "app-1.zstd").write_bytes(b"abc")
    (tmp_path / "app-1_1.inprogress").write_bytes(b"de")
    (tmp_path / "eventlog_v2_app-1_2").mkdir()  # no events file: not a log
    (tmp_path / "app-2").write_bytes(b"other")
    with caplog.at_level(logging.WARNING, logger="sparkhist.scan"):
        found = list(find_logs(LocalSource(str(tmp_path)), "app-1"))
    assert [(log.name, log.kind, log.in_progress) for log in found] == [
        ("app-1.zstd", "single", False), ("app-1_1.inprogress", "single", True)]
    assert "skipping" in caplog.text and "eventlog_v2_app-1_2" in caplog.text


def test_nothing_there(tmp_path: Path) -> None:
    assert list(find_logs(LocalSource(str(tmp_path)), "app-404")) == []
