"""deploy/systemd: the unit passes ``systemd-analyze verify`` and an offline security review,
and what it promises about the process holds for the real ``sparkhist serve``.

The machine has systemd's tools but no systemd as PID 1, so the unit is verified against
a scratch root holding the systemd units it needs and the ``ExecStart`` binary at its path;
the process side (stop time, exit statuses the restart policy relies on) is measured by
running the unit's command line with the example environment file.
"""

from __future__ import annotations

import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from deploy.units import DEPLOY, STOP_LIMIT, base_env, env_file, free_port, seconds, serving, unit_settings

UNIT = DEPLOY / "systemd" / "sparkhist.service"
ENV_FILE = DEPLOY / "systemd" / "sparkhist.env"
SETTINGS = unit_settings(UNIT)


def _one(key: str) -> str:
    values = SETTINGS.get(key)
    assert values and len(values) == 1, f"{key}: {values}"
    return values[0]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A scratch root: systemd's own units, the unit under /etc, the binary ExecStart names."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, root / "etc/systemd/system" / UNIT.name)
    binary = root / shlex.split(_one("Service.ExecStart"))[0].lstrip("/")
    binary.parent.mkdir(parents=True)
    shutil.copy(Path(sys.executable).parent / "sparkhist", binary)
    return root


def _analyze(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", *args, f"--root={root}", UNIT.name],
                          capture_output=True, text=True, timeout=60)


def test_systemd_analyze_verify_is_clean(root: Path) -> None:
    done = _analyze(root, "verify")
    assert done.returncode == 0 and done.stderr.strip() == "" and done.stdout.strip() == "", done.stderr + done.stdout


def test_verify_catches_a_broken_unit(root: Path) -> None:
    """The check above can fail: an unknown key (a warning only) and a missing binary."""
    unit = root / "etc/systemd/system" / UNIT.name
    unit.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSytem=strict"))
    assert "Unknown key 'ProtectSytem'" in _analyze(root, "verify").stderr
    (root / "opt/sparkhist/bin/sparkhist").unlink()
    assert _analyze(root, "verify").returncode != 0


def test_offline_security_review(root: Path) -> None:
    """systemd's exposure score (0 best, 10 worst) stays at 2.0 or below: the hardening is in effect."""
    done = _analyze(root, "security", "--offline=true", "--threshold=20")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Overall exposure level for sparkhist.service" in done.stdout
    for setting in ("NoNewPrivileges=", "PrivateTmp=", "ProtectSystem=", "ProtectHome="):
        line = next(line for line in done.stdout.splitlines() if setting in line)
        assert line.lstrip().startswith("✓"), line


def test_the_settings_the_issue_asks_for() -> None:
    assert _one("Service.User") == "sparkhist"
    assert _one("Service.ProtectSystem") == "strict"
    assert _one("Service.NoNewPrivileges") == "yes"
    assert _one("Service.PrivateTmp") == "yes"
    assert _one("Service.Restart") == "on-failure"
    store = env_file(ENV_FILE)["SPARKHIST_STORE"]
    assert store in _one("Service.ReadWritePaths").split(), "the store is writable under ProtectSystem=strict"
    assert store == "/var/lib/" + _one("Service.StateDirectory"), "systemd creates the store, owned by the user"


def test_stop_timeout_covers_the_measured_stop(tmp_path: Path) -> None:
    """The unit's command line with the example environment: SIGTERM (KillSignal) stops it
    cleanly (exit 0, so Restart=on-failure does not restart it) well within TimeoutStopSec,
    which leaves at least twice the promised stop as margin."""
    assert _one("Service.KillSignal") == "SIGTERM"
    timeout = seconds(_one("Service.TimeoutStopSec"))
    assert timeout >= 2 * STOP_LIMIT, f"TimeoutStopSec={timeout}s leaves no margin over the {STOP_LIMIT}s stop"
    assert timeout <= 30, "a hung process is killed soon: the store survives SIGKILL"
    argv = [sys.executable, "-m", "sparkhist.cli", *shlex.split(_one("Service.ExecStart"))[1:]]
    port = free_port()
    env = base_env(**env_file(ENV_FILE))
    env.update(SPARKHIST_STORE=str(tmp_path / "store"), SPARKHIST_PORT=str(port))
    del env["SPARKHIST_LOG_DIR"]  # the bundled samples
    with serving(argv, env, port, tmp_path / "serve.log") as served:
        served.wait_ready()
        assert httpx.get(served.base + "/api/v1/applications", timeout=5).json(), "the samples are listed"
        took = served.stop(signal.SIGTERM)
        assert served.proc.returncode == 0, (served.proc.returncode, served.log_file.read_text()[-2000:])
    print(f"\nSTOP measured={took:.3f}s TimeoutStopSec={timeout:.0f}s")
    assert took < STOP_LIMIT


def test_a_bad_setting_exits_2_which_the_unit_does_not_restart(tmp_path: Path) -> None:
    assert _one("Service.RestartPreventExitStatus") == "2"
    env = base_env(**env_file(ENV_FILE))
    env.update(SPARKHIST_STORE=str(tmp_path / "store"), SPARKHIST_PORT="not-a-port")
    done = subprocess.run([sys.executable, "-m", "sparkhist.cli", "serve"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2, done.stderr
    assert "SPARKHIST_PORT" in done.stderr or "port" in done.stderr.lower()
