"""Hadoop S3A properties and the AWS environment into obstore's configuration (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkhist.config import load_settings
from sparkhist.errors import ConfigError
from sparkhist.source.factory import SourceOptions, open_source
from sparkhist.source.objectstore import ObjectStoreSource
from sparkhist.source.s3a import s3_settings, s3_target

KEYS = {"fs.s3a.access.key": "AK", "fs.s3a.secret.key": "SK"}


def test_a_custom_endpoint_with_path_style_and_static_keys() -> None:
    s = s3_settings("logs", {**KEYS, "fs.s3a.endpoint": "http://127.0.0.1:8333", "fs.s3a.path.style.access": "true"}, {})
    assert s.endpoint == "http://127.0.0.1:8333" and s.path_style and s.credentials == "keys"
    assert s.config == {"region": "us-east-1", "access_key_id": "AK", "secret_access_key": "SK",
                        "endpoint": "http://127.0.0.1:8333"}
    assert s.client == {"allow_http": True}


def test_an_endpoint_without_scheme_follows_ssl_enabled() -> None:
    conf = {**KEYS, "fs.s3a.endpoint": "minio.local:9000", "fs.s3a.path.style.access": "true"}
    assert s3_settings("b", conf, {}).endpoint == "https://minio.local:9000"
    off = s3_settings("b", {**conf, "fs.s3a.connection.ssl.enabled": "false"}, {})
    assert off.endpoint == "http://minio.local:9000" and off.client["allow_http"] is True


def test_virtual_hosted_style_puts_the_bucket_in_the_host() -> None:
    s = s3_settings("logs", {**KEYS, "fs.s3a.endpoint": "https://store.example.com"}, {})
    assert s.config["endpoint"] == "https://logs.store.example.com" and s.config["virtual_hosted_style_request"] is True


def test_aws_endpoint_names_the_region() -> None:
    assert s3_settings("b", {**KEYS, "fs.s3a.endpoint": "s3.eu-west-3.amazonaws.com"}, {}).region == "eu-west-3"
    assert s3_settings("b", {**KEYS, "fs.s3a.endpoint": "s3-us-west-2.amazonaws.com"}, {}).region == "us-west-2"
    explicit = {**KEYS, "fs.s3a.endpoint": "s3.eu-west-3.amazonaws.com", "fs.s3a.endpoint.region": "eu-north-1"}
    assert s3_settings("b", explicit, {}).region == "eu-north-1"
    assert s3_settings("b", KEYS, {"AWS_REGION": "ap-south-1"}).region == "ap-south-1"
    default = s3_settings("b", KEYS, {})
    assert default.region == "us-east-1" and default.endpoint is None and default.config["virtual_hosted_style_request"] is True
    assert default.display_endpoint == "https://s3.us-east-1.amazonaws.com"


def test_per_bucket_properties_win_for_their_bucket_only() -> None:
    conf = {**KEYS, "fs.s3a.endpoint": "http://shared:1", "fs.s3a.bucket.special.endpoint": "http://own:2",
            "fs.s3a.bucket.special.access.key": "AK2", "fs.s3a.bucket.special.secret.key": "SK2",
            "fs.s3a.path.style.access": "true"}
    special = s3_settings("special", conf, {})
    assert special.endpoint == "http://own:2" and special.config["access_key_id"] == "AK2"
    other = s3_settings("other", conf, {})
    assert other.endpoint == "http://shared:1" and other.config["access_key_id"] == "AK"


def test_session_token_goes_with_the_keys() -> None:
    s = s3_settings("b", {**KEYS, "fs.s3a.session.token": "TOK"}, {})
    assert s.config["session_token"] == "TOK"


def test_half_a_key_pair_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="go together"):
        s3_settings("b", {"fs.s3a.access.key": "AK"}, {})


def test_credentials_chain_order_environment_web_identity_profile_instance(tmp_path: Path) -> None:
    env = {"AWS_ACCESS_KEY_ID": "EK", "AWS_SECRET_ACCESS_KEY": "ES", "AWS_SESSION_TOKEN": "ET"}
    s = s3_settings("b", {}, env)
    assert s.credentials == "environment" and s.config["access_key_id"] == "EK" and s.config["session_token"] == "ET"
    assert s3_settings("b", KEYS, env).credentials == "keys", "the S3A keys come first"

    web = {"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token", "AWS_ROLE_ARN": "arn:aws:iam::1:role/r"}
    s = s3_settings("b", {}, web)
    assert s.credentials == "web_identity" and s.config["web_identity_token_file"] == "/var/run/token"

    creds = tmp_path / "credentials"
    creds.write_text("[default]\naws_access_key_id = PK\naws_secret_access_key = PS\n"
                     "[dev]\naws_access_key_id = DK\naws_secret_access_key = DS\naws_session_token = DT\n")
    config = tmp_path / "config"
    config.write_text("[profile dev]\nregion = eu-central-1\n")
    files = {"AWS_SHARED_CREDENTIALS_FILE": str(creds), "AWS_CONFIG_FILE": str(config)}
    s = s3_settings("b", {}, files)
    assert s.credentials == "profile:default" and s.config["access_key_id"] == "PK"
    s = s3_settings("b", {}, {**files, "AWS_PROFILE": "dev"})
    assert s.credentials == "profile:dev" and s.config["session_token"] == "DT"

    empty = {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none")}
    s = s3_settings("b", {}, empty)
    assert s.credentials == "chain" and "access_key_id" not in s.config, "container / instance metadata, by obstore"


def test_credentials_provider_property() -> None:
    anon = s3_settings("b", {"fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.AnonymousAWSCredentialsProvider"}, {})
    assert anon.credentials == "anonymous" and anon.config["skip_signature"] is True
    simple = "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
    assert s3_settings("b", {**KEYS, "fs.s3a.aws.credentials.provider": simple}, {}).credentials == "keys"
    with pytest.raises(ConfigError, match="needs fs.s3a.access.key"):
        s3_settings("b", {"fs.s3a.aws.credentials.provider": simple}, {})
    chain = "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider, " \
            "org.apache.hadoop.fs.s3a.auth.IAMInstanceCredentialsProvider"
    assert s3_settings("b", {"fs.s3a.aws.credentials.provider": chain}, {}).credentials == "chain"
    with pytest.raises(ConfigError, match="not supported"):
        s3_settings("b", {"fs.s3a.aws.credentials.provider": "com.example.MyProvider"}, {})


def test_bad_values_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="true or false"):
        s3_settings("b", {**KEYS, "fs.s3a.path.style.access": "yes please"}, {})
    with pytest.raises(ConfigError, match="not an http"):
        s3_settings("b", {**KEYS, "fs.s3a.endpoint": "ftp://x"}, {})
    with pytest.raises(ConfigError):
        s3_target("s3a:///no-bucket", KEYS, {})


def test_open_source_builds_an_object_store_source_for_s3a_and_s3() -> None:
    options = SourceOptions(hadoop_conf=(("fs.s3a.endpoint", "http://127.0.0.1:1"), ("fs.s3a.path.style.access", "true"),
                                         *KEYS.items()), timeout=2.0, read_timeout=7.0, breaker_reset=4.0)
    for url, root in [("s3a://logs/spark-events/", "s3a://logs/spark-events"), ("s3://logs", "s3://logs")]:
        source = open_source(url, options)
        assert isinstance(source, ObjectStoreSource)
        assert source.root == source.root_path == root
        assert (source.timeout, source.read_timeout, source.guard.breaker.reset_timeout) == (2.0, 7.0, 4.0)
        assert source.health()["endpoint"] == "http://127.0.0.1:1" and source.health()["bucket"] == "logs"
        source.close()


def test_spark_hadoop_properties_reach_the_source(tmp_path: Path) -> None:
    props = tmp_path / "spark-defaults.conf"
    props.write_text("spark.history.fs.logDirectory s3a://logs/events\n"
                     "spark.hadoop.fs.s3a.endpoint http://127.0.0.1:9\n"
                     "spark.hadoop.fs.s3a.path.style.access true\n"
                     "spark.hadoop.fs.s3a.access.key AK\nspark.hadoop.fs.s3a.secret.key SK\n")
    settings = load_settings({"hadoop_conf": ("fs.s3a.endpoint=http://127.0.0.1:10",)}, properties_file=str(props), environ={})
    options = SourceOptions.from_settings(settings)
    conf = dict(options.hadoop_conf)
    assert conf["fs.s3a.path.style.access"] == "true" and conf["fs.s3a.access.key"] == "AK"
    assert conf["fs.s3a.endpoint"] == "http://127.0.0.1:10", "--hadoop-conf wins over spark.hadoop.*"
    source = open_source(settings.log_dir, options)
    assert source.health()["endpoint"] == "http://127.0.0.1:10"
    source.close()


def test_core_site_xml_is_read(tmp_path: Path) -> None:
    (tmp_path / "core-site.xml").write_text(
        "<configuration>"
        "<property><name>fs.s3a.endpoint</name><value>http://127.0.0.1:11</value></property>"
        "<property><name>fs.s3a.path.style.access</name><value>true</value></property>"
        "<property><name>fs.s3a.access.key</name><value>AK</value></property>"
        "<property><name>fs.s3a.secret.key</name><value>SK</value></property>"
        "</configuration>")
    source = open_source("s3a://logs/x", SourceOptions(hadoop_conf_dir=str(tmp_path)))
    assert source.health()["endpoint"] == "http://127.0.0.1:11"
    source.close()
