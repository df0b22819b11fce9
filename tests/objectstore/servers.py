"""Real object-store servers for the tests, on 127.0.0.1: SeaweedFS (S3), fake-gcs-server (GCS), Azurite (Azure).

The binaries are built once per machine by ``build_servers.sh`` (``.ci/run`` runs it;
a missing one is built here, which takes minutes for SeaweedFS) and cached under
``~/.cache/sparkhist/<server>-<version>/``.

:class:`SeaweedFS` runs ``weed server`` (master, volume, filer and S3 gateway in one
process) on free ports with its data in a test directory. With no identities
configured it accepts any key pair. Faults are played on the process itself:
:meth:`SeaweedFS.stop` (the server is gone: connections refused), :meth:`start` again on
the same ports and data, :meth:`SeaweedFS.kill` (at once), :meth:`SeaweedFS.pause`/:meth:`resume` (SIGSTOP/SIGCONT: a hung
server whose kernel still accepts connections).
"""

from __future__ import annotations

import atexit
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("SPARKHIST_CACHE", Path.home() / ".cache" / "sparkhist"))


class ServerUnavailable(RuntimeError):
    """The server cannot be built or started on this machine (the reason says why)."""


def _script_var(name: str) -> str:
    text = (HERE / "build_servers.sh").read_text()
    match = re.search(rf"^{name}=(\S+)$", text, re.MULTILINE)
    assert match, name
    return match.group(1)


def built(kind: str) -> Path:
    """The cached binary of ``kind`` (s3, gcs, azure), built now if missing."""
    paths = {
        "s3": CACHE / f"seaweedfs-{_script_var('SEAWEEDFS_VERSION')}" / "weed",
        "gcs": CACHE / f"fake-gcs-server-{_script_var('FAKE_GCS_VERSION')}" / "fake-gcs-server",
        "azure": CACHE / f"azurite-{_script_var('AZURITE_VERSION')}" / "node_modules" / ".bin" / "azurite-blob",
    }
    path = paths[kind]
    if not path.exists():
        t0 = time.monotonic()
        try:
            subprocess.run(["bash", str(HERE / "build_servers.sh"), kind], check=True, timeout=3600,
                           capture_output=True, text=True)
        except subprocess.CalledProcessError as exc:
            raise ServerUnavailable(f"cannot build the {kind} test server: {exc.stderr[-2000:]}") from None
        print(f"built the {kind} test server in {time.monotonic() - t0:.0f}s")
    if not path.exists():
        raise ServerUnavailable(f"{path} missing after the build")
    return path


