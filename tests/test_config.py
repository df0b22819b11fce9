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


def test_source_settings_defaults_and_overrides(tmp_path: Path) -> None:
    settings = load_settings(environ={})
    assert settings.hadoop_conf_dir is None and settings.hadoop_conf == ()
    assert (settings.source_timeout, settings.source_read_timeout) == (3.0, 10.0)
    assert (settings.source_retries, settings.source_breaker_reset) == (3, 10.0)
    env = {
        "SPARKHIST_HADOOP_CONF_DIR": str(tmp_path),
        "SPARKHIST_HADOOP_CONF": "dfs.ha.namenodes.ns=nn1,nn2; dfs.namenode.rpc-address.ns.nn1=a:8020\nx=",
        "SPARKHIST_SOURCE_TIMEOUT": "1500ms",
        "SPARKHIST_SOURCE_READ_TIMEOUT": "30s",
        "SPARKHIST_SOURCE_RETRIES": "0",
        "SPARKHIST_SOURCE_BREAKER_RESET": "1m",
    }
    settings = load_settings(environ=env)
    assert settings.hadoop_conf_dir == str(tmp_path)
    assert settings.hadoop_conf == (("dfs.ha.namenodes.ns", "nn1,nn2"), ("dfs.namenode.rpc-address.ns.nn1", "a:8020"), ("x", ""))
    assert (settings.source_timeout, settings.source_read_timeout, settings.source_retries, settings.source_breaker_reset) == (
        1.5, 30.0, 0, 60.0)
    # Repeatable flag (click passes a tuple); an empty tuple leaves the environment's value.
    flags = {"hadoop_conf": ("a.b=1", "c.d=x,y"), "hadoop_conf_dir": "/etc/hadoop/conf"}
    settings = load_settings(flags, environ=env)
    assert settings.hadoop_conf == (("a.b", "1"), ("c.d", "x,y")) and settings.hadoop_conf_dir == "/etc/hadoop/conf"
    assert load_settings({"hadoop_conf": ()}, environ=env).hadoop_conf[0] == ("dfs.ha.namenodes.ns", "nn1,nn2")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SPARKHIST_HADOOP_CONF": "novalue"}, "not key=value"),
        ({"SPARKHIST_SOURCE_TIMEOUT": "0s"}, "must be more than 0"),
        ({"SPARKHIST_SOURCE_RETRIES": "-1"}, "must not be negative"),
    ],
)
def test_bad_source_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=env)


def test_source_options_reach_the_hdfs_source(tmp_path: Path) -> None:
    pytest.importorskip("hdfs_native")
    from sparkhist.source.factory import SourceOptions, open_source

    (tmp_path / "hdfs-site.xml").write_text(
        "<configuration><property><name>dfs.ha.namenodes.ns</name><value>nn1,nn2</value></property>"
        "<property><name>dfs.namenode.rpc-address.ns.nn1</name><value>h1:8020</value></property>"
        "<property><name>dfs.namenode.rpc-address.ns.nn2</name><value>h2:8020</value></property></configuration>"
    )
    settings = load_settings({"hadoop_conf_dir": str(tmp_path), "hadoop_conf": ("dfs.namenode.rpc-address.ns.nn2=h3:9000",)},
                             environ={"SPARKHIST_SOURCE_TIMEOUT": "2s", "SPARKHIST_SOURCE_RETRIES": "1",
                                      "SPARKHIST_SOURCE_BREAKER_RESET": "7s"})
    src = open_source("hdfs://ns/logs", settings)
    try:
        assert [n.rpc for n in src.namenodes.nodes] == ["h1:8020", "h3:9000"]
        assert (src.rpc_timeout, src.list_timeout, src.read_timeout) == (2.0, 2.0, 10.0)
        assert src.guard.retry.attempts == 2 and src.guard.retry.budget == 6.0
        assert src.guard.breaker.reset_timeout == 7.0
    finally:
        src.close()
    # A worker process has only the environment.
    options = SourceOptions.from_environ({"SPARKHIST_SOURCE_TIMEOUT": "4s", "SPARKHIST_HADOOP_CONF": "a=b"})
    assert (options.timeout, options.hadoop_conf, options.retries) == (4.0, (("a", "b"),), 3)
    web = open_source("webhdfs://h1:9870,h2:9870/logs", SourceOptions(timeout=1.0, breaker_reset=2.0))
    try:
        assert web.timeout == 1.0 and web.guard.breaker.reset_timeout == 2.0
    finally:
        web.close()


def test_kerberos_settings_from_the_shs_properties(tmp_path: Path) -> None:
    props = tmp_path / "spark-defaults.conf"
    props.write_text("spark.history.kerberos.principal shs/host@REALM\nspark.history.kerberos.keytab /etc/shs.keytab\n")
    settings = load_settings(properties_file=str(props), environ={})
    assert (settings.kerberos_principal, settings.kerberos_keytab) == ("shs/host@REALM", "/etc/shs.keytab")


def test_kerberos_arguments_reach_hdfs_native(monkeypatch: pytest.MonkeyPatch) -> None:
    hdfs_native = pytest.importorskip("hdfs_native")
    from sparkhist.source.factory import SourceOptions, open_source
    from sparkhist.source.hdfs import HdfsSource

    seen: list[dict] = []

    class FakeClient:
        def __init__(self, url, config=None, config_dir=None, **kwargs):  # type: ignore[no-untyped-def]
            seen.append({"url": url, "auth": config.get("hadoop.security.authentication"), **kwargs})

        def get_file_info(self, path):  # type: ignore[no-untyped-def]
            raise RuntimeError("RemoteException AccessControlException")

    monkeypatch.setattr(hdfs_native, "Client", FakeClient)
    options = SourceOptions(kerberos_principal="shs@R", kerberos_keytab="/k", hadoop_conf=(
        ("hadoop.security.authentication", "kerberos"), ("dfs.ha.namenodes.ns", "nn1,nn2"),
        ("dfs.namenode.rpc-address.ns.nn1", "h1:8020"), ("dfs.namenode.rpc-address.ns.nn2", "h2:8020")))
    src = open_source("hdfs://ns/logs", options)
    try:
        src._build_client(src.order)
        states = src._probe(src.order)  # probe clients authenticate the same way
        assert states == {"nn1": "answered"} or set(states.values()) == {"answered"}
        assert all(s["kerberos_principal"] == "shs@R" and s["kerberos_keytab"] == "/k" and s["auth"] == "kerberos" for s in seen)
        assert seen[0]["url"] == "hdfs://ns" and {s["url"] for s in seen[1:]} <= {"hdfs://h1:8020", "hdfs://h2:8020"}
    finally:
        src.close()
    with pytest.raises(ConfigError, match="both a principal and a keytab"):
        HdfsSource("hdfs://h:8020/logs", kerberos_principal="shs@R")
