"""deploy/helm/sparkhist: ``helm lint`` and ``helm template`` over the chart's values matrix
(``ci/*-values.yaml``), every rendered object validated offline against the Kubernetes
API schemas (kubernetes-validate, strict: unknown fields fail), the PrometheusRule's rules
checked by promtool, and what the objects say checked against sparkhist itself: every
``SPARKHIST_*`` variable is a real setting, the probes hit the real endpoints, the grace
period covers the measured stop, the memory is the budget's.

helm is built by ``.ci/run`` (``go install helm.sh/helm/v4/cmd/helm@v4.3.2``, into GOPATH/bin).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from deploy.units import DEPLOY, STOP_LIMIT
from sparkhist.config import SETTINGS, read_properties

CHART = DEPLOY / "helm" / "sparkhist"
MATRIX = sorted((CHART / "ci").glob("*-values.yaml"))
#: The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schemas shipped.
KUBERNETES = ("1.25.0", "1.37.0")
KNOWN_ENV = {s.env for s in SETTINGS}


@cache
def helm() -> str:
    found = shutil.which("helm")
    if found is None:
        gopath = subprocess.run(["go", "env", "GOPATH"], capture_output=True, text=True).stdout.strip() \
            if shutil.which("go") else os.path.expanduser("~/go")
        candidate = Path(gopath) / "bin" / "helm"
        if not candidate.exists():
            pytest.skip("helm is not installed (.ci/run builds it: go install helm.sh/helm/v4/cmd/helm@v4.3.2)")
        found = str(candidate)
    return found


def _helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm(), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HELM_CACHE_HOME": "/nonexistent-helm-cache", "HELM_NO_PLUGINS": "1"})


def render(values: Path | None = None, *sets: str, release: str = "shs") -> list[dict[str, Any]]:
    args = ["template", release, str(CHART), "--namespace", "spark"]
    if values is not None:
        args += ["-f", str(values)]
    for s in sets:
        args += ["--set", s]
    done = _helm(*args)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def _one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_helm_version() -> None:
    done = _helm("version", "--short")
    assert done.returncode == 0 and done.stdout.startswith("v4."), done.stdout + done.stderr


@pytest.mark.parametrize("values", MATRIX, ids=lambda p: p.name)
def test_lint(values: Path) -> None:
    done = _helm("lint", "--strict", str(CHART), "-f", str(values))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("values", MATRIX, ids=lambda p: p.name)
def test_rendered_objects_validate_against_the_kubernetes_schemas(values: Path, tmp_path: Path) -> None:
    objects = render(values)
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service"} <= kinds
    for obj in objects:
        where = f"{values.name}: {obj['kind']}/{obj['metadata']['name']}"
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            _check_monitoring(obj, tmp_path)
            continue
        for version in KUBERNETES:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                raise AssertionError(f"{where} against {version}: {exc.message}") from None
        assert len(obj["metadata"]["name"]) <= 63, where


def _check_monitoring(obj: dict[str, Any], tmp_path: Path) -> None:
    """Prometheus Operator kinds (no schema in kubernetes-validate): their shape, and the rules through promtool."""
    assert set(obj) == {"apiVersion", "kind", "metadata", "spec"} and obj["apiVersion"] == "monitoring.coreos.com/v1"
    if obj["kind"] == "ServiceMonitor":
        spec = obj["spec"]
        assert set(spec) <= {"jobLabel", "selector", "endpoints"}
        (endpoint,) = spec["endpoints"]
        assert endpoint["port"] == "http" and endpoint["path"] == "/metrics"
        assert set(endpoint) <= {"port", "path", "interval", "scheme", "tlsConfig"}
        return
    assert obj["kind"] == "PrometheusRule"
    rules = tmp_path / f"{obj['metadata']['name']}-rules.yml"
    rules.write_text(yaml.safe_dump(obj["spec"]))
    done = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert obj["spec"] == yaml.safe_load((DEPLOY / "prometheus" / "sparkhist-alerts.yml").read_text())


def test_the_charts_alert_rules_are_deploy_prometheus_s() -> None:
    """files/ holds a copy (helm reads no file outside the chart): it must not drift."""
    assert (CHART / "files" / "sparkhist-alerts.yml").read_bytes() == \
        (DEPLOY / "prometheus" / "sparkhist-alerts.yml").read_bytes()


@pytest.mark.parametrize("values", MATRIX, ids=lambda p: p.name)
def test_what_the_deployment_says_holds_for_sparkhist(values: Path) -> None:
    objects = render(values)
    deployment = _one(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = _env(container)
    unknown = {name for name in env if name.startswith("SPARKHIST_")} - KNOWN_ENV
    assert not unknown, f"not sparkhist settings: {unknown}"
    assert env["SPARKHIST_HOST"] == "0.0.0.0" and env["SPARKHIST_STORE"] == "/var/lib/sparkhist"
    assert container["args"][0] == "serve"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["startupProbe"]["httpGet"]["path"] == "/ready"
    assert pod["terminationGracePeriodSeconds"] >= 2 * STOP_LIMIT
    assert pod["securityContext"]["runAsNonRoot"] is True
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts["/var/lib/sparkhist"] == "store"
    volumes = {v["name"]: v for v in pod["volumes"]}
    for name in mounts.values():
        assert name in volumes, f"mount of an undefined volume {name}"
    for path_env in ("SPARKHIST_KERBEROS_KEYTAB", "SPARKHIST_AUTH_KERBEROS_KEYTAB", "SPARKHIST_TLS_CERT",
                     "SPARKHIST_HADOOP_CONF_DIR"):
        if path_env in env:
            assert any(env[path_env].startswith(m) for m in mounts), f"{path_env}={env[path_env]} is on no mount"
    if "--properties-file" in container["args"]:
        properties = container["args"][container["args"].index("--properties-file") + 1]
        assert properties in mounts
        conf = next(o for o in objects if o["kind"] == "ConfigMap" and "spark-defaults.conf" in o["data"])
        _check_properties(conf["data"]["spark-defaults.conf"])
    if deployment["spec"]["replicas"] > 1:
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    else:
        assert deployment["spec"]["strategy"]["type"] == "Recreate"


def _check_properties(text: str) -> None:
    """The rendered spark-defaults.conf is read by sparkhist itself, as its config loader reads it."""
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
        f.write(text)
        f.flush()
        props = read_properties(f.name)
    assert props and all(k.startswith("spark.") and v for k, v in props.items()), props


def test_memory_is_the_budget_plus_the_process() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    m = values["memory"]
    (container,) = _one(render(), "Deployment")["spec"]["template"]["spec"]["containers"]
    expected = m["budgetMi"] + m["responseCacheMi"] + m["baseMi"] + m["workerMi"] * values["indexWorkers"]
    assert container["resources"]["limits"]["memory"] == f"{expected}Mi"
    assert container["resources"]["requests"]["memory"] == f"{expected}Mi"
    env = _env(container)
    assert env["SPARKHIST_MEMORY_BUDGET"] == f"{m['budgetMi']}m" and env["SPARKHIST_INDEX_WORKERS"] == str(values["indexWorkers"])
    (bigger,) = _one(render(None, "memory.budgetMi=4096"), "Deployment")["spec"]["template"]["spec"]["containers"]
    assert bigger["resources"]["limits"]["memory"] == f"{expected - m['budgetMi'] + 4096}Mi"


@pytest.mark.parametrize(("sets", "message"), [
    (("replicaCount=2",), "needs persistence.accessModes [ReadWriteMany]"),
    (("replicaCount=2", "persistence.accessModes={ReadWriteMany}", "persistence.enabled=false"), "needs persistence.enabled"),
    (("replicaCount=3", "persistence.accessModes={ReadWriteMany}"), "replicaCount: 1 (writer) or 2"),
    (("auth.mode=kerberos",), "auth.mode kerberos needs"),
    (("auth.mode=ldap",), "auth.mode: none, header or kerberos"),
    (("kerberos.enabled=true",), "kerberos.enabled needs"),
])
def test_impossible_values_are_refused(sets: tuple[str, ...], message: str) -> None:
    args = ["template", "shs", str(CHART)]
    for s in sets:
        args += ["--set", s]
    done = _helm(*args)
    assert done.returncode != 0 and message in done.stderr, done.stderr


def test_the_validation_above_can_fail() -> None:
    """A field the schema does not know, and a wrong type, are caught (strict schemas)."""
    deployment = _one(render(), "Deployment")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGett"] = {"path": "/health"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES[1], strict=True)
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "10s"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES[0], strict=True)
