"""A real MIT Kerberos KDC for tests (Debian's ``krb5-kdc``), in a temporary directory.

``run_kdc`` writes a ``krb5.conf`` and a ``kdc.conf`` for a test realm, creates the
database (``kdb5_util create``), adds principals and keytabs (``kadmin.local``) and
starts ``krb5kdc -n`` on a free port; :attr:`Kdc.env` is the environment a client or a
server needs (``KRB5_CONFIG``, a private ticket cache). Stopped, for sure, on exit.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REALM = "SPARKHIST.TEST"


@dataclass
class Kdc:
    realm: str
    port: int
    workdir: Path
    env: dict[str, str]

    def kadmin(self, query: str) -> str:
        done = subprocess.run(["kadmin.local", "-r", self.realm, "-q", query], env=self.env, capture_output=True,
                              text=True, check=True)
        return done.stdout

    def add_principal(self, name: str, keytab: Path | None = None, password: str | None = None) -> str:
        """Adds ``name@REALM`` (random key, or ``password``); exports its keys to ``keytab`` when given."""
        self.kadmin(f"addprinc -pw {password} {name}" if password else f"addprinc -randkey {name}")
        if keytab is not None:
            self.kadmin(f"ktadd -k {keytab} {name}")
        return f"{name}@{self.realm}"

    def kinit(self, principal: str, keytab: Path, ccache: Path) -> dict[str, str]:
        """Logs ``principal`` in from ``keytab`` into ``ccache``; returns the environment that uses it."""
        env = {**self.env, "KRB5CCNAME": f"FILE:{ccache}"}
        subprocess.run(["kinit", "-kt", str(keytab), principal], env=env, check=True, capture_output=True)
        return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def available() -> str | None:
    """Why a KDC cannot run here (None: it can)."""
    missing = [tool for tool in ("krb5kdc", "kdb5_util", "kadmin.local", "kinit") if shutil.which(tool) is None
               and not Path("/usr/sbin", tool).exists()]
    return f"missing {', '.join(missing)} (apt-get install krb5-kdc krb5-admin-server krb5-user)" if missing else None


@contextlib.contextmanager
def run_kdc(realm: str = REALM) -> Iterator[Kdc]:
    workdir = Path(tempfile.mkdtemp(prefix="sparkhist-kdc-"))
    port = _free_port()
    (workdir / "krb5.conf").write_text(f"""[libdefaults]
 default_realm = {realm}
 dns_lookup_realm = false
 dns_lookup_kdc = false
 dns_canonicalize_hostname = false
 rdns = false
 udp_preference_limit = 1
 ticket_lifetime = 1h
[realms]
 {realm} = {{
  kdc = 127.0.0.1:{port}
  admin_server = 127.0.0.1:{port}
 }}
[domain_realm]
 127.0.0.1 = {realm}
 localhost = {realm}
""")
    (workdir / "kdc.conf").write_text(f"""[kdcdefaults]
 kdc_ports = {port}
 kdc_tcp_ports = {port}
[realms]
 {realm} = {{
  database_name = {workdir}/principal
  key_stash_file = {workdir}/stash
  acl_file = {workdir}/kadm5.acl
  max_life = 1h
  supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
 }}
[logging]
 kdc = FILE:{workdir}/kdc.log
""")
    (workdir / "kadm5.acl").write_text("")
    sbin = "/usr/sbin" if Path("/usr/sbin/krb5kdc").exists() else ""
    env = {**os.environ, "KRB5_CONFIG": str(workdir / "krb5.conf"), "KRB5_KDC_PROFILE": str(workdir / "kdc.conf"),
           "KRB5CCNAME": f"FILE:{workdir}/ccache", "KRB5RCACHEDIR": str(workdir),
           "PATH": os.environ.get("PATH", "") + (f":{sbin}" if sbin else "")}
    process: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(["kdb5_util", "create", "-s", "-P", "master-pw", "-r", realm], env=env, check=True,
                       capture_output=True)
        with (workdir / "krb5kdc.out").open("wb") as sink:
            process = subprocess.Popen(["krb5kdc", "-n", "-r", realm], env=env, stdout=sink, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"krb5kdc did not start: {(workdir / 'krb5kdc.out').read_text()}")
            time.sleep(0.1)
        yield Kdc(realm, port, workdir, env)
    finally:
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(workdir, ignore_errors=True)
