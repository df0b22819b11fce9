"""Trusted-proxy authentication on a real server: the peer address decides, never a forwarded one."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from support.acl_corpus import write_logs
from support.serving import sparkhist_serve

APP = "/api/v1/applications/local-1000000000001/jobs"


def _serve(tmp_path: Path, **env: str) -> object:
    logs = write_logs(tmp_path / "logs")
    full = {**os.environ, "SPARKHIST_AUTH": "header", "SPARKHIST_UI_ACLS_ENABLE": "true", "SPARKHIST_INDEX_WORKERS": "1",
            **env}
    return sparkhist_serve(tmp_path, ["--log-dir", str(logs), "--store", str(tmp_path / "store")], full)


def test_loopback_proxy_names_the_user_whatever_it_forwards(tmp_path: Path) -> None:
    with _serve(tmp_path) as url:  # type: ignore[attr-defined]
        # nginx adds X-Forwarded-For: the peer is still the (trusted) proxy on loopback.
        owner = httpx.get(url + APP, headers={"X-Forwarded-User": "shx_owner", "X-Forwarded-For": "192.0.2.9"})
        assert owner.status_code == 200
        assert httpx.get(url + APP, headers={"X-Forwarded-User": "shx_admin"}).status_code == 403
        assert httpx.get(url + APP).status_code == 401
        assert httpx.get(url + "/api/v1/applications").status_code == 401
        for open_path in ("/health", "/ready", "/metrics"):
            assert httpx.get(url + open_path).status_code == 200, open_path


def test_an_untrusted_peer_cannot_claim_to_be_the_proxy(tmp_path: Path) -> None:
    with _serve(tmp_path, SPARKHIST_AUTH_TRUSTED_PROXIES="10.0.0.0/8", SPARKHIST_AUTH_METRICS="true") as url:  # type: ignore[attr-defined]
        spoofed = httpx.get(url + APP, headers={"X-Forwarded-User": "shx_owner", "X-Forwarded-For": "10.1.2.3",
                                                "Forwarded": "for=10.1.2.3"})
        assert spoofed.status_code == 401
        assert "trusted proxy" in spoofed.text
        assert httpx.get(url + "/metrics").status_code == 401  # SPARKHIST_AUTH_METRICS=true
        assert httpx.get(url + "/health").status_code == 200
