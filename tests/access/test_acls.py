"""The SHS's view decision (SecurityManager.isUserInACL over FsHistoryProvider's ACL sets) and group lookups."""

from __future__ import annotations

import subprocess

import pytest

from sparkhist.access.acls import AttemptAcls, Authorizer, HistoryAcls, acl_list
from sparkhist.access.groups import SHELL_PROVIDER, NoGroups, ShellGroups, group_mapping
from sparkhist.errors import ConfigError
from sparkhist.events.listing import AttemptListing
from support.acl_corpus import GHOST


class Groups:
    def __init__(self, table: dict[str, set[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    def groups(self, user: str) -> frozenset[str]:
        self.asked.append(user)
        return frozenset(self.table.get(user, ()))


def acls(owner: str = "owner", **kw: str) -> AttemptAcls:
    return AttemptAcls.of(AttemptListing(spark_user=owner, **kw))  # type: ignore[arg-type]


ON = HistoryAcls(enabled=True, admins=frozenset({"hadmin"}), admin_groups=frozenset({"hadmins"}))


def test_acl_lists_are_split_trimmed_and_empty_items_dropped() -> None:
    assert acl_list(" a, b ,,c ") == {"a", "b", "c"}
    assert acl_list("") == acl_list(None) == acl_list(" , ") == frozenset()


def test_owner_view_admin_and_history_admins() -> None:
    auth = Authorizer(ON, Groups({}))
    app = acls(view_acls="viewer", admin_acls="appadmin")
    for user in ("owner", "viewer", "appadmin", "hadmin"):
        assert auth.can_view(user, app), user
    assert not auth.can_view("stranger", app)
    assert auth.is_admin("appadmin", app) and auth.is_admin("hadmin", app)
    assert not auth.is_admin("owner", app) and not auth.is_admin("viewer", app)


def test_groups_and_wildcards() -> None:
    groups = Groups({"ann": {"analysts"}, "hal": {"hadmins"}, "ada": {"appadmins"}})
    auth = Authorizer(ON, groups)
    app = acls(view_acls_groups="analysts", admin_acls_groups="appadmins")
    assert auth.can_view("ann", app) and auth.can_view("hal", app) and auth.can_view("ada", app)
    assert not auth.can_view("bob", app)
    assert auth.is_admin("ada", app) and not auth.is_admin("ann", app)
    assert auth.can_view("bob", acls(view_acls="*")) and auth.can_view("bob", acls(view_acls_groups="*"))
    assert auth.can_view("bob", acls(admin_acls="*")) and auth.is_admin("bob", acls(admin_acls="*"))
    # The owner and named users are decided without a group lookup.
    groups.asked.clear()
    assert auth.can_view("owner", app) and groups.asked == []


def test_no_user_or_acls_off_admits_everyone_as_the_shs() -> None:
    app = acls()
    assert Authorizer(ON, Groups({})).can_view(None, app)  # no authentication: user is null
    assert Authorizer(HistoryAcls(enabled=False), Groups({})).can_view("stranger", app)


def test_modify_acls_are_not_view_acls() -> None:
    # The listing does not even keep them: the SHS's security manager never reads them from an app.
    listing = AttemptListing(spark_user="owner")
    assert not hasattr(listing, "modify_acls")
    assert not Authorizer(ON, Groups({})).can_view("modifier", AttemptAcls.of(listing))


def test_shell_groups_run_id_with_the_name_as_an_argument_and_cache() -> None:
    # ``id`` is faked: no account is needed, whatever this host has.
    calls: list[list[str]] = []
    now = [0.0]

    def run(argv: list[str]) -> str:
        calls.append(argv)
        if argv[-1] == "shx_ghost":
            raise subprocess.CalledProcessError(1, argv)
        return "shx_member shx_viewgrp\n"

    groups = ShellGroups(run=run, clock=lambda: now[0], ttl=60, id_path="/usr/bin/id")
    assert groups.groups("shx_member") == {"shx_member", "shx_viewgrp"}
    assert groups.groups("-rf") == {"shx_member", "shx_viewgrp"}
    assert calls == [["/usr/bin/id", "-Gn", "--", "shx_member"], ["/usr/bin/id", "-Gn", "--", "-rf"]]
    assert groups.groups("shx_ghost") == frozenset()  # an unknown user is in no group (Spark logs and goes on)
    groups.groups("shx_member")
    assert len(calls) == 3  # kept
    now[0] = 61
    groups.groups("shx_member")
    assert len(calls) == 4  # looked up again after the TTL


def test_real_id_and_the_mapping_setting(acl_accounts: dict[str, frozenset[str]]) -> None:
    for user, groups in acl_accounts.items():
        assert ShellGroups().groups(user) == groups, user
    assert ShellGroups().groups(GHOST) == frozenset()
    assert isinstance(group_mapping(SHELL_PROVIDER), ShellGroups)
    assert isinstance(group_mapping(""), NoGroups)
    with pytest.raises(ConfigError, match="cannot be used"):
        group_mapping("com.example.LdapGroups")
