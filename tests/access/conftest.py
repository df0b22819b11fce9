"""The ACL tests' accounts: real users and groups, because both Spark and sparkhist ask ``id -Gn``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from support.acl_corpus import created_accounts


@pytest.fixture(scope="session")
def acl_accounts() -> Iterator[dict[str, frozenset[str]]]:
    """The ``shx_`` users and groups of :data:`support.acl_corpus.ACCOUNTS` (user -> its groups),
    created for the session and removed after it. Needs root (as here and in CI)."""
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("the ACL tests create their users and groups: they need root and useradd/groupadd")
    with created_accounts() as accounts:
        yield accounts
