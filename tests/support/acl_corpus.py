"""Event logs with several owners, view/admin ACLs and groups, and the matrix of (user, endpoint) pairs.

The logs are a real Spark 4.0.1 log (the conformance corpus) copied under other
application ids, with the ``User`` of its ApplicationStart and the ACL properties of its
first environment update rewritten: exactly what the SHS and sparkhist read for ACLs.

Users and groups are this host's accounts, as Spark's default group mapping
(``id -Gn``) sees them on Debian: ``postgres`` is in ``ssl-cert``; ``daemon``, ``bin``,
``sys``, ``mail``, ``www-data`` are each in their own group; ``ghost`` does not exist
(``id`` fails: no group). :func:`check_accounts` says when a host differs.

Also here: the servlet filter that makes the real SHS trust a header for the user
(compiled by :func:`compile_header_filter` against the SHS's own servlet API jar).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from support.conformance import SPARK401

SOURCE_LOG = "local-1795972896863"  # finished, single file, uncompressed
MULTI = "application_1000000000000_0001"

#: app id -> (attempt id or None, owner, ACL properties); a multi-attempt app has one entry per attempt.
APPS: tuple[tuple[str, str | None, str, dict[str, str]], ...] = (
    ("local-1000000000001", None, "daemon", {}),
    ("local-1000000000002", None, "bin", {"spark.ui.view.acls": "sys, mail "}),
    ("local-1000000000003", None, "bin", {"spark.ui.view.acls.groups": "ssl-cert"}),
    ("local-1000000000004", None, "bin", {"spark.admin.acls": "mail", "spark.admin.acls.groups": "daemon"}),
    ("local-1000000000005", None, "bin", {"spark.ui.view.acls": "*"}),
    ("local-1000000000006", None, "bin", {"spark.ui.view.acls.groups": "*"}),
    # modify ACLs give no view permission in the SHS
    ("local-1000000000007", None, "bin", {"spark.modify.acls": "sys", "spark.modify.acls.groups": "ssl-cert"}),
    ("local-1000000000008", None, "bin", {"spark.ui.view.acls": "", "spark.admin.acls": " ,"}),
    (MULTI, "1", "sys", {}),
    (MULTI, "2", "mail", {"spark.ui.view.acls": "postgres"}),
)

#: The server's own ACL settings, for both servers.
HISTORY_CONF = {
    "spark.history.ui.acls.enable": "true",
    "spark.history.ui.admin.acls": "root",
    "spark.history.ui.admin.acls.groups": "www-data",
}
USER_HEADER = "X-Test-User"
USERS = ("root", "www-data", "daemon", "bin", "sys", "mail", "postgres", "nobody", "ghost")
EXPECTED_GROUPS = {"postgres": {"postgres", "ssl-cert"}, "daemon": {"daemon"}, "bin": {"bin"}, "sys": {"sys"},
                   "mail": {"mail"}, "www-data": {"www-data"}, "nobody": {"nogroup"}, "root": {"root"}}


def check_accounts() -> None:
    """Fail clearly when this host's accounts are not the ones the expectations assume."""
    for user, groups in EXPECTED_GROUPS.items():
        found = set(subprocess.run(["id", "-Gn", user], capture_output=True, text=True).stdout.split())
        assert found == groups, f"host account {user} is in {found}, the ACL corpus assumes {groups}"
    assert subprocess.run(["id", "-Gn", "ghost"], capture_output=True).returncode != 0


