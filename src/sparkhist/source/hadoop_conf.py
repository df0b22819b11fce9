"""Hadoop client configuration: ``core-site.xml`` + ``hdfs-site.xml`` and the NameNode list.

Read from a given directory, else ``$HADOOP_CONF_DIR``, else ``$HADOOP_HOME/etc/hadoop``
(the order hdfs-native uses), with ``key=value`` overrides on top. The sources need
the NameNode list themselves (hdfs-native keeps it private) to rotate it, and the HTTP
addresses for WebHDFS.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass

from sparkhist.errors import ConfigError

__all__ = ["NameNode", "NameNodes", "find_conf_dir", "load_conf", "resolve_namenodes"]

DEFAULT_RPC_PORT = 8020
DEFAULT_HTTP_PORT = 9870


def find_conf_dir(conf_dir: str | None = None) -> str | None:
    if conf_dir:
        return conf_dir
    if os.environ.get("HADOOP_CONF_DIR"):
        return os.environ["HADOOP_CONF_DIR"]
    if os.environ.get("HADOOP_HOME"):
        return os.path.join(os.environ["HADOOP_HOME"], "etc", "hadoop")
    return None


def load_conf(conf_dir: str | None = None, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The merged configuration: site files (if any), then ``overrides``."""
    conf: dict[str, str] = {}
    directory = find_conf_dir(conf_dir)
    if directory is not None:
        if conf_dir and not os.path.isdir(directory):
            raise ConfigError(f"Hadoop configuration directory not found: {directory}")
        for name in ("core-site.xml", "hdfs-site.xml"):
            path = os.path.join(directory, name)
            if os.path.exists(path):
                conf.update(_read_site(path))
    conf.update({str(k): str(v) for k, v in (overrides or {}).items()})
    return conf


def _read_site(path: str) -> dict[str, str]:
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise ConfigError(f"cannot read Hadoop configuration {path}: {exc}") from exc
    out: dict[str, str] = {}
    for prop in root.iter("property"):
        name, value = prop.findtext("name"), prop.findtext("value")
        if name:
            out[name.strip()] = (value or "").strip()
    return out


@dataclass(frozen=True, slots=True)
class NameNode:
    id: str  # the id in dfs.ha.namenodes.<ns>, or host:port for a single NameNode
    rpc: str  # host:port
    http: str | None  # host:port of the web server (WebHDFS), when known


@dataclass(frozen=True, slots=True)
class NameNodes:
    authority: str  # nameservice, or host:port
    ha: bool
    nodes: tuple[NameNode, ...]


def resolve_namenodes(authority: str, conf: Mapping[str, str]) -> NameNodes:
    """The NameNodes behind ``hdfs://<authority>``: a nameservice's list, or one host."""
    if not authority:
        default = conf.get("fs.defaultFS", "")
        if not default.startswith("hdfs://"):
            raise ConfigError("hdfs:/// URL without a host and no hdfs:// fs.defaultFS")
        authority = default[len("hdfs://") :].split("/", 1)[0]
    ids = [i.strip() for i in conf.get(f"dfs.ha.namenodes.{authority}", "").split(",") if i.strip()]
    if ids and ":" not in authority:
        nodes = []
        for nid in ids:
            rpc = conf.get(f"dfs.namenode.rpc-address.{authority}.{nid}")
            if not rpc:
                raise ConfigError(f"dfs.namenode.rpc-address.{authority}.{nid} is not set")
            http = conf.get(f"dfs.namenode.http-address.{authority}.{nid}")
            nodes.append(NameNode(nid, rpc, http or _default_http(rpc)))
        return NameNodes(authority, True, tuple(nodes))
    host, _, port = authority.partition(":")
    rpc = f"{host}:{port or DEFAULT_RPC_PORT}"
    http = conf.get("dfs.namenode.http-address") or f"{host}:{DEFAULT_HTTP_PORT}"
    if http.startswith("0.0.0.0:"):
        http = f"{host}:{http.split(':', 1)[1]}"
    return NameNodes(authority, False, (NameNode(rpc, rpc, http),))


def _default_http(rpc: str) -> str:
    return f"{rpc.rsplit(':', 1)[0]}:{DEFAULT_HTTP_PORT}"
