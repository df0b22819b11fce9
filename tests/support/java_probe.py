"""A small Java program compiled against the installed Spark's jars, to ask Spark itself.

The probes under ``tests/state/*_probe/`` read questions on stdin and answer on stdout, one
line each, so one JVM answers hundreds of them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from support.corpus import spark_home
from support.real_shs import java_executable


def compiled_probe(source: Path, out: Path) -> list[str]:
    """The java command line running ``source`` (one class, named as its file), compiled into ``out``."""
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -e '.[dev]')")
    javac = shutil.which("javac")
    if javac is None:
        pytest.skip("no javac on PATH (needs a JDK 17)")
    classpath = f"{spark_home() / 'jars'}/*"
    subprocess.run([javac, "-cp", classpath, "-d", str(out), str(source)], check=True, capture_output=True)
    return [java_executable(), "-cp", f"{out}:{classpath}", source.stem]