def free_port() -> int:
    """A free port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Process:
    """A test server process: started, killed, paused and resumed by its process group."""

    proc: subprocess.Popen[bytes] | None = None
    log: Path

    def _spawn(self, cmd: list[str], cwd: Path | None = None) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd)
        atexit.register(self.kill)  # a crashed or interrupted run leaves no server behind

    def _wait_ready(self, ready: Callable[[], bool], timeout: float, what: str) -> float:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise ServerUnavailable(f"{what} exited with {self.proc.returncode}: {self.tail()}")
            if ready():
                return time.monotonic() - t0
            time.sleep(0.2)
        self.kill()
        raise ServerUnavailable(f"{what} did not answer within {timeout:.0f}s: {self.tail()}")

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def kill(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.resume()
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(15)

    def pause(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGCONT)


class SeaweedFS(_Process):
    """One ``weed server`` with its S3 gateway, on fixed ports for its whole life."""

    def __init__(self, workdir: Path) -> None:
        self.binary = built("s3")
        self.workdir = workdir
        self.data = workdir / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.log = workdir / "weed.log"
        self.s3_port = free_port()
        self.ports = {name: free_port() for name in ("master", "volume", "filer", "master.grpc", "volume.grpc",
                                                      "filer.grpc", "s3.grpc")}
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_seconds = 0.0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def hadoop_conf(self) -> dict[str, str]:
        """The S3A properties of this server (any key pair is accepted)."""
        return {
            "fs.s3a.endpoint": self.endpoint,
            "fs.s3a.path.style.access": "true",
            "fs.s3a.access.key": "sparkhist",
            "fs.s3a.secret.key": "sparkhist-secret",
            "fs.s3a.endpoint.region": "us-east-1",
        }

    def start(self, timeout: float = 120.0) -> float:
        """Starts the server and waits until its S3 gateway answers; returns the seconds it took."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        cmd = [
            str(self.binary), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={self.data}",
            f"-master.port={self.ports['master']}", f"-volume.port={self.ports['volume']}",
            f"-filer.port={self.ports['filer']}", "-s3", f"-s3.port={self.s3_port}",
            *(f"-{name.replace('.grpc', '.port.grpc')}={self.ports[name]}" for name in self.ports if name.endswith(".grpc")),
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.volumeSizeLimitMB=64", "-volume.max=0",
        ]
        self._spawn(cmd)
        self.start_seconds = self._wait_ready(self._answers, timeout, "SeaweedFS")
        return self.start_seconds

    def _answers(self) -> bool:
        """Whether a bucket can be created and listed (the volume servers registered)."""
        from obstore.store import S3Store

        try:
            import urllib.request

            req = urllib.request.Request(f"{self.endpoint}/sparkhist-ready", method="PUT")
            with urllib.request.urlopen(req, timeout=2):
                pass
        except OSError:
            pass
        try:
            store = S3Store("sparkhist-ready", endpoint=self.endpoint, access_key_id="a", secret_access_key="b",
                            region="us-east-1", client_options={"allow_http": True, "timeout": "5s"},
                            retry_config={"max_retries": 0})
            store.put("probe", b"x")
            return bytes(store.get("probe").bytes()) == b"x"
        except Exception:  # noqa: BLE001 - not up yet
            return False

    def stop(self) -> None:
        """The server is gone (SIGTERM, then SIGKILL): connections are refused."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.resume()
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(15)

    def bucket(self, name: str) -> object:
        """An obstore client for ``name``, the bucket created (idempotent)."""
        import urllib.error
        import urllib.request

        from obstore.store import S3Store

        req = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        try:
            with urllib.request.urlopen(req, timeout=10):
                pass
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # BucketAlreadyExists / OwnedByYou
                raise
        return S3Store(name, endpoint=self.endpoint, access_key_id="a", secret_access_key="b", region="us-east-1",
                       client_options={"allow_http": True, "timeout": "60s"})


class FakeGcs(_Process):
    """fake-gcs-server (GCS's JSON and XML APIs) on 127.0.0.1, its objects on disk."""

    def __init__(self, workdir: Path) -> None:
        self.binary = built("gcs")
        self.workdir = workdir
        self.log = workdir / "fake-gcs.log"
        self.root = workdir / "objects"
        self.port = free_port()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hadoop_conf(self) -> dict[str, str]:
        return {"fs.gs.storage.root.url": self.endpoint, "fs.gs.auth.type": "UNAUTHENTICATED"}

    def start(self, timeout: float = 60.0) -> float:
        # -public-host: requests to this host and port are GCS's XML API (obstore reads through it)
        self._spawn([str(self.binary), "-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port),
                     "-public-host", f"127.0.0.1:{self.port}", "-backend", "filesystem",
                     "-filesystem-root", str(self.root), "-log-level", "warn"])
        return self._wait_ready(self._answers, timeout, "fake-gcs-server")

    def _answers(self) -> bool:
        import httpx

        try:
            return httpx.get(f"{self.endpoint}/storage/v1/b", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def bucket(self, name: str) -> None:
        import httpx

        r = httpx.post(f"{self.endpoint}/storage/v1/b", json={"name": name}, timeout=10)
        assert r.status_code in (200, 409), r.text

    def put(self, bucket: str, key: str, data: bytes) -> None:
        import httpx

        r = httpx.post(f"{self.endpoint}/upload/storage/v1/b/{bucket}/o", params={"uploadType": "media", "name": key},
                       content=data, timeout=30)
        assert r.status_code == 200, r.text


class Azurite(_Process):
    """Azurite's Blob service on 127.0.0.1 (the emulator account ``devstoreaccount1``), its data on disk."""

    ACCOUNT = "devstoreaccount1"

    def __init__(self, workdir: Path) -> None:
        self.binary = built("azure")
        self.workdir = workdir
        self.log = workdir / "azurite.log"
        self.data = workdir / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.port = free_port()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hadoop_conf(self) -> dict[str, str]:
        """WASB/ABFS properties: this account is the emulator (its URL: ``$AZURITE_BLOB_STORAGE_URL``)."""
        return {"fs.azure.storage.emulator.account.name": self.ACCOUNT}

    def start(self, timeout: float = 60.0) -> float:
        self._spawn([str(self.binary), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
                     "--location", str(self.data), "--silent", "--disableTelemetry", "--skipApiVersionCheck"],
                    cwd=self.workdir)
        return self._wait_ready(self._answers, timeout, "Azurite")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def container(self, name: str) -> object:
        """An obstore client of container ``name``, created (with Azure's own SDK) if missing."""
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import BlobServiceClient
        from obstore.store import AzureStore

        from sparkhist.source.azure import EMULATOR_KEY

        conn = (f"DefaultEndpointsProtocol=http;AccountName={self.ACCOUNT};AccountKey={EMULATOR_KEY};"
                f"BlobEndpoint={self.endpoint}/{self.ACCOUNT};")
        try:
            BlobServiceClient.from_connection_string(conn).create_container(name)
        except ResourceExistsError:
            pass
        return AzureStore(name, config={"account_name": self.ACCOUNT, "account_key": EMULATOR_KEY,
                                        "endpoint": f"{self.endpoint}/{self.ACCOUNT}"},
                          client_options={"allow_http": True, "timeout": "60s"})
