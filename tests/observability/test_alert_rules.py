"""The Prometheus alert rules: valid, unit-tested by promtool, documented, on metrics that exist.

promtool comes from the Debian package ``prometheus`` (``.ci/run`` installs it). A
missing promtool fails these tests instead of skipping them: untested alert rules
would otherwise pass CI unnoticed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from support.conformance import SPARK401
from support.metrics import names, scrape
from support.server import copy_logs, runtime_for

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "deploy" / "prometheus"
RULES = RULES_DIR / "sparkhist-alerts.yml"
RULE_TESTS = RULES_DIR / "sparkhist-alerts.test.yml"
RUNBOOK = REPO / "docs" / "runbook.md"


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: apt-get install -y prometheus (.ci/run installs it)")
    return path


def _alerts() -> dict[str, str]:
    """Alert name -> its block of the rules file."""
    blocks = re.split(r"\n\s*- alert: ", RULES.read_text())[1:]
    return {block.split("\n", 1)[0].strip(): block for block in blocks}


def test_promtool_check_rules() -> None:
    result = subprocess.run([_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in result.stdout


def test_promtool_test_rules() -> None:
    result = subprocess.run([_promtool(), "test", "rules", RULE_TESTS.name], cwd=RULES_DIR,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_required_alerts_exist_and_each_is_tested() -> None:
    alerts = _alerts()
    required = {
        "SparkhistSlowRecovery", "SparkhistCacheMemoryHigh", "SparkhistStoreFilesystemFull", "SparkhistSourceFailing",
        "SparkhistOffline", "SparkhistScanStalled", "SparkhistScanLagHigh", "SparkhistCorruptionDetected",
        "SparkhistNoWriter",
    }
    assert required <= set(alerts)
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert tested == set(alerts), "every alert needs a promtool test that fires and resolves it"
    for name in alerts:
        cases = re.findall(rf"alertname: {name}\n\s+exp_alerts:(.*)", RULE_TESTS.read_text())
        assert any(c.strip() == "[]" for c in cases) and any(c.strip() == "" for c in cases), \
            f"{name}: test both a firing and a silent evaluation"


def test_every_alert_has_a_summary_and_a_runbook_section() -> None:
    headings = set(re.findall(r"^## (\w+)$", RUNBOOK.read_text(), flags=re.M))
    for name, block in _alerts().items():
        assert "summary:" in block and "severity:" in block, name
        match = re.search(r'runbook: "docs/runbook\.md#(\S+)"', block)
        assert match, f"{name} has no runbook annotation"
        assert match.group(1) == name.lower()
        assert name in headings, f"docs/runbook.md has no section for {name}"
    assert headings == set(_alerts()), "runbook sections without an alert"


def test_rules_only_use_exported_metrics(tmp_path: Path) -> None:
    logs = copy_logs(SPARK401 / "eventlogs", tmp_path / "logs")
    with runtime_for(logs, tmp_path / "store") as (_, client):
        client.get("/api/v1/applications")
        exported = names(scrape(client))
    used = set(re.findall(r"\b((?:sparkhist|process)_[a-z_]+)", RULES.read_text()))
    assert used, "no metric found in the rules"
    assert used <= exported, sorted(used - exported)
