"""An SHS security configuration moved over either works or stops the start with one clear line (exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sparkhist.access.authn import HeaderAuthenticator
from sparkhist.access.settings import HADOOP_AUTH_FILTER, access_policy, filter_params
from sparkhist.config import load_settings
from sparkhist.errors import ConfigError
from support.serving import free_port


def policy(tmp_path: Path, lines: str, **env: str) -> object:
    props = tmp_path / "spark-defaults.conf"
    props.write_text(lines)
    return access_policy(load_settings(properties_file=str(props), environ=env))


def test_defaults_are_open_and_inactive(tmp_path: Path) -> None:
    p = policy(tmp_path, "")
    assert not p.active  # type: ignore[attr-defined]


def test_history_acls_from_the_properties_file(tmp_path: Path) -> None:
    p = policy(tmp_path, "spark.history.ui.acls.enable true\nspark.history.ui.admin.acls a, b\n"
                         "spark.history.ui.admin.acls.groups g\n")
    history = p.authorizer.history  # type: ignore[attr-defined]
    assert history.enabled and history.admins == {"a", "b"} and history.admin_groups == {"g"}


def test_header_mode(tmp_path: Path) -> None:
    p = policy(tmp_path, "", SPARKHIST_AUTH="header", SPARKHIST_AUTH_HEADER="X-User",
               SPARKHIST_AUTH_TRUSTED_PROXIES="10.0.0.0/8, 192.0.2.1")
    auth = p.authenticator  # type: ignore[attr-defined]
    assert isinstance(auth, HeaderAuthenticator) and auth.header == "X-User" and len(auth.trusted) == 2
    assert "/metrics" in p.open_paths  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="SPARKHIST_AUTH_TRUSTED_PROXIES"):
        load_settings(environ={"SPARKHIST_AUTH_TRUSTED_PROXIES": "10.0.0.300/8"})
    with pytest.raises(ConfigError, match="SPARKHIST_AUTH"):
        load_settings(environ={"SPARKHIST_AUTH": "ldap"})


def test_filter_params_old_and_new_syntax() -> None:
    props = {f"spark.{HADOOP_AUTH_FILTER}.params": "type=kerberos,kerberos.keytab=/a",
             f"spark.{HADOOP_AUTH_FILTER}.param.kerberos.keytab": "/b"}
    assert filter_params(props, HADOOP_AUTH_FILTER) == {"type": "kerberos", "kerberos.keytab": "/b"}


@pytest.mark.parametrize(("lines", "message"), [
    ("spark.ui.filters com.example.SsoFilter\n", "Java servlet filter sparkhist cannot run"),
    (f"spark.ui.filters {HADOOP_AUTH_FILTER}\nspark.{HADOOP_AUTH_FILTER}.param.type simple\n", "type=simple"),
    (f"spark.ui.filters {HADOOP_AUTH_FILTER}\n", "needs a principal and a keytab"),
    (f"spark.ui.filters {HADOOP_AUTH_FILTER}\nspark.{HADOOP_AUTH_FILTER}.param.kerberos.name.rules RULE:[1:$1]\n",
     "kerberos.name.rules"),
    (f"spark.ui.filters {HADOOP_AUTH_FILTER}\nspark.{HADOOP_AUTH_FILTER}.param.alt-kerberos.non-browser.user-agents x\n",
     "cannot be honoured"),
    (f"spark.ui.filters {HADOOP_AUTH_FILTER}\nspark.{HADOOP_AUTH_FILTER}.param.kerberos.principal HTTP/h@R\n"
     f"spark.{HADOOP_AUTH_FILTER}.param.kerberos.keytab /no/such.keytab\n", "not a readable file"),
    ("spark.user.groups.mapping com.example.LdapGroups\n", "spark.user.groups.mapping"),
    ("spark.redaction.regex (?i)secret|internal\n", "spark.redaction.regex"),
    (f"spark.ui.filters {HADOOP_AUTH_FILTER}\nspark.{HADOOP_AUTH_FILTER}.param.signer.secret.provider zookeeper\n",
     "signer.secret.provider=zookeeper"),
])
def test_what_cannot_be_honoured_is_refused(tmp_path: Path, lines: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("$", r"\$")):
        policy(tmp_path, lines)


def test_serve_exits_2_with_one_line(tmp_path: Path) -> None:
    props = tmp_path / "spark-defaults.conf"
    props.write_text("spark.ui.filters com.example.SsoFilter\n")
    done = subprocess.run([sys.executable, "-m", "sparkhist.cli", "serve", "--store", str(tmp_path / "store"),
                           "--port", str(free_port()), "--properties-file", str(props)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("sparkhist: configuration error: spark.ui.filters names")
    assert not (tmp_path / "store").exists()  # refused before anything is written
