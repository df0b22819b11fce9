"""Event logs with several owners, view/admin ACLs and groups, and the matrix of (user, endpoint) pairs.

The logs are a real Spark 4.0.1 log (the conformance corpus) copied under other
application ids, with the ``User`` of its ApplicationStart and the ACL properties of its
first environment update rewritten: exactly what the SHS and sparkhist read for ACLs.

Users and groups are real accounts, because Spark's default group mapping (and
sparkhist's) asks ``id -Gn``: :func:`created_accounts` creates the ``shx_`` users and groups
of :data:`ACCOUNTS` for a test session (as root: ``groupadd``/``useradd``) and removes
them after it, so the tests never depend on what a machine image happens to hold.
:data:`GHOST` is never created (``id`` fails: no group).

Also here: the servlet filter that makes the real SHS trust a header for the user
(compiled by :func:`compile_header_filter` against the SHS's own servlet API jar).
"""

from __future__ import annotations

import fcntl
import grp
import json
import pwd
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support.conformance import SPARK401

SOURCE_LOG = "local-1795972896863"  # finished, single file, uncompressed
MULTI = "application_1000000000000_0001"

#: The test accounts: user -> the groups ``id -Gn`` must show for it (each has a primary
#: group of its own name; the others are supplementary). The prefix keeps them apart
#: from anything a host has.
ACCOUNTS: dict[str, frozenset[str]] = {
    "shx_hadmin": frozenset({"shx_hadmin"}),  # a history admin by name
    "shx_operator": frozenset({"shx_operator", "shx_hadmingrp"}),  # a history admin by group
    "shx_owner": frozenset({"shx_owner", "shx_admingrp"}),  # owns ...0001; an admin of ...0004 by group
    "shx_submitter": frozenset({"shx_submitter"}),  # owns ...0002 to ...0008
    "shx_viewer": frozenset({"shx_viewer"}),  # named in view/modify ACLs; owns attempt 1 of MULTI
    "shx_admin": frozenset({"shx_admin"}),  # named in view/admin ACLs; owns attempt 2 of MULTI
    "shx_member": frozenset({"shx_member", "shx_viewgrp"}),  # in the view group; in attempt 2's view ACL
    "shx_nobody": frozenset({"shx_nobody"}),  # exists, and no ACL names it or its group
}
#: A user that does not exist at all.
GHOST = "shx_ghost"
USERS = (*ACCOUNTS, GHOST)

#: app id -> (attempt id or None, owner, ACL properties); a multi-attempt app has one entry per attempt.
APPS: tuple[tuple[str, str | None, str, dict[str, str]], ...] = (
    ("local-1000000000001", None, "shx_owner", {}),
    ("local-1000000000002", None, "shx_submitter", {"spark.ui.view.acls": "shx_viewer, shx_admin "}),
    ("local-1000000000003", None, "shx_submitter", {"spark.ui.view.acls.groups": "shx_viewgrp"}),
    ("local-1000000000004", None, "shx_submitter",
     {"spark.admin.acls": "shx_admin", "spark.admin.acls.groups": "shx_admingrp"}),
    ("local-1000000000005", None, "shx_submitter", {"spark.ui.view.acls": "*"}),
    ("local-1000000000006", None, "shx_submitter", {"spark.ui.view.acls.groups": "*"}),
    # modify ACLs give no view permission in the SHS
    ("local-1000000000007", None, "shx_submitter",
     {"spark.modify.acls": "shx_viewer", "spark.modify.acls.groups": "shx_viewgrp"}),
    ("local-1000000000008", None, "shx_submitter", {"spark.ui.view.acls": "", "spark.admin.acls": " ,"}),
    (MULTI, "1", "shx_viewer", {}),
    (MULTI, "2", "shx_admin", {"spark.ui.view.acls": "shx_member"}),
)

#: The server's own ACL settings, for both servers.
HISTORY_CONF = {
    "spark.history.ui.acls.enable": "true",
    "spark.history.ui.admin.acls": "shx_hadmin",
    "spark.history.ui.admin.acls.groups": "shx_hadmingrp",
}
USER_HEADER = "X-Test-User"

