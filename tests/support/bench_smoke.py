"""``bench/run.py --quick`` in the background from the start of a test session.

The smoke run is mostly waiting (JVM starts, the SHS's stalls censored at the end of each
latency run: ~4 min of wall time for ~1.3 min of CPU), so the suite starts it as soon as it
is collected and its test only collects the result: the suite's wall time does not grow by
its waits. Its output goes to files beside (not inside) its work directory, which the run
must leave empty.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class QuickRun:
    proc: subprocess.Popen[bytes]
    home: Path  # holds work/ (given to the run) and its stdout and stderr

    @property
    def work(self) -> Path:
        return self.home / "work"

    def result(self, timeout: float) -> tuple[int, str, str]:
        """Exit status, stdout and stderr once the run ended (killed after ``timeout`` seconds)."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        return (self.proc.returncode, (self.home / "stdout").read_text(errors="replace"),
                (self.home / "stderr").read_text(errors="replace"))

    def stop(self) -> None:
        """Kill the run if it is still going (a session that never reached its test), and tidy up."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.home, ignore_errors=True)


#: Where the session keeps the run it started (``pytest.Config.stash``).
QUICK_RUN = pytest.StashKey[QuickRun]()


def start_quick_run() -> QuickRun:
    home = Path(tempfile.mkdtemp(prefix="sparkhist-bench-smoke-"))
    (home / "work").mkdir()
    with open(home / "stdout", "wb") as out, open(home / "stderr", "wb") as err:
        proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "bench" / "run.py"), "--quick", "--no-record",
                                 "--work", str(home / "work")], stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                cwd=REPO_ROOT)
    return QuickRun(proc, home)
