"""Settings: defaults, SHS properties files, environment, flags, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkhist.config import SETTINGS, bundled_samples, load_settings, parse_duration
from sparkhist.errors import ConfigError


def test_defaults_point_at_the_bundled_samples() -> None:
    settings = load_settings(environ={})
    assert settings.log_dir == bundled_samples()
    assert Path(settings.log_dir, "eventlog_v2_local-1795972918271").is_dir()
    assert (settings.host, settings.port, settings.scan_interval) == ("127.0.0.1", 18080, 10.0)


def test_shs_properties_file_is_understood(tmp_path: Path) -> None:
    props = tmp_path / "spark-defaults.conf"
    props.write_text(
        "# an SHS configuration\n"
        "spark.history.fs.logDirectory file:/data/spark-events\n"
        "spark.history.fs.update.interval=30s\n"
        "spark.history.ui.port: 18081\n"
        "spark.history.store.path   /var/lib/shs\n"
        "spark.history.retainedApplications 50\n"
    )
    settings = load_settings(properties_file=str(props), environ={})
    assert settings.log_dir == "/data/spark-events"
    assert settings.scan_interval == 30.0
    assert settings.port == 18081
    assert settings.store_dir == "/var/lib/shs"


def test_precedence_flag_over_env_over_file(tmp_path: Path) -> None:
    props = tmp_path / "p.conf"
    props.write_text("spark.history.ui.port=1000\nspark.history.fs.update.interval=1m\n")
    env = {"SPARKHIST_PORT": "2000", "SPARKHIST_SCAN_INTERVAL": "500ms"}
    assert load_settings(properties_file=str(props), environ=env).port == 2000
    assert load_settings(properties_file=str(props), environ=env).scan_interval == 0.5
    assert load_settings({"port": 3000}, properties_file=str(props), environ=env).port == 3000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"environ": {"SPARKHIST_PORT": "http"}}, "SPARKHIST_PORT"),
        ({"environ": {"SPARKHIST_PORT": "70000"}}, "port out of range"),
        ({"environ": {"SPARKHIST_SCAN_INTERVAL": "soon"}}, "not a duration"),
        ({"properties_file": "/nonexistent/spark.conf", "environ": {}}, "cannot read properties file"),
    ],
)
def test_bad_configuration_is_one_clear_error(kwargs, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(**kwargs)


@pytest.mark.parametrize(("text", "seconds"), [("10s", 10), ("500ms", 0.5), ("1m", 60), ("2h", 7200), ("15", 15)])
def test_spark_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for setting in SETTINGS:
        assert setting.env in readme, setting.name
        if setting.shs_property:
            assert setting.shs_property in readme, setting.name
