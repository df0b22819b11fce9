"""``gs://`` log directories configured as Hadoop's GCS connector is.

Properties (``core-site.xml``, ``spark.hadoop.*``, ``--hadoop-conf``; the 2.x names too):

==================================================  ===========================================
property                                            what it does here
==================================================  ===========================================
``fs.gs.storage.root.url``                          the endpoint (default Google's); an
                                                    ``http://`` one is allowed (emulators)
``fs.gs.auth.type``                                 ``SERVICE_ACCOUNT_JSON_KEYFILE``,
                                                    ``APPLICATION_DEFAULT``, ``COMPUTE_ENGINE``,
                                                    ``UNAUTHENTICATED`` (below)
``fs.gs.auth.service.account.json.keyfile``         a service account's JSON key file
(2.x: ``google.cloud.auth.service.account.json.keyfile``)
``fs.gs.auth.null.enable`` (2.x), ``google.cloud.   unsigned requests
auth.null.enable``
==================================================  ===========================================

**Credentials**, without ``fs.gs.auth.type``: the key file above; then Google's standard
chain, resolved and refreshed by obstore: ``$GOOGLE_APPLICATION_CREDENTIALS`` (a service
account key, or user or external-account credentials from ``gcloud auth
application-default login``), the well-known gcloud file
(``~/.config/gcloud/application_default_credentials.json``), then the metadata server (GCE,
GKE Workload Identity).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from sparkhist.errors import ConfigError
from sparkhist.source.objectstore import StoreTarget

__all__ = ["gcs_settings", "gcs_target"]

log = logging.getLogger("sparkhist.source")

DEFAULT_ROOT = "https://storage.googleapis.com"
_KEYFILE = ("fs.gs.auth.service.account.json.keyfile", "google.cloud.auth.service.account.json.keyfile")
_NULL = ("fs.gs.auth.null.enable", "google.cloud.auth.null.enable")


def _first(conf: Mapping[str, str], keys: tuple[str, ...]) -> str:
    for key in keys:
        if conf.get(key, "").strip():
            return conf[key].strip()
    return ""


def gcs_settings(bucket: str, conf: Mapping[str, str]) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """(endpoint, credentials kind, obstore GCSConfig, ClientConfig) of ``bucket``."""
    root = conf.get("fs.gs.storage.root.url", "").strip().rstrip("/") or DEFAULT_ROOT
    parsed = urlparse(root)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"fs.gs.storage.root.url is not an http(s) URL: {root!r}")
    config: dict[str, Any] = {}
    client: dict[str, Any] = {}
    if root != DEFAULT_ROOT:
        config["base_url"] = root
    if parsed.scheme == "http":
        client["allow_http"] = True
    auth = conf.get("fs.gs.auth.type", "").strip().upper()
    keyfile = _first(conf, _KEYFILE)
    null = _first(conf, _NULL).lower() == "true"
    if auth == "UNAUTHENTICATED" or (not auth and null):
        kind = "anonymous"
        config["skip_signature"] = True
    elif auth == "SERVICE_ACCOUNT_JSON_KEYFILE" or (not auth and keyfile):
        if not keyfile:
            raise ConfigError("fs.gs.auth.type=SERVICE_ACCOUNT_JSON_KEYFILE needs fs.gs.auth.service.account.json.keyfile")
        kind = "service_account"
        config["service_account"] = keyfile
    elif auth in ("", "APPLICATION_DEFAULT", "COMPUTE_ENGINE"):
        kind = "application_default"  # obstore: GOOGLE_APPLICATION_CREDENTIALS, gcloud's file, metadata server
    else:
        raise ConfigError(f"gs://{bucket}: fs.gs.auth.type={auth} is not supported "
                          "(SERVICE_ACCOUNT_JSON_KEYFILE, APPLICATION_DEFAULT, COMPUTE_ENGINE, UNAUTHENTICATED)")
    return root, kind, config, client


def gcs_target(url: str, conf: Mapping[str, str]) -> StoreTarget:
    """The :class:`StoreTarget` of a ``gs://bucket/prefix`` URL."""
    parsed = urlparse(url)
    if parsed.scheme != "gs" or not parsed.netloc:
        raise ConfigError(f"not a gs://bucket/path URL: {url!r}")
    bucket = parsed.netloc
    root, kind, config, client_options = gcs_settings(bucket, conf)
    log.info("gcs: bucket %s at %s (credentials: %s)", bucket, root, kind)

    def make(timeout: float, connect_timeout: float) -> Any:
        from obstore.store import GCSStore

        client = dict(client_options)
        client.update(timeout=timedelta(seconds=timeout), connect_timeout=timedelta(seconds=connect_timeout))
        return GCSStore(bucket, config=config, client_options=client, retry_config={"max_retries": 0})  # type: ignore[arg-type]

    return StoreTarget(scheme="gs", authority=bucket, root_key=parsed.path.strip("/"), endpoint=root, bucket=bucket,
                       make=make)