#: Held shared by every session using the accounts, so that one session's teardown never
#: removes them under another's feet (the last one out removes them).
_LOCK_DIR = Path("/run/lock") if Path("/run/lock").is_dir() else Path(tempfile.gettempdir())
_SESSIONS = _LOCK_DIR / "sparkhist-test-accounts.sessions"
_CHANGES = _LOCK_DIR / "sparkhist-test-accounts.changes"


def _run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()}"


def _exists(db: str, name: str) -> bool:
    try:
        (pwd.getpwnam if db == "passwd" else grp.getgrnam)(name)
    except KeyError:
        return False
    return True


def _groups() -> set[str]:
    return set().union(*ACCOUNTS.values())


def _create_accounts() -> None:
    """Creates what is missing and sets each user's groups (so accounts left by a killed run are reused)."""
    for group in sorted(_groups()):
        if not _exists("group", group):
            _run("groupadd", group)
    for user, groups in ACCOUNTS.items():
        extra = ",".join(sorted(groups - {user}))
        if _exists("passwd", user):
            _run("usermod", "--shell", "/usr/sbin/nologin", "--gid", user, "--groups", extra, user)
        else:
            _run("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "--gid", user, "--groups", extra,
                 user)
    if _exists("passwd", GHOST):
        _run("userdel", GHOST)
    check_accounts()


def _remove_accounts() -> None:
    for user in [*ACCOUNTS, GHOST]:
        if _exists("passwd", user):
            _run("userdel", user)  # also drops its own group where USERGROUPS_ENAB is set
    for group in sorted(_groups()):
        if _exists("group", group):
            _run("groupdel", group)


@contextmanager
def created_accounts() -> Iterator[dict[str, frozenset[str]]]:
    """The users and groups of :data:`ACCOUNTS`, for as long as the block runs (needs root)."""
    with _CHANGES.open("a") as changes, _SESSIONS.open("a") as sessions:
        fcntl.flock(changes, fcntl.LOCK_EX)
        try:
            _create_accounts()
            fcntl.flock(sessions, fcntl.LOCK_SH)
        finally:
            fcntl.flock(changes, fcntl.LOCK_UN)
        try:
            yield ACCOUNTS
        finally:
            fcntl.flock(changes, fcntl.LOCK_EX)
            try:
                try:
                    fcntl.flock(sessions, fcntl.LOCK_EX | fcntl.LOCK_NB)  # no other session holds them
                except BlockingIOError:
                    pass
                else:
                    _remove_accounts()
            finally:
                fcntl.flock(sessions, fcntl.LOCK_UN)
                fcntl.flock(changes, fcntl.LOCK_UN)


def check_accounts() -> None:
    """Fails clearly when the accounts are not what the expectations assume."""
    for user, groups in ACCOUNTS.items():
        found = set(subprocess.run(["id", "-Gn", "--", user], capture_output=True, text=True).stdout.split())
        assert found == groups, f"test account {user} is in {found}, the ACL corpus assumes {set(groups)}"
    assert subprocess.run(["id", "-Gn", "--", GHOST], capture_output=True).returncode != 0, f"{GHOST} exists"


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
    ("shx_hadmin", "/api/v1/applications/local-1000000000001/jobs?doAs=shx_admin"),
    ("shx_hadmin", "/history/local-1000000000001/jobs/?doAs=shx_admin"),
    ("shx_operator", "/api/v1/applications/local-1000000000002/jobs?doAs=shx_viewer"),
    ("shx_owner", "/api/v1/applications/local-1000000000001/jobs?doAs=shx_owner"),
    ("shx_admin", "/history/local-1000000000001/jobs/?doAs=shx_owner"),
    ("shx_admin", "/api/v1/applications/local-1000000000001/jobs?doAs=shx_owner"),
    ("shx_admin", "/api/v1/applications/local-1000000000004/jobs?doAs=shx_nobody"),
)
#: Pairs where sparkhist answers otherwise on purpose: the SHS's API handler has ACLs off,
#: so its HttpSecurityFilter lets any user impersonate any other with ?doAs= on /api/v1.
DIVERGENT = {("shx_admin", "/api/v1/applications/local-1000000000001/jobs?doAs=shx_owner"): (200, 403)}

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
