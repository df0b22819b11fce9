"""``abfs[s]://`` and ``wasb[s]://`` log directories configured as Hadoop's ABFS/WASB drivers are.

URLs: ``abfs[s]://<container>@<account>.dfs.core.windows.net/<path>`` and
``wasb[s]://<container>@<account>.blob.core.windows.net/<path>`` (other Azure clouds'
suffixes too). Both are read through the Blob API (an ADLS Gen2 account serves it), at
``https://<account>.blob.<suffix>``.

Properties (``core-site.xml``, ``spark.hadoop.*``, ``--hadoop-conf``); each may be
suffixed with ``.<account host>`` for one account, as in ABFS:

=================================================  ============================================
property                                           what it does here
=================================================  ============================================
``fs.azure.account.key.<account host>``            the shared key (the ``dfs`` or ``blob`` host)
``fs.azure.account.auth.type``                     ``SharedKey`` (default), ``OAuth``, ``SAS``
``fs.azure.account.oauth.provider.type``           ``...ClientCredsTokenProvider`` (service
                                                   principal), ``...MsiTokenProvider`` (managed
                                                   identity), ``...WorkloadIdentityTokenProvider``
``fs.azure.account.oauth2.client.id``,             the service principal or identity
``.client.secret``, ``.client.endpoint``
(``https://login.microsoftonline.com/<tenant>/
oauth2/token``), ``.msi.tenant``, ``.token.file``
``fs.azure.sas.fixed.token``                       a fixed SAS token (``auth.type=SAS``)
``fs.azure.storage.emulator.account.name``         the account that is the local emulator
                                                   (Azurite, at ``$AZURITE_BLOB_STORAGE_URL``,
                                                   default ``http://127.0.0.1:10000``)
=================================================  ============================================

**Credentials**, with none of these set: obstore's chain, from the environment
(``AZURE_STORAGE_ACCOUNT_KEY``, ``AZURE_STORAGE_SAS_TOKEN``, ``AZURE_CLIENT_ID`` +
``AZURE_CLIENT_SECRET`` + ``AZURE_TENANT_ID``, ``AZURE_FEDERATED_TOKEN_FILE`` for AKS
workload identity), then the managed identity endpoint (IMDS).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from sparkhist.errors import ConfigError
from sparkhist.source.objectstore import StoreTarget

__all__ = ["azure_settings", "azure_target"]

log = logging.getLogger("sparkhist.source")

SCHEMES = ("abfs", "abfss", "wasb", "wasbs")
DEFAULT_EMULATOR = "http://127.0.0.1:10000"
#: The storage emulators' well-known development account key (published by Microsoft; not a secret).
EMULATOR_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _get(conf: Mapping[str, str], key: str, hosts: tuple[str, ...]) -> str:
    """``key.<host>`` for the first host that has it, else ``key`` (ABFS's account-specific lookup)."""
    for host in hosts:
        value = conf.get(f"{key}.{host}", "").strip()
        if value:
            return value
    return conf.get(key, "").strip()


def azure_settings(account: str, suffix: str, conf: Mapping[str, str],
                   environ: Mapping[str, str] | None = None) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """(endpoint, credentials kind, obstore AzureConfig, ClientConfig) of ``account``.

    ``suffix`` is the host after ``<account>.dfs.`` or ``<account>.blob.`` (``core.windows.net``).
    """
    env = os.environ if environ is None else environ
    hosts = (f"{account}.dfs.{suffix}", f"{account}.blob.{suffix}")
    config: dict[str, Any] = {"account_name": account}
    client: dict[str, Any] = {}
    emulator = conf.get("fs.azure.storage.emulator.account.name", "").strip()
    if emulator and emulator == account:
        # Path-style URLs with the account first, its key the emulator's published one unless
        # set (obstore's own emulator switch would ignore the port).
        endpoint = (env.get("AZURITE_BLOB_STORAGE_URL") or DEFAULT_EMULATOR).rstrip("/") + f"/{account}"
        config.update(endpoint=endpoint, account_key=_get(conf, "fs.azure.account.key", hosts) or EMULATOR_KEY)
        if endpoint.startswith("http://"):
            client["allow_http"] = True
        return endpoint, "emulator", config, client
    endpoint = f"https://{account}.blob.{suffix}"
    config["endpoint"] = endpoint
    auth = _get(conf, "fs.azure.account.auth.type", hosts).lower()
    key = _get(conf, "fs.azure.account.key", hosts)
    if auth in ("", "sharedkey") and key:
        config["account_key"] = key
        return endpoint, "shared_key", config, client
    if auth == "sas":
        token = _get(conf, "fs.azure.sas.fixed.token", hosts)
        if not token:
            raise ConfigError(f"{account}: fs.azure.account.auth.type=SAS needs fs.azure.sas.fixed.token "
                              "(SAS token providers are not supported)")
        config["sas_key"] = token.lstrip("?")
        return endpoint, "sas", config, client
    if auth == "oauth":
        provider = _get(conf, "fs.azure.account.oauth.provider.type", hosts).rsplit(".", 1)[-1]
        client_id = _get(conf, "fs.azure.account.oauth2.client.id", hosts)
        if provider == "ClientCredsTokenProvider":
            secret = _get(conf, "fs.azure.account.oauth2.client.secret", hosts)
            token_url = urlparse(_get(conf, "fs.azure.account.oauth2.client.endpoint", hosts))
            tenant = token_url.path.strip("/").split("/", 1)[0]
            if not (client_id and secret and tenant):
                raise ConfigError(f"{account}: ClientCredsTokenProvider needs fs.azure.account.oauth2.client.id, "
                                  ".client.secret and .client.endpoint (https://login.microsoftonline.com/<tenant>/oauth2/token)")
            config.update(client_id=client_id, client_secret=secret, tenant_id=tenant,
                          authority_host=f"{token_url.scheme}://{token_url.netloc}", credential_type="client_secret")
            return endpoint, "client_secret", config, client
        if provider == "MsiTokenProvider":
            if client_id:
                config["client_id"] = client_id
            config["credential_type"] = "managed_identity"
            return endpoint, "managed_identity", config, client
        if provider == "WorkloadIdentityTokenProvider":
            tenant = _get(conf, "fs.azure.account.oauth2.msi.tenant", hosts)
            token_file = _get(conf, "fs.azure.account.oauth2.token.file", hosts) or env.get("AZURE_FEDERATED_TOKEN_FILE", "")
            if client_id:
                config["client_id"] = client_id
            if tenant:
                config["tenant_id"] = tenant
            if token_file:
                config["federated_token_file"] = token_file
            config["credential_type"] = "workload_identity"
            return endpoint, "workload_identity", config, client
        raise ConfigError(f"{account}: fs.azure.account.oauth.provider.type {provider!r} is not supported "
                          "(ClientCredsTokenProvider, MsiTokenProvider, WorkloadIdentityTokenProvider)")
    if auth not in ("", "sharedkey"):
        raise ConfigError(f"{account}: fs.azure.account.auth.type={auth} is not supported (SharedKey, OAuth, SAS)")
    return endpoint, "environment", config, client  # obstore: AZURE_* variables, then managed identity


def azure_target(url: str, conf: Mapping[str, str], environ: Mapping[str, str] | None = None) -> StoreTarget:
    """The :class:`StoreTarget` of an ``abfs[s]://`` or ``wasb[s]://`` URL."""
    parsed = urlparse(url)
    container, at, host = parsed.netloc.partition("@")
    account, dot, rest = host.partition(".")
    kind, _, suffix = rest.partition(".")
    if parsed.scheme not in SCHEMES or not at or not container or not dot or kind not in ("dfs", "blob") or not suffix:
        raise ConfigError(f"not an abfs://<container>@<account>.dfs.core.windows.net/<path> "
                          f"or wasb://<container>@<account>.blob.core.windows.net/<path> URL: {url!r}")
    endpoint, creds, config, client_options = azure_settings(account, suffix, conf, environ)
    log.info("azure: container %s of %s at %s (credentials: %s)", container, account, endpoint, creds)

    def make(timeout: float, connect_timeout: float) -> Any:
        from obstore.store import AzureStore

        client = dict(client_options)
        client.update(timeout=timedelta(seconds=timeout), connect_timeout=timedelta(seconds=connect_timeout))
        return AzureStore(container, config=config, client_options=client, retry_config={"max_retries": 0})  # type: ignore[arg-type]

    return StoreTarget(scheme=parsed.scheme, authority=parsed.netloc, root_key=parsed.path.strip("/"),
                       endpoint=endpoint, bucket=container, make=make)
