"""deploy/container/Containerfile: what can be checked without a container runtime.

The image cannot be built here (no podman/docker, no registry but PyPI). What the image
*does* is run here instead: the build stage's ``COPY`` set is copied into a scratch
directory and its ``pip`` step run there (the package's wheel, then the wheels of its
dependencies); the runtime stage's install step (a fresh venv, ``pip install --no-index``
from those wheels only) is run with the image's paths mapped to scratch ones. The result
must hold every template, static file and bundled sample, ``sparkhist --help`` must work
and ``sparkhist serve`` must answer the recipe's own HEALTHCHECK, ``/ready``, the UI and
the API over the bundled samples, from outside the source tree.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from deploy.units import DEPLOY, REPO, free_port, serving
from deploy.units import base_env as _caller_env

pytestmark = pytest.mark.slow

RECIPE = DEPLOY / "container" / "Containerfile"


def _instructions() -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in RECIPE.read_text().splitlines()
                                            if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in joined.splitlines() if line.strip()]


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction, args in _instructions():
        if instruction == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction, args))
    return stages


def _arg(name: str) -> str:
    return next(args.split("=", 1)[1] for ins, args in _instructions() if ins == "ARG" and args.startswith(name + "="))


def test_recipe_shape() -> None:
    build, runtime = _stages()
    base = _arg("PYTHON_IMAGE")
    assert re.fullmatch(r"docker\.io/library/python:3\.1[1-9]-slim(-\w+)?", base), base
    assert build[0][1] == "${PYTHON_IMAGE} AS build" and runtime[0][1] == "${PYTHON_IMAGE}"
    runtime_args = dict((ins, args) for ins, args in runtime)
    assert runtime_args["USER"].split(":")[0] not in ("0", "root"), "runs as a non-root user"
    env = dict(re.findall(r"(\w+)=(\S+)", runtime_args["ENV"]))
    assert runtime_args["VOLUME"] == f'["{env["SPARKHIST_STORE"]}"]', "the store is the volume"
    assert env["SPARKHIST_HOST"] == "0.0.0.0" and runtime_args["EXPOSE"] == env["SPARKHIST_PORT"]
    assert "/health" in runtime_args["HEALTHCHECK"]
    assert any(ins == "COPY" and args.startswith("--from=build") for ins, args in runtime)
    assert runtime_args["ENTRYPOINT"] == '["sparkhist"]' and "serve" in runtime_args["CMD"]


def _run_step(command: str, paths: dict[str, Path], cwd: Path, venv_bin: Path) -> None:
    """Run one RUN step's shell text with the image's paths mapped to scratch ones (in one pass)."""
    image_paths = "|".join(re.escape(p) for p in sorted(paths, key=len, reverse=True))
    command = re.sub(rf"(?<![\w/])({image_paths})(?=[/\s\"']|$)", lambda m: str(paths[m.group(1)]), command)
    env = base_env(PATH=f"{venv_bin}:/usr/bin:/bin", EXTRAS="", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PIP_FIND_LINKS", None)  # this machine's pip settings: the image has none
    done = subprocess.run(["sh", "-ec", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def base_env(**extra: str) -> dict[str, str]:
    """The caller's environment for the image's venv: no SPARKHIST_* and no PYTHONPATH, so
    nothing but what the recipe installed can be imported."""
    env = _caller_env(**extra)
    env.pop("PYTHONPATH", None)
    return env


def test_build_and_install_steps_give_a_working_server(tmp_path: Path) -> None:
    build, runtime = _stages()
    python = shutil.which("python3.11") or sys.executable
    src = tmp_path / "src"
    src.mkdir()
    for ins, args in build:  # the build context as the recipe copies it
        if ins == "COPY":
            *sources, dest = shlex.split(args)
            for name in sources:  # into a directory (several sources, or a trailing /), else to that name
                target = src / dest / Path(name).name if len(sources) > 1 or dest.endswith("/") else src / dest
                (shutil.copytree if (REPO / name).is_dir() else shutil.copy)(REPO / name, target)
    wheels, venv = tmp_path / "wheels", tmp_path / "opt-sparkhist"
    paths = {"/wheels": wheels, "/tmp/wheels": wheels, "/opt/sparkhist": venv, "/src": src}
    builder = tmp_path / "python"  # the base image's python, with pip
    subprocess.run([python, "-m", "venv", str(builder)], check=True, timeout=300)
    (build_step,) = [args for ins, args in build if ins == "RUN" and "pip wheel" in args]
    _run_step(build_step, paths, src, builder / "bin")

    (wheel,) = wheels.glob("sparkhist-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    package = REPO / "src" / "sparkhist"
    assets = [p for folder in ("render/templates", "ui/static", "samples") for p in (package / folder).rglob("*") if p.is_file()]
    assert len(assets) > 20
    missing = [str(p.relative_to(package)) for p in assets if "sparkhist/" + str(p.relative_to(package)) not in names]
    assert not missing, f"not in the wheel: {missing}"
    assert "sparkhist/py.typed" in names

    (install_step,) = [args for ins, args in runtime if ins == "RUN" and "venv" in args]
    _run_step(install_step, paths, tmp_path, builder / "bin")
    assert not wheels.exists(), "the install step removes the wheels"

    home = tmp_path / "elsewhere"  # not the source tree: the package comes from the venv only
    home.mkdir()
    where = subprocess.run([str(venv / "bin/python"), "-c", "import sparkhist; print(sparkhist.__file__)"], cwd=home,
                           env=base_env(), capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(venv)), where
    helped = subprocess.run([str(venv / "bin/sparkhist"), "--help"], cwd=home, env=base_env(), capture_output=True,
                            text=True, timeout=60)
    assert helped.returncode == 0 and "serve" in helped.stdout, helped.stderr

    port = free_port()
    runtime_env = dict(re.findall(r"(\w+)=(\S+)", dict(runtime)["ENV"]))
    env = base_env(SPARKHIST_STORE=str(tmp_path / "store"), SPARKHIST_PORT=str(port), SPARKHIST_HOST="127.0.0.1")
    healthcheck = dict(runtime)["HEALTHCHECK"].split(" CMD ", 1)[1]
    check_env = {**env, "PATH": f"{venv / 'bin'}:/usr/bin:/bin"}
    assert runtime_env["PATH"].startswith("/opt/sparkhist/bin:"), "the HEALTHCHECK's python is the venv's"
    argv = [str(venv / "bin/sparkhist"), *re.findall(r'"([^"]+)"', dict(runtime)["CMD"])]
    with serving(argv, env, port, tmp_path / "serve.log") as served:
        served.wait_ready()
        assert subprocess.run(["sh", "-c", healthcheck], env=check_env, timeout=30).returncode == 0
        apps = httpx.get(served.base + "/api/v1/applications", timeout=5).json()
        assert len(apps) >= 1, "the bundled samples are served"
        page = httpx.get(served.base + "/", timeout=10)
        assert page.status_code == 200 and "/static/sparkhist.css" in page.text
        css = httpx.get(served.base + "/static/sparkhist.css", timeout=5)
        assert css.status_code == 200 and css.content == (package / "ui/static/sparkhist.css").read_bytes()
        served.stop()
    assert subprocess.run(["sh", "-c", healthcheck], env=check_env, capture_output=True, timeout=30).returncode != 0