def write_logs(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    source = (SPARK401 / "eventlogs" / SOURCE_LOG).read_bytes().splitlines()
    for app_id, attempt, owner, props in APPS:
        lines = []
        for raw in source:
            if raw.startswith(b'{"Event":"SparkListenerApplicationStart"'):
                event = json.loads(raw)
                event["App ID"], event["User"] = app_id, owner
                if attempt is not None:
                    event["App Attempt ID"] = attempt
                    event["Timestamp"] += int(attempt) * 1000  # attempts start one after the other
                raw = json.dumps(event, separators=(",", ":")).encode()
            elif raw.startswith(b'{"Event":"SparkListenerEnvironmentUpdate"'):
                event = json.loads(raw)
                event["Spark Properties"].update({"spark.app.id": app_id, **props})
                raw = json.dumps(event, separators=(",", ":")).encode()
            lines.append(raw)
        name = app_id if attempt is None else f"{app_id}_{attempt}"
        (out / name).write_bytes(b"\n".join(lines) + b"\n")
    return out


_APP_ENDPOINTS = (
    "/api/v1/applications/{app}", "/api/v1/applications/{app}/jobs", "/api/v1/applications/{app}/jobs/0",
    "/api/v1/applications/{app}/jobs/999", "/api/v1/applications/{app}/stages",
    "/api/v1/applications/{app}/stages/0/0/taskList", "/api/v1/applications/{app}/executors",
    "/api/v1/applications/{app}/environment", "/api/v1/applications/{app}/sql",
    "/api/v1/applications/{app}/storage/rdd", "/api/v1/applications/{app}/logs",
    "/history/{app}/jobs/", "/history/{app}/environment/", "/history/{app}/stages/stage/?id=0&attempt=0",
)
_MULTI_ENDPOINTS = (
    "/api/v1/applications/{app}", "/api/v1/applications/{app}/1", "/api/v1/applications/{app}/1/jobs",
    "/api/v1/applications/{app}/2/jobs", "/api/v1/applications/{app}/2/environment",
    "/api/v1/applications/{app}/jobs", "/api/v1/applications/{app}/logs", "/api/v1/applications/{app}/1/logs",
    "/api/v1/applications/{app}/2/logs", "/history/{app}/1/jobs/", "/history/{app}/2/jobs/",
)
_GLOBAL = ("/api/v1/applications", "/api/v1/version", "/", "/api/v1/applications/nope/jobs")


def endpoints() -> list[str]:
    single = sorted({a for a, attempt, _, _ in APPS if attempt is None})
    out = [e.format(app=app) for app in single for e in _APP_ENDPOINTS]
    out += [e.format(app=MULTI) for e in _MULTI_ENDPOINTS]
    return [*out, *_GLOBAL]


#: (user, path) pairs with doAs: an admin acting for another user, a user for themselves,
#: and a non-admin trying to act for the owner (on the API the SHS lets anyone: see DIVERGENT).
DO_AS = (
    ("root", "/api/v1/applications/local-1000000000001/jobs?doAs=mail"),
    ("root", "/history/local-1000000000001/jobs/?doAs=mail"),
    ("www-data", "/api/v1/applications/local-1000000000002/jobs?doAs=sys"),
    ("daemon", "/api/v1/applications/local-1000000000001/jobs?doAs=daemon"),
    ("mail", "/history/local-1000000000001/jobs/?doAs=daemon"),
    ("mail", "/api/v1/applications/local-1000000000001/jobs?doAs=daemon"),
    ("mail", "/api/v1/applications/local-1000000000004/jobs?doAs=nobody"),
)
#: Pairs where sparkhist answers otherwise on purpose: the SHS's API handler has ACLs off,
#: so its HttpSecurityFilter lets any user impersonate any other with ?doAs= on /api/v1.
DIVERGENT = {("mail", "/api/v1/applications/local-1000000000001/jobs?doAs=daemon"): (200, 403)}

HEADER_FILTER_JAVA = """
import jakarta.servlet.*;
import jakarta.servlet.http.*;
import java.io.IOException;
import java.security.Principal;

/** Trusts the X-Test-User header for the remote user (tests only). */
public class HeaderUserFilter implements Filter {
  @Override public void init(FilterConfig config) {}
  @Override public void destroy() {}
  @Override public void doFilter(ServletRequest req, ServletResponse res, FilterChain chain)
      throws IOException, ServletException {
    HttpServletRequest http = (HttpServletRequest) req;
    final String user = http.getHeader("X-Test-User");
    chain.doFilter(new HttpServletRequestWrapper(http) {
      @Override public String getRemoteUser() { return user; }
      @Override public Principal getUserPrincipal() { return user == null ? null : () -> user; }
    }, res);
  }
}
"""


def compile_header_filter(out: Path, home: Path) -> Path:
    """``HeaderUserFilter.class`` compiled with javac against ``home``'s jars; returns the class directory."""
    out.mkdir(parents=True, exist_ok=True)
    source = out / "HeaderUserFilter.java"
    source.write_text(HEADER_FILTER_JAVA)
    subprocess.run(["javac", "-cp", f"{home / 'jars'}/*", "-d", str(out), str(source)], check=True,
                   capture_output=True)
    return out
