"""The Spark History MCP server (PyPI ``mcp-apache-spark-history-server``), run as its users run it.

It needs Python >= 3.12 (the project's venv is 3.11), so it lives in a venv of its own,
``~/.cache/sparkhist/mcp-venv-<version>``, made by :func:`ensure_mcp_venv` from a Python 3.12
found on PATH or under pyenv, and reused while it holds :data:`MCP_VERSION`.
``python tests/support/mcp_client.py`` makes it (``.ci/run`` does, on a fresh machine) and
prints its interpreter.

:data:`DRIVER` runs in that venv: it reads a server URL and a list of calls (JSON, stdin),
makes each call and prints one JSON result per call. Two kinds of call:

- ``rest``: a method of its REST client, ``spark_history_mcp.api.spark_client.SparkRestClient``
  (the generated OpenAPI client underneath), the way its tools use it; the answer is the
  client's pydantic models dumped as JSON (``by_alias``), or the exception it raised.
- ``tool``: an MCP tool, called through a real MCP client session connected in memory to
  the package's own ``FastMCP`` server (its lifespan reads the server list from the YAML
  config named by ``SHS_MCP_CONFIG``, as a deployment does); the answer is the tool's
  structured result, or its error text.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

MCP_PACKAGE = "mcp-apache-spark-history-server"
MCP_VERSION = "1.0.2"
CACHE = Path.home() / ".cache" / "sparkhist"


def python312() -> str:
    """A Python 3.12 that runs: the newest 3.12 under pyenv, else ``python3.12`` on PATH (a pyenv
    shim on PATH is no good alone: it fails unless 3.12 is selected, so each candidate is tried)."""
    roots = [Path(os.environ["PYENV_ROOT"])] if os.environ.get("PYENV_ROOT") else []
    if pyenv := shutil.which("pyenv"):
        done = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip():
            roots.append(Path(done.stdout.strip()))
    roots.append(Path.home() / ".pyenv")
    candidates: list[str] = []
    for root in roots:
        candidates += [str(p) for p in sorted((root / "versions").glob("3.12.*/bin/python3.12"),
                                              key=lambda p: [int(x) if x.isdigit() else 0 for x in p.parts[-3].split(".")],
                                              reverse=True)]
    if on_path := shutil.which("python3.12"):
        candidates.append(on_path)
    for candidate in candidates:
        if subprocess.run([candidate, "-c", "import venv"], capture_output=True, check=False).returncode == 0:
            return candidate
    raise RuntimeError(f"no working Python 3.12 (tried {candidates or 'none'}): the MCP server needs >= 3.12")


def mcp_venv() -> Path:
    return CACHE / f"mcp-venv-{MCP_VERSION}"


def ensure_mcp_venv() -> Path:
    """The venv's interpreter, the venv made first if it is missing or holds another version."""
    venv = mcp_venv()
    python = venv / "bin" / "python"
    check = [str(python), "-c", f"import importlib.metadata as m; assert m.version({MCP_PACKAGE!r}) == {MCP_VERSION!r}"]
    if python.exists() and subprocess.run(check, capture_output=True, check=False).returncode == 0:
        return python
    partial = venv.with_name(venv.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    subprocess.run([python312(), "-m", "venv", str(partial)], check=True)
    subprocess.run([str(partial / "bin" / "python"), "-m", "pip", "install", "-q", f"{MCP_PACKAGE}=={MCP_VERSION}"],
                   check=True)
    shutil.rmtree(venv, ignore_errors=True)
    # Renamed into place when complete. Only its interpreter is used (``bin/python -c``), which
    # finds its site-packages beside itself; the scripts' #! lines still name the old path.
    partial.rename(venv)
    subprocess.run(check, check=True)
    return python


#: Runs in the MCP venv: stdin {"url", "calls": [{"kind": "rest"|"tool", "name", "args"}]}, stdout
#: {"results": [{"ok": answer} or {"error": {...}} per call], "seconds": [time taken per call]}.
DRIVER = r'''
import asyncio, json, os, sys, tempfile, time

spec = json.load(sys.stdin)
url = spec["url"]
config = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
with config:
    json.dump({"servers": {"local": {"url": url, "default": True}}}, config)  # JSON is YAML
os.environ["SHS_MCP_CONFIG"] = config.name

from spark_history_mcp.api.spark_client import SparkRestClient
from spark_history_mcp.api_client.exceptions import ApiException
from spark_history_mcp.config.config import ServerConfig
from spark_history_mcp.core.app import mcp
from mcp.shared.memory import create_connected_server_and_client_session


def dump(value):
    if isinstance(value, list):
        return [dump(v) for v in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", by_alias=True)
    return value


def rest_error(exc):
    if isinstance(exc, ApiException):
        return {"type": type(exc).__name__, "status": exc.status, "reason": exc.reason, "body": exc.body}
    return {"type": type(exc).__name__, "message": str(exc)}


async def main():
    client = SparkRestClient(ServerConfig(url=url, default=True))
    results, seconds = [], []
    async with create_connected_server_and_client_session(mcp) as session:
        for call in spec["calls"]:
            started = time.monotonic()
            if call["kind"] == "rest":
                try:
                    answer = await asyncio.to_thread(getattr(client, call["name"]), **call["args"])
                    results.append({"ok": dump(answer)})
                except Exception as exc:
                    results.append({"error": rest_error(exc)})
            else:
                done = await session.call_tool(call["name"], call["args"])
                texts = [c.text for c in done.content if getattr(c, "type", "") == "text"]
                if done.isError:
                    results.append({"error": {"text": texts}})
                elif done.structuredContent is not None:
                    results.append({"ok": done.structuredContent})
                else:
                    results.append({"ok": [json.loads(t) if t[:1] in "[{" else t for t in texts]})
            seconds.append(time.monotonic() - started)
    json.dump({"results": results, "seconds": seconds}, sys.stdout)


try:
    asyncio.run(main())
finally:
    os.unlink(config.name)
'''


if __name__ == "__main__":
    print(ensure_mcp_venv())
    sys.exit(0)
