"""The analytics tables asked as a test asks them: one query's first row from a store."""

from __future__ import annotations

from pathlib import Path

from sparkhist.analytics.query import Engine


def first_row(store: str | Path, query: str) -> tuple[object, ...]:
    """The first row ``query`` answers over ``store``'s tables (a damaged table fails the test)."""
    engine = Engine(str(store))
    try:
        result = engine.run(query)
        assert not result.damaged
        return tuple(result.rows[0])
    finally:
        engine.close()
