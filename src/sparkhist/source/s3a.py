"""``s3a://`` / ``s3://`` log directories configured as Hadoop's S3A connector is.

The properties come from ``core-site.xml`` (``--hadoop-conf-dir``, ``$HADOOP_CONF_DIR``),
``spark.hadoop.*`` in the properties file and ``--hadoop-conf key=value``, merged in
that order (:func:`sparkhist.source.hadoop_conf.load_conf`). Per-bucket properties
``fs.s3a.bucket.<bucket>.<name>`` override ``fs.s3a.<name>`` for that bucket, as in S3A.

==========================================  ==============================================
property                                    what it does here
==========================================  ==============================================
``fs.s3a.endpoint``                         the S3 endpoint (``host[:port]`` or an URL);
                                            default: AWS for the region
``fs.s3a.endpoint.region``                  the signing region (else from an AWS endpoint
                                            name, ``$AWS_REGION``, ``us-east-1``)
``fs.s3a.path.style.access``                ``true``: ``endpoint/bucket/key``; ``false``
                                            (default): ``bucket.endpoint/key``
``fs.s3a.connection.ssl.enabled``           ``false``: ``http://`` for an endpoint given
                                            without a scheme (default ``true``)
``fs.s3a.access.key``, ``.secret.key``,     static or session credentials
``fs.s3a.session.token``
``fs.s3a.aws.credentials.provider``         which credentials, in order (below)
``fs.s3a.requester.pays.enabled``           requester-pays buckets
``fs.s3a.proxy.host``, ``.proxy.port``      an HTTP proxy
==========================================  ==============================================

**Credentials**, without ``fs.s3a.aws.credentials.provider``, in S3A's default order
extended by the AWS SDK's default chain: the keys above; the environment
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``); web identity
(``AWS_WEB_IDENTITY_TOKEN_FILE`` + ``AWS_ROLE_ARN``: EKS IRSA); a profile's static keys
(``AWS_PROFILE``, else ``default``, in ``~/.aws/credentials`` / ``~/.aws/config``); then
container credentials (ECS, EKS Pod Identity) and instance metadata (IMDSv2). Every
request is signed by obstore (the Rust ``object_store`` crate), which also fetches and
refreshes the web-identity, container and instance credentials. With the property set,
its classes are taken in order and the first that has credentials is used: S3A's
``SimpleAWSCredentialsProvider``/``TemporaryAWSCredentialsProvider`` (the keys),
``AnonymousAWSCredentialsProvider`` (unsigned requests), the AWS SDK's (v1 or v2)
``EnvironmentVariableCredentialsProvider``, ``ProfileCredentialsProvider``,
``WebIdentityTokenCredentialsProvider``, ``ContainerCredentialsProvider``,
``InstanceProfileCredentialsProvider``/S3A's ``IAMInstanceCredentialsProvider``, and
``DefaultCredentialsProvider``/``DefaultAWSCredentialsProviderChain`` (the whole chain).
Other classes (assumed roles, custom providers) are refused with a clear error.
"""

from __future__ import annotations

import configparser
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlparse

from sparkhist.errors import ConfigError
from sparkhist.source.objectstore import StoreTarget

__all__ = ["S3Settings", "s3_settings", "s3_target"]

log = logging.getLogger("sparkhist.source")

DEFAULT_REGION = "us-east-1"

#: Provider class names (their last dotted component) -> what they stand for here.
_PROVIDERS = {
    "SimpleAWSCredentialsProvider": "keys",
    "TemporaryAWSCredentialsProvider": "keys",
    "AnonymousAWSCredentialsProvider": "anonymous",
    "EnvironmentVariableCredentialsProvider": "environment",
    "ProfileCredentialsProvider": "profile",
    "WebIdentityTokenCredentialsProvider": "web_identity",
    "WebIdentityTokenFileCredentialsProvider": "web_identity",
    "ContainerCredentialsProvider": "chain",
    "EC2ContainerCredentialsProviderWrapper": "chain",
    "InstanceProfileCredentialsProvider": "chain",
    "IAMInstanceCredentialsProvider": "chain",
    "DefaultCredentialsProvider": "default",
    "DefaultAWSCredentialsProviderChain": "default",
}
_ENV_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_TOKEN")


@dataclass(frozen=True)
class S3Settings:
    """What one bucket's S3A properties (and the AWS environment) come to."""

    bucket: str
    endpoint: str | None  # full URL, or None: AWS's endpoint for the region
    region: str
    path_style: bool
    credentials: str  # keys | anonymous | environment | profile:<name> | chain
    config: dict[str, Any]  # obstore S3Config (credentials included: never logged)
    client: dict[str, Any]  # obstore ClientConfig, without the timeouts

    @property
    def display_endpoint(self) -> str:
        return self.endpoint or f"https://s3.{self.region}.amazonaws.com"


