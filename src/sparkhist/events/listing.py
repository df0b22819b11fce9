"""The listing pass: the few events that make an application-list entry.

Mirrors the SHS's ``AppListingListener`` (SHS_REFERENCE §2.3): only lines starting
with one of four event prefixes are parsed at all; everything else is skipped as raw
bytes, which is what makes listing a large log cheap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from typing import Any

import msgspec
import orjson

log = logging.getLogger("sparkhist.events")

APP_START = b'{"Event":"SparkListenerApplicationStart"'
APP_END = b'{"Event":"SparkListenerApplicationEnd"'
LOG_START = b'{"Event":"SparkListenerLogStart"'
ENV_UPDATE = b'{"Event":"SparkListenerEnvironmentUpdate",'
LISTING_PREFIXES = (APP_START, APP_END, LOG_START, ENV_UPDATE)

_ACL_KEYS = {
    "spark.ui.view.acls": "view_acls",
    "spark.admin.acls": "admin_acls",
    "spark.ui.view.acls.groups": "view_acls_groups",
    "spark.admin.acls.groups": "admin_acls_groups",
}


@dataclass(slots=True)
class AttemptListing:
    """What the application list needs of one attempt, accumulated event by event.

    Defaults are Spark's: unset times are -1, ``appSparkVersion`` is ``""``.
    ``last_updated`` is filled by the scanner (file mtime when completed, scan time
    otherwise), because it is not in the events.
    """

    app_id: str | None = None
    app_name: str | None = None
    attempt_id: str | None = None
    start_time: int = -1
    end_time: int = -1
    duration: int = 0
    spark_user: str | None = None
    completed: bool = False
    spark_version: str = ""
    got_env: bool = False
    view_acls: str | None = None
    admin_acls: str | None = None
    view_acls_groups: str | None = None
    admin_acls_groups: str | None = None

    def to_dict(self) -> dict[str, Any]:
        # Not ``dataclasses.asdict``: its deep copy cost more than the listing parse.
        # Fields are only ever reassigned, never changed in place, so sharing is safe.
        return {name: getattr(self, name) for name in _LISTING_NAMES}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttemptListing:
        try:
            return cls(**data)  # the common case: written by this version
        except TypeError:
            return cls(**{k: v for k, v in data.items() if k in _LISTING_FIELDS})


_LISTING_NAMES = tuple(f.name for f in fields(AttemptListing))
_LISTING_FIELDS = frozenset(_LISTING_NAMES)


def apply_listing_line(listing: AttemptListing, line: bytes) -> bool:
    """Update ``listing`` from one line if it is a listing event; True if it was one.

    Raises ``orjson.JSONDecodeError`` for a matching line that is not valid JSON.
    """
    if not line.startswith(LISTING_PREFIXES):
        return False
    if line.startswith(ENV_UPDATE):
        _apply_environment(listing, line)  # parsed even when not the first: a malformed one is reported
        return True
    event = orjson.loads(line)
    kind = event.get("Event")
    if kind == "SparkListenerApplicationStart":
        listing.app_id = _str_or_none(event.get("App ID"))
        listing.app_name = event.get("App Name")
        listing.attempt_id = _str_or_none(event.get("App Attempt ID"))
        listing.start_time = int(event.get("Timestamp", -1))
        listing.spark_user = event.get("User")
    elif kind == "SparkListenerApplicationEnd":
        listing.end_time = int(event.get("Timestamp", -1))
        listing.duration = listing.end_time - listing.start_time
        listing.completed = True
    elif kind == "SparkListenerLogStart":
        listing.spark_version = event.get("Spark Version", "")
    return True


class _AclProperties(msgspec.Struct):
    view_acls: Any = msgspec.field(default=None, name="spark.ui.view.acls")
    admin_acls: Any = msgspec.field(default=None, name="spark.admin.acls")
    view_acls_groups: Any = msgspec.field(default=None, name="spark.ui.view.acls.groups")
    admin_acls_groups: Any = msgspec.field(default=None, name="spark.admin.acls.groups")


class _EnvironmentAcls(msgspec.Struct):
    properties: _AclProperties | None = msgspec.field(default=None, name="Spark Properties")


#: The environment event is the biggest listing line (every property, the class path);
#: a typed decode of the four ACL keys skips the rest ~4x faster than a full parse.
_decode_environment = msgspec.json.Decoder(_EnvironmentAcls).decode


def _apply_environment(listing: AttemptListing, line: bytes) -> None:
    try:
        props: Any = _decode_environment(line).properties or _AclProperties()
    except msgspec.DecodeError:
        # Not the usual shape (very old logs wrote pairs), or not JSON: the general path,
        # whose parse raises the error callers expect (JSONDecodeError) on a damaged line.
        event = orjson.loads(line)
        raw = event.get("Spark Properties") or {}
        props = dict(raw) if isinstance(raw, list) else raw
        props = _AclProperties(**{attr: props.get(key) for key, attr in _ACL_KEYS.items()})
    if listing.got_env:
        return  # the first environment update decides, as in the SHS
    for attr in _ACL_KEYS.values():
        value = getattr(props, attr)
        setattr(listing, attr, value if value else None)
    listing.got_env = True


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)
