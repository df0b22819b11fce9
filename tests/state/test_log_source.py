"""``logSourceName`` / ``logSourceFullPath`` (SPARK-55793): the settings, the rows, the catalog.

The SHS (``FsHistoryProvider``, 4.2.0's sources) splits ``spark.history.fs.logDirectory``
on commas (trimmed, blanks dropped), names each directory by position from
``spark.history.fs.logDirectory.names`` (a blank name is the path; another count is
ignored with a warning; a name given twice stops it), and shows each attempt the directory
*as written* and its name. Several directories: ``tests/scan/test_several_log_dirs.py``.
Live equality with the real SHS is the differential tests' (they give sparkhist the same
``file:`` string as the SHS); here the rules, and that a store re-renders its list when
the directory's name or the release changes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

import sparkhist
from sparkhist.config import LogSource, LogSources, load_settings, log_directories
from sparkhist.errors import ConfigError
from sparkhist.server import build_runtime
from support.conformance import SPARK401
from support.server import copy_logs, runtime_for


def _settings(tmp_path: Path, log_dir: str, names: str | None = None) -> Any:
    props = tmp_path / "spark-defaults.conf"
    text = f"spark.history.fs.logDirectory {log_dir}\n"
    if names is not None:
        text += f"spark.history.fs.logDirectory.names {names}\n"
    props.write_text(text)
    return load_settings({"store_dir": str(tmp_path / "store")}, properties_file=str(props), environ={})


def test_the_directory_as_written_is_the_full_path_and_the_default_name(tmp_path: Path) -> None:
    settings = _settings(tmp_path, " file:/data/spark-events ,")
    assert settings.log_dir == "/data/spark-events"  # read without the scheme
    assert settings.log_source == LogSource("file:/data/spark-events", "file:/data/spark-events")
    assert _settings(tmp_path, "hdfs://nn:8020/logs").log_source == LogSource("hdfs://nn:8020/logs", "hdfs://nn:8020/logs")


def test_a_name_is_shown_and_a_blank_one_is_the_path(tmp_path: Path) -> None:
    assert _settings(tmp_path, "file:/data/ev", " prod ").log_source == LogSource("prod", "file:/data/ev")
    assert _settings(tmp_path, "file:/data/ev", " ").log_source == LogSource("file:/data/ev", "file:/data/ev")
    env = {"SPARKHIST_LOG_DIR": "/x/logs", "SPARKHIST_LOG_DIR_NAMES": "batch", "SPARKHIST_STORE": str(tmp_path)}
    assert load_settings(environ=env).log_source == LogSource("batch", "/x/logs")


def test_another_count_of_names_is_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sparkhist.config"):
        settings = _settings(tmp_path, "file:/data/ev", "a,b")
    assert settings.log_source == LogSource("file:/data/ev", "file:/data/ev")
    assert "has 2 names but 1 directories were specified. Falling back to full paths." in caplog.text


def test_several_directories_are_read_and_duplicate_names_refused(tmp_path: Path) -> None:
    assert log_directories(" a, ,b ,") == ["a", "b"]
    several = _settings(tmp_path, "file:/a, file:/b", "x,")
    assert several.log_dir == "/a,/b"  # each read without the scheme (tests/scan/test_several_log_dirs.py)
    assert several.log_source == LogSources((LogSource("x", "file:/a"), LogSource("file:/b", "file:/b")))
    with pytest.raises(ConfigError, match="Duplicate display names found in spark.history.fs.logDirectory.names: x"):
        _settings(tmp_path, "file:/a,file:/b", "x,x")
    with pytest.raises(ConfigError, match="Duplicate display names found .*: file:/a"):
        _settings(tmp_path, "file:/a,file:/b", ",file:/a")  # a blank name is the path, and so a duplicate
    with pytest.raises(ConfigError, match="the log directory is empty"):
        _settings(tmp_path, " , ")


def _attempts(client: Any) -> list[dict[str, Any]]:
    return [a for app in client.get("/api/v1/applications").json() for a in app["attempts"]]


def test_the_list_and_each_app_show_the_source_and_follow_its_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    store = tmp_path / "store"
    monkeypatch.setattr(sparkhist, "SPARK_VERSION", "4.3.0")
    with runtime_for(f"file:{logs}", store) as (_runtime, client):
        attempts = _attempts(client)
        assert attempts and all(a["logSourceName"] == a["logSourceFullPath"] == f"file:{logs}" for a in attempts)
        first = attempts[0]
        assert list(first).index("logSourceName") == list(first).index("appSparkVersion") + 2  # after exitCode
        assert list(first).index("startTimeEpoch") == list(first).index("logSourceFullPath") + 1
        app_id = client.get("/api/v1/applications").json()[0]["id"]
        single = client.get(f"/api/v1/applications/{app_id}").json()["attempts"][0]
        assert (single["logSourceName"], single["logSourceFullPath"]) == (f"file:{logs}", f"file:{logs}")
    # the same store, the directory given another name: the stored rows are rendered again
    renamed = load_settings({"log_dir": f"file:{logs}", "store_dir": str(store)},
                            environ={"SPARKHIST_LOG_DIR_NAMES": "conformance"})
    runtime = build_runtime(renamed)
    try:
        with TestClient(runtime.app) as client:
            assert {a["logSourceName"] for a in _attempts(client)} == {"conformance"}
    finally:
        runtime.close()
    # answering as 4.0.1: no such fields (nor exitCode); states are read as 4.0.1 reads logs, so rebuilt
    monkeypatch.setattr(sparkhist, "SPARK_VERSION", "4.0.1")
    with runtime_for(f"file:{logs}", store) as (_runtime, client):
        attempts = _attempts(client)
        assert attempts and not any({"logSourceName", "logSourceFullPath", "exitCode"} & set(a) for a in attempts)
    meta = _meta(store)
    assert orjson.loads(meta["listing_renders"]) == {"release": "4.0.1", "source": [f"file:{logs}", f"file:{logs}"]}
    assert meta["state_variant"] == "legacy-push-read-metrics"


def _meta(store: Path) -> dict[str, str]:
    import sqlite3

    db = sqlite3.connect(store / "catalog.sqlite")
    try:
        return dict(db.execute("SELECT key, value FROM meta").fetchall())
    finally:
        db.close()
