"""Security headers on every answer (the SHS's HttpSecurityFilter family), and the warning for an open, exposed server."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from sparkhist.access.headers import security_headers
from sparkhist.access.settings import access_policy, exposure_warning
from sparkhist.config import load_settings
from sparkhist.server import build_runtime
from support.serving import sparkhist_serve


def test_pages_and_api_carry_the_headers(tmp_path: Path) -> None:
    runtime = build_runtime(load_settings({"store_dir": str(tmp_path / "store")}, environ={"SPARKHIST_INDEX_WORKERS": "1"}))
    try:
        assert runtime.loop.lock.try_acquire()
        runtime.scanner.scan_once()
        with TestClient(runtime.app) as client:
            for path in ("/", "/static/sparkhist.js", "/api/v1/applications", "/history/nope/jobs/", "/no/such"):
                answer = client.get(path)
                csp = answer.headers["content-security-policy"]
                assert "script-src 'self';" in csp and "style-src 'self';" in csp and "unsafe-inline" not in csp
                assert "frame-ancestors 'self'" in csp and "object-src 'none'" in csp
                assert answer.headers["x-frame-options"] == "SAMEORIGIN"
                assert answer.headers["x-content-type-options"] == "nosniff"
                assert "strict-transport-security" not in answer.headers  # over HTTPS only
            page = client.get("/").text
            # no inline script: every <script> loads a file of ours
            assert all('src="/static/' in tag for tag in re.findall(r"<script[^>]*>", page))
    finally:
        runtime.close()


def test_headers_follow_the_shs_settings() -> None:
    every, https = security_headers({"spark.ui.allowFramingFrom": "https://portal.example",
                                     "spark.ui.xXssProtection": "1; mode=block",
                                     "spark.ui.xContentTypeOptions.enabled": "false",
                                     "spark.ui.strictTransportSecurity": "max-age=31536000"})
    found = dict(every)
    assert found["X-Frame-Options"] == "ALLOW-FROM https://portal.example"
    assert "frame-ancestors 'self' https://portal.example;" in found["Content-Security-Policy"]
    assert found["X-XSS-Protection"] == "1; mode=block" and "X-Content-Type-Options" not in found
    assert https == (("Strict-Transport-Security", "max-age=31536000"),)
    every, _ = security_headers({"spark.ui.content.security.policy.enabled": "false"})
    assert "Content-Security-Policy" not in dict(every)


def test_exposure_warning(tmp_path: Path) -> None:
    def warning(host: str, **env: str) -> str | None:
        settings = load_settings({"host": host}, environ=env)
        return exposure_warning(settings, access_policy(settings))

    assert warning("127.0.0.1") is None and warning("::1") is None and warning("localhost") is None
    local_acls = warning("127.0.0.1", SPARKHIST_UI_ACLS_ENABLE="true")
    assert local_acls is not None and "every request is anonymous" in local_acls
    assert warning("0.0.0.0", SPARKHIST_AUTH="header") is None
    loud = warning("0.0.0.0")
    assert loud is not None and loud.startswith("UNAUTHENTICATED") and "every event log" in loud
    with_acls = warning("192.0.2.1", SPARKHIST_UI_ACLS_ENABLE="true")
    assert with_acls is not None and "admit anonymous requests" in with_acls


@pytest.mark.parametrize("env", [{}, {"SPARKHIST_AUTH": "header"}])
def test_serve_warns_when_exposed_without_authentication(tmp_path: Path, env: dict[str, str]) -> None:
    full = {**os.environ, "SPARKHIST_INDEX_WORKERS": "1", **env}
    with sparkhist_serve(tmp_path, ["--host", "0.0.0.0", "--store", str(tmp_path / "store")], full) as url:
        assert httpx.get(url + "/health").status_code == 200
    log = (tmp_path / "serve.log").read_text()
    assert ("WARNING" in log and "UNAUTHENTICATED: listening on 0.0.0.0" in log) == (not env)
    logging.getLogger(__name__).debug(log)