def bucket_conf(conf: Mapping[str, str], bucket: str) -> dict[str, str]:
    """``fs.s3a.*`` with ``fs.s3a.bucket.<bucket>.*`` applied on top (S3A's propagateBucketOptions)."""
    out = dict(conf)
    own = f"fs.s3a.bucket.{bucket}."
    for key, value in conf.items():
        if key.startswith(own) and len(key) > len(own):
            out["fs.s3a." + key[len(own):]] = value
    return out


def _flag(conf: Mapping[str, str], key: str, default: bool) -> bool:
    raw = conf.get(key, "").strip().lower()
    if not raw:
        return default
    if raw in ("true", "false"):
        return raw == "true"
    raise ConfigError(f"{key} must be true or false, not {raw!r}")


def _endpoint(conf: Mapping[str, str]) -> str | None:
    raw = conf.get("fs.s3a.endpoint", "").strip().rstrip("/")
    if not raw:
        return None
    if "://" not in raw:
        scheme = "https" if _flag(conf, "fs.s3a.connection.ssl.enabled", True) else "http"
        raw = f"{scheme}://{raw}"
    parsed = urlparse(raw)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"fs.s3a.endpoint is not an http(s) endpoint: {conf.get('fs.s3a.endpoint')!r}")
    return raw


def _region(conf: Mapping[str, str], endpoint: str | None, environ: Mapping[str, str]) -> str:
    region = conf.get("fs.s3a.endpoint.region", "").strip()
    if region:
        return region
    if endpoint:
        host = urlparse(endpoint).hostname or ""
        parts = host.split(".")
        # s3.<region>.amazonaws.com, s3-<region>.amazonaws.com, s3.dualstack.<region>.amazonaws.com
        if host.endswith(".amazonaws.com") and len(parts) >= 3:
            candidate = parts[-3]
            if candidate.startswith("s3-"):
                candidate = candidate[3:]
            if candidate not in ("s3", "dualstack"):
                return candidate
    return environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def _profile_keys(environ: Mapping[str, str], name: str | None = None) -> tuple[str, dict[str, str]] | None:
    """A profile's static keys, from the shared credentials and config files."""
    profile = name or environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE") or "default"
    home = os.path.expanduser("~")
    files = [
        (environ.get("AWS_SHARED_CREDENTIALS_FILE") or os.path.join(home, ".aws", "credentials"), profile),
        (environ.get("AWS_CONFIG_FILE") or os.path.join(home, ".aws", "config"),
         profile if profile == "default" else f"profile {profile}"),
    ]
    for path, section in files:
        parser = configparser.RawConfigParser()
        try:
            if not parser.read(path, encoding="utf-8"):
                continue
        except (configparser.Error, OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read AWS file {path}: {exc}") from None
        if not parser.has_section(section):
            continue
        values = dict(parser.items(section))
        if values.get("aws_access_key_id") and values.get("aws_secret_access_key"):
            keys = {"access_key_id": values["aws_access_key_id"], "secret_access_key": values["aws_secret_access_key"]}
            if values.get("aws_session_token"):
                keys["session_token"] = values["aws_session_token"]
            if values.get("region"):
                keys["region"] = values["region"]
            return profile, keys
    return None


def _credentials(conf: Mapping[str, str], environ: Mapping[str, str], bucket: str) -> tuple[str, dict[str, Any]]:
    """(what was chosen, the obstore config keys for it)."""
    access, secret = conf.get("fs.s3a.access.key", "").strip(), conf.get("fs.s3a.secret.key", "").strip()
    token = conf.get("fs.s3a.session.token", "").strip()
    keys: dict[str, Any] | None = None
    if access and secret:
        keys = {"access_key_id": access, "secret_access_key": secret}
        if token:
            keys["session_token"] = token
    elif access or secret:
        raise ConfigError(f"s3a://{bucket}: fs.s3a.access.key and fs.s3a.secret.key go together (one is missing)")

    providers = [p.strip() for p in conf.get("fs.s3a.aws.credentials.provider", "").split(",") if p.strip()]
    if not providers:
        kinds = ["keys", "environment", "web_identity", "profile", "chain"]
    else:
        kinds = []
        for provider in providers:
            kind = _PROVIDERS.get(provider.rsplit(".", 1)[-1])
            if kind is None:
                raise ConfigError(
                    f"s3a://{bucket}: fs.s3a.aws.credentials.provider {provider!r} is not supported (supported: "
                    + ", ".join(sorted(_PROVIDERS)) + ")")
            kinds += ["environment", "web_identity", "profile", "chain"] if kind == "default" else [kind]
    for kind in kinds:
        if kind == "keys" and keys is not None:
            return "keys", keys
        if kind == "anonymous":
            return "anonymous", {"skip_signature": True}
        if kind == "environment" and environ.get("AWS_ACCESS_KEY_ID") and environ.get("AWS_SECRET_ACCESS_KEY"):
            env = {"access_key_id": environ["AWS_ACCESS_KEY_ID"], "secret_access_key": environ["AWS_SECRET_ACCESS_KEY"]}
            if environ.get("AWS_SESSION_TOKEN") or environ.get("AWS_TOKEN"):
                env["session_token"] = environ.get("AWS_SESSION_TOKEN") or environ["AWS_TOKEN"]
            return "environment", env
        if kind == "web_identity" and environ.get("AWS_WEB_IDENTITY_TOKEN_FILE") and environ.get("AWS_ROLE_ARN"):
            web = {"web_identity_token_file": environ["AWS_WEB_IDENTITY_TOKEN_FILE"], "role_arn": environ["AWS_ROLE_ARN"]}
            if environ.get("AWS_ROLE_SESSION_NAME"):
                web["role_session_name"] = environ["AWS_ROLE_SESSION_NAME"]
            return "web_identity", web
        if kind == "profile":
            found = _profile_keys(environ)
            if found is not None:
                name, values = found
                values = dict(values)
                values.pop("region", None)
                return f"profile:{name}", values
        if kind == "chain":
            return "chain", {}  # obstore: container credentials, then instance metadata
    if keys is None and "keys" in kinds and len(kinds) == 1:
        raise ConfigError(f"s3a://{bucket}: {providers[0]} needs fs.s3a.access.key and fs.s3a.secret.key")
    raise ConfigError(f"s3a://{bucket}: none of the credentials providers {', '.join(providers)} has credentials")


def s3_settings(bucket: str, conf: Mapping[str, str], environ: Mapping[str, str] | None = None) -> S3Settings:
    """The obstore configuration of ``bucket`` from the S3A properties and the AWS environment."""
    env = os.environ if environ is None else environ
    merged = bucket_conf(conf, bucket)
    endpoint = _endpoint(merged)
    region = _region(merged, endpoint, env)
    path_style = _flag(merged, "fs.s3a.path.style.access", False)
    kind, creds = _credentials(merged, env, bucket)
    if kind.startswith("profile:") and not merged.get("fs.s3a.endpoint.region"):
        found = _profile_keys(env, kind.split(":", 1)[1])
        if found is not None and found[1].get("region") and not (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")):
            region = found[1]["region"]
    config: dict[str, Any] = {"region": region, **creds}
    client: dict[str, Any] = {}
    if endpoint:
        if path_style:
            config["endpoint"] = endpoint
        else:  # virtual-hosted style on a custom endpoint: the bucket in the host name
            parsed = urlparse(endpoint)
            config["endpoint"] = f"{parsed.scheme}://{bucket}.{parsed.netloc}{parsed.path}"
            config["virtual_hosted_style_request"] = True
        if endpoint.startswith("http://"):
            client["allow_http"] = True
    else:
        config["virtual_hosted_style_request"] = not path_style
    if _flag(merged, "fs.s3a.requester.pays.enabled", False):
        config["request_payer"] = True
    proxy_host = merged.get("fs.s3a.proxy.host", "").strip()
    if proxy_host:
        port = merged.get("fs.s3a.proxy.port", "").strip()
        secure = _flag(merged, "fs.s3a.proxy.secured", False)
        client["proxy_url"] = f"{'https' if secure else 'http'}://{proxy_host}{':' + port if port else ''}"
    return S3Settings(bucket, endpoint, region, path_style, kind, config, client)


def s3_target(url: str, conf: Mapping[str, str], environ: Mapping[str, str] | None = None) -> StoreTarget:
    """The :class:`StoreTarget` of an ``s3a://bucket/prefix`` or ``s3://bucket/prefix`` URL."""
    parsed = urlparse(url)
    if parsed.scheme not in ("s3a", "s3", "s3n") or not parsed.netloc:
        raise ConfigError(f"not an s3a://bucket/path URL: {url!r}")
    bucket = parsed.netloc
    settings = s3_settings(bucket, conf, environ)
    log.info("s3: bucket %s at %s (region %s, %s-style, credentials: %s)", bucket, settings.display_endpoint,
             settings.region, "path" if settings.path_style else "virtual-hosted", settings.credentials.split(":")[0])

    def make(timeout: float, connect_timeout: float) -> Any:
        from obstore.store import S3Store

        client = dict(settings.client)
        client.update(timeout=timedelta(seconds=timeout), connect_timeout=timedelta(seconds=connect_timeout))
        return S3Store(bucket, config=settings.config, client_options=client, retry_config={"max_retries": 0})  # type: ignore[arg-type]

    return StoreTarget(
        scheme=parsed.scheme,
        authority=bucket,
        root_key=parsed.path.strip("/"),
        endpoint=settings.display_endpoint,
        bucket=bucket,
        make=make,
    )
