"""Who may view an application: the SHS's decision, rule for rule.

The SHS builds one ``SecurityManager`` per attempt (``FsHistoryProvider.createSecurityManager``)
and asks it ``checkUIViewPermissions(user)``:

- ACLs on: ``spark.history.ui.acls.enable`` (the application's own ``spark.acls.enable``
  plays no part);
- admins: ``spark.history.ui.admin.acls`` plus the attempt's ``spark.admin.acls``, and the
  same for groups (``...admin.acls.groups``);
- viewers: the admins, the attempt's owner (``sparkUser``) and its ``spark.ui.view.acls``;
  viewer groups: the admin groups and its ``spark.ui.view.acls.groups``;
- ``SecurityManager.isUserInACL``: no user (no authentication) or ACLs off: yes; a ``*``
  among the users or the groups: yes; the user named: yes; else one of the user's groups
  (``spark.user.groups.mapping``) among the groups.

The attempt's ACLs are the first environment update's properties, recorded by the listing
(:class:`sparkhist.events.listing.AttemptListing`). ``spark.modify.acls(.groups)`` grant
nothing here: the SHS serves no action that modifies an application, and its security
manager never reads them from the application's environment.
"""

from __future__ import annotations

from dataclasses import dataclass

from sparkhist.access.groups import GroupMapping, NoGroups
from sparkhist.events.listing import AttemptListing

WILDCARD = "*"


def acl_list(value: str | None) -> frozenset[str]:
    """Spark's ``Utils.stringToSeq``: comma-separated, trimmed, empty items dropped."""
    if not value:
        return frozenset()
    return frozenset(item.strip() for item in value.split(",") if item.strip())


@dataclass(frozen=True)
class HistoryAcls:
    """The server's own ACL settings (``spark.history.ui.*``)."""

    enabled: bool = False
    admins: frozenset[str] = frozenset()
    admin_groups: frozenset[str] = frozenset()


@dataclass(frozen=True)
class AttemptAcls:
    """One attempt's ACLs, from its logged environment."""

    owner: str | None
    view: frozenset[str] = frozenset()
    admin: frozenset[str] = frozenset()
    view_groups: frozenset[str] = frozenset()
    admin_groups: frozenset[str] = frozenset()

    @classmethod
    def of(cls, listing: AttemptListing) -> AttemptAcls:
        return cls(owner=listing.spark_user, view=acl_list(listing.view_acls), admin=acl_list(listing.admin_acls),
                   view_groups=acl_list(listing.view_acls_groups), admin_groups=acl_list(listing.admin_acls_groups))


class Authorizer:
    """The SHS's per-attempt ``SecurityManager`` decisions."""

    def __init__(self, history: HistoryAcls, groups: GroupMapping | None = None) -> None:
        self.history = history
        self.groups = groups or NoGroups()

    @property
    def enabled(self) -> bool:
        return self.history.enabled

    def can_view(self, user: str | None, attempt: AttemptAcls) -> bool:
        """``checkUIViewPermissions``."""
        admins = self.history.admins | attempt.admin
        users = admins | attempt.view | ({attempt.owner} if attempt.owner is not None else set())
        groups = self.history.admin_groups | attempt.admin_groups | attempt.view_groups
        return self._in_acl(user, users, groups)

    def is_admin(self, user: str | None, attempt: AttemptAcls) -> bool:
        """``checkAdminPermissions``: may view, and may act as another user (``doAs``)."""
        return self._in_acl(user, self.history.admins | attempt.admin,
                            self.history.admin_groups | attempt.admin_groups)

    def _in_acl(self, user: str | None, users: frozenset[str] | set[str], groups: frozenset[str]) -> bool:
        if user is None or not self.history.enabled:
            return True
        if WILDCARD in users or user in users or WILDCARD in groups:
            return True
        if not groups:
            return False  # no lookup when no group could match (Spark looks up, and finds no match)
        return not groups.isdisjoint(self.groups.groups(user))
