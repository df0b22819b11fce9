"""How busy the machine was with work that is not this benchmark.

The load average counts our own servers' threads too (a JVM answering 50 clients puts
it above 20), so it says little. Instead a thread samples, every few seconds, the
CPU time of the whole machine (``/proc/stat``) minus the CPU time of this process and
all its descendants, living or reaped (``utime + stime + cutime + cstime``): what is
left is what other processes used, in cores. A figure taken while other processes
used half a core on a two-core box is slower than it would be on a quiet one.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


class ForeignLoad:
    def __init__(self, interval: float = 5.0) -> None:
        self.interval = interval
        self.samples: list[float] = []  # cores used by other processes, one per interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="foreign-load", daemon=True)

    def __enter__(self) -> ForeignLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def summary(self) -> str:
        if not self.samples:
            return "not sampled"
        mean = sum(self.samples) / len(self.samples)
        busy = sum(1 for s in self.samples if s > 0.25) / len(self.samples)
        return (f"mean {mean:.2f} cores, max {max(self.samples):.2f} cores of {os.cpu_count()}; "
                f"above 0.25 cores {busy:.0%} of the time ({len(self.samples)} samples of {self.interval:.0f} s)")

    def mean(self) -> float:
        return sum(self.samples) / len(self.samples) if self.samples else 0.0

    def _run(self) -> None:
        last = (time.monotonic(), _machine_busy(), _ours())
        while not self._stop.wait(self.interval):
            now = (time.monotonic(), _machine_busy(), _ours())
            elapsed = now[0] - last[0]
            if elapsed > 0:
                foreign = ((now[1] - last[1]) - (now[2] - last[2])) / TICK / elapsed
                self.samples.append(max(0.0, foreign))
            last = now


def _machine_busy() -> int:
    """Busy jiffies of all CPUs since boot (everything but idle and iowait)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
    return sum(values) - values[3] - values[4]


def _ours() -> int:
    """CPU jiffies of this process and its descendants, including reaped ones."""
    total, todo = 0, [os.getpid()]
    while todo:
        pid = todo.pop()
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
        for children in Path(f"/proc/{pid}/task").glob("*/children"):
            with contextlib.suppress(OSError, ValueError):
                todo.extend(int(c) for c in children.read_text().split())
    return total
