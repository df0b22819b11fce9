"""GCS connector and ABFS/WASB properties into obstore's configuration (no server)."""

from __future__ import annotations

import pytest

from sparkhist.errors import ConfigError
from sparkhist.source.azure import azure_settings, azure_target
from sparkhist.source.factory import SourceOptions, open_source
from sparkhist.source.gcs import gcs_settings, gcs_target
from sparkhist.source.objectstore import ObjectStoreSource


# -- GCS -----------------------------------------------------------------------------------
def test_gcs_defaults_use_googles_endpoint_and_application_default_credentials() -> None:
    root, kind, config, client = gcs_settings("b", {})
    assert (root, kind, config, client) == ("https://storage.googleapis.com", "application_default", {}, {})


def test_gcs_emulator_endpoint_and_unauthenticated() -> None:
    root, kind, config, client = gcs_settings("b", {"fs.gs.storage.root.url": "http://127.0.0.1:4443/",
                                                    "fs.gs.auth.type": "UNAUTHENTICATED"})
    assert root == "http://127.0.0.1:4443" and kind == "anonymous"
    assert config == {"base_url": "http://127.0.0.1:4443", "skip_signature": True} and client == {"allow_http": True}
    assert gcs_settings("b", {"google.cloud.auth.null.enable": "true"})[1] == "anonymous", "the 2.x property"


def test_gcs_service_account_key_file() -> None:
    _, kind, config, _ = gcs_settings("b", {"fs.gs.auth.service.account.json.keyfile": "/etc/gcs/key.json"})
    assert kind == "service_account" and config == {"service_account": "/etc/gcs/key.json"}
    _, kind, config, _ = gcs_settings("b", {"google.cloud.auth.service.account.json.keyfile": "/k.json"})
    assert config == {"service_account": "/k.json"}
    with pytest.raises(ConfigError, match="needs"):
        gcs_settings("b", {"fs.gs.auth.type": "SERVICE_ACCOUNT_JSON_KEYFILE"})
    with pytest.raises(ConfigError, match="not supported"):
        gcs_settings("b", {"fs.gs.auth.type": "ACCESS_TOKEN_PROVIDER"})


def test_gcs_target_and_source() -> None:
    target = gcs_target("gs://logs/spark/events/", {})
    assert (target.prefix, target.root_key, target.bucket) == ("gs://logs", "spark/events", "logs")
    source = open_source("gs://logs/spark", SourceOptions(hadoop_conf=(("fs.gs.storage.root.url", "http://127.0.0.1:1"),)))
    assert isinstance(source, ObjectStoreSource) and source.root == "gs://logs/spark"
    assert source.health()["endpoint"] == "http://127.0.0.1:1"
    with pytest.raises(ConfigError):
        gcs_target("gs:///x", {})


# -- Azure ---------------------------------------------------------------------------------
def test_abfs_shared_key_for_the_dfs_or_blob_host() -> None:
    for host in ("acct.dfs.core.windows.net", "acct.blob.core.windows.net"):
        endpoint, kind, config, client = azure_settings("acct", "core.windows.net", {f"fs.azure.account.key.{host}": "KEY"}, {})
        assert endpoint == "https://acct.blob.core.windows.net" and kind == "shared_key"
        assert config == {"account_name": "acct", "endpoint": endpoint, "account_key": "KEY"} and client == {}


def test_abfs_oauth_providers() -> None:
    conf = {"fs.azure.account.auth.type": "OAuth",
            "fs.azure.account.oauth.provider.type": "org.apache.hadoop.fs.azurebfs.oauth2.ClientCredsTokenProvider",
            "fs.azure.account.oauth2.client.id": "cid", "fs.azure.account.oauth2.client.secret": "sec",
            "fs.azure.account.oauth2.client.endpoint": "https://login.microsoftonline.com/tenant-1/oauth2/token"}
    _, kind, config, _ = azure_settings("acct", "core.windows.net", conf, {})
    assert kind == "client_secret"
    assert (config["client_id"], config["client_secret"], config["tenant_id"]) == ("cid", "sec", "tenant-1")
    assert config["authority_host"] == "https://login.microsoftonline.com"
    msi = {**conf, "fs.azure.account.oauth.provider.type": "org.apache.hadoop.fs.azurebfs.oauth2.MsiTokenProvider"}
    assert azure_settings("acct", "core.windows.net", msi, {})[1] == "managed_identity"
    wi = {**conf, "fs.azure.account.oauth.provider.type": "org.apache.hadoop.fs.azurebfs.oauth2.WorkloadIdentityTokenProvider",
          "fs.azure.account.oauth2.msi.tenant": "t2"}
    _, kind, config, _ = azure_settings("acct", "core.windows.net", wi, {"AZURE_FEDERATED_TOKEN_FILE": "/var/run/tok"})
    assert kind == "workload_identity" and config["federated_token_file"] == "/var/run/tok" and config["tenant_id"] == "t2"
    with pytest.raises(ConfigError, match="not supported"):
        azure_settings("acct", "core.windows.net", {**conf, "fs.azure.account.oauth.provider.type": "x.Custom"}, {})


def test_abfs_account_specific_properties_win() -> None:
    conf = {"fs.azure.account.auth.type": "OAuth", "fs.azure.account.auth.type.acct.dfs.core.windows.net": "SAS",
            "fs.azure.sas.fixed.token.acct.dfs.core.windows.net": "?sv=2024&sig=x"}
    _, kind, config, _ = azure_settings("acct", "core.windows.net", conf, {})
    assert kind == "sas" and config["sas_key"] == "sv=2024&sig=x"


def test_azure_without_properties_uses_the_environment_chain() -> None:
    _, kind, config, _ = azure_settings("acct", "core.windows.net", {}, {})
    assert kind == "environment" and set(config) == {"account_name", "endpoint"}


def test_azure_emulator_account() -> None:
    conf = {"fs.azure.storage.emulator.account.name": "devstoreaccount1"}
    endpoint, kind, config, client = azure_settings("devstoreaccount1", "core.windows.net", conf,
                                                    {"AZURITE_BLOB_STORAGE_URL": "http://127.0.0.1:10123"})
    assert endpoint == "http://127.0.0.1:10123/devstoreaccount1" and kind == "emulator"
    assert config["endpoint"] == endpoint and config["account_key"].startswith("Eby8") and client == {"allow_http": True}


def test_azure_urls() -> None:
    t = azure_target("abfss://logs@acct.dfs.core.windows.net/spark/events", {})
    assert (t.prefix, t.bucket, t.root_key) == ("abfss://logs@acct.dfs.core.windows.net", "logs", "spark/events")
    t = azure_target("wasbs://logs@acct.blob.core.chinacloudapi.cn/", {})
    assert t.endpoint == "https://acct.blob.core.chinacloudapi.cn" and t.root_key == ""
    for bad in ("abfs://acct.dfs.core.windows.net/x", "abfs://logs@acct/x", "abfs://logs@acct.file.core.windows.net/x"):
        with pytest.raises(ConfigError, match="not an abfs"):
            azure_target(bad, {})
    source = open_source("abfs://logs@acct.dfs.core.windows.net/events", SourceOptions())
    assert isinstance(source, ObjectStoreSource) and source.root == "abfs://logs@acct.dfs.core.windows.net/events"
