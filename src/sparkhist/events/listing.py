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
    exit_code: int | None = None  # the application-end event's ``ExitCode`` (an Option[Int])
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

    Raises ``orjson.JSONDecodeError`` for a matching line that is not valid JSON. Valid
    JSON of the wrong shape (a field ``JsonProtocol`` would reject: a timestamp that is
    no number, a name or an ACL that is no string) is skipped with a warning, changing
    nothing, as the caller skips a line that is not JSON.
    """
    if not line.startswith(LISTING_PREFIXES):
        return False
    try:
        if line.startswith(ENV_UPDATE):
            _apply_environment(listing, line)  # parsed even when not the first: a malformed one is reported
        else:
            _apply_event(listing, orjson.loads(line))
    except _Malformed as exc:
        log.warning("malformed %s skipped: %s", line[10 : line.find(b'"', 10)].decode(errors="replace"), exc)
    return True


class _Malformed(Exception):
    """A listing event of the wrong shape (never leaves this module)."""


def _apply_event(listing: AttemptListing, event: dict[str, Any]) -> None:
    """Every field is checked before any is set: a malformed event changes nothing."""
    kind = event.get("Event")
    if kind == "SparkListenerApplicationStart":
        app_id = _str_or_none(event.get("App ID"))
        app_name = _text(event, "App Name")
        attempt_id = _str_or_none(event.get("App Attempt ID"))
        start_time = _long(event, "Timestamp")
        user = _text(event, "User")
        listing.app_id, listing.app_name, listing.attempt_id = app_id, app_name, attempt_id
        listing.start_time, listing.spark_user = start_time, user
    elif kind == "SparkListenerApplicationEnd":
        end_time = _long(event, "Timestamp")
        exit_code = _int_or_none(event, "ExitCode")  # AppListingListener: exitCode = event.exitCode
        listing.end_time, listing.exit_code = end_time, exit_code
        listing.duration = _wrap(listing.end_time - listing.start_time)
        listing.completed = True
    elif kind == "SparkListenerLogStart":
        listing.spark_version = _text(event, "Spark Version") or ""


def _long(event: dict[str, Any], key: str) -> int:
    """``JsonNode.extractLong``: a number, as a Java long (-1 when absent, as before)."""
    value = event.get(key, -1)
    if type(value) is int:
        return _wrap(value)  # the low 64 bits, as longValue() of a bigger integer
    if type(value) is float:
        return max(_LONG_MIN, min(_LONG_MAX, int(value)))  # a Java (long) cast saturates
    raise _Malformed(f"{key} is {type(value).__name__}, not a number")


def _int_or_none(event: dict[str, Any], key: str) -> int | None:
    """``jsonOption(...).map(_.extractInt)``: absent or null is None, a number a Java int."""
    value = event.get(key)
    if value is None:
        return None
    if type(value) is int:
        return (value + (1 << 31)) % (1 << 32) - (1 << 31)  # intValue(): the low 32 bits
    if type(value) is float:
        return max(-(1 << 31), min((1 << 31) - 1, int(value)))  # a Java (int) cast saturates
    raise _Malformed(f"{key} is {type(value).__name__}, not a number")


def _text(event: dict[str, Any], key: str) -> str | None:
    """``JsonNode.extractString``: a string or null."""
    value = event.get(key)
    if value is None or type(value) is str:
        return value
    raise _Malformed(f"{key} is {type(value).__name__}, not a string")


_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1


def _wrap(value: int) -> int:
    """Java's long arithmetic: ``value`` modulo 2**64, signed."""
    return value if _LONG_MIN <= value <= _LONG_MAX else (value - _LONG_MIN) % (1 << 64) + _LONG_MIN


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
    except (msgspec.DecodeError, RecursionError):
        # Not the usual shape (very old logs wrote pairs), or not JSON, or nested deeper than
        # msgspec goes: the general path, whose parse raises the error callers expect
        # (JSONDecodeError) on a damaged line.
        event = orjson.loads(line)
        raw = event.get("Spark Properties") or {}
        if isinstance(raw, list) and all(isinstance(p, list) and len(p) == 2 and type(p[0]) is str for p in raw):
            raw = dict(raw)
        if not isinstance(raw, dict):
            raise _Malformed("Spark Properties is neither an object nor a list of pairs") from None
        props = _AclProperties(**{attr: raw.get(key) for key, attr in _ACL_KEYS.items()})
    values = {attr: getattr(props, attr) for attr in _ACL_KEYS.values()}
    for key, attr in _ACL_KEYS.items():
        if values[attr] is not None and type(values[attr]) is not str:
            raise _Malformed(f"{key} is {type(values[attr]).__name__}, not a string")
    if listing.got_env:
        return  # the first environment update decides, as in the SHS
    for attr, value in values.items():
        setattr(listing, attr, value if value else None)
    listing.got_env = True


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)
