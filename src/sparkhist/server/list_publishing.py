"""The stored application list kept current for the next start (a writer's job).

While serving, :mod:`sparkhist.store.list_file` is written again at most every
``LIST_WRITE_INTERVAL`` seconds (only when the listing changed: the publisher decides),
and once more at a clean stop. The file is a cache: failing to write it is logged,
never a reason to stop serving.
"""

from __future__ import annotations

import logging
import threading

from sparkhist.server.opening import OpenedStore

log = logging.getLogger("sparkhist.server")

#: Least time between two writes of the stored application list while the listing changes.
LIST_WRITE_INTERVAL = 5.0


class ListPublishing:
    """Writes the opened store's list file every ``LIST_WRITE_INTERVAL`` seconds once started."""

    def __init__(self, opened: OpenedStore) -> None:
        from sparkhist.api.v1.applications import unfiltered_body
        from sparkhist.store.list_file import ListPublisher

        self._publisher = ListPublisher(opened.settings.store_dir, opened.catalog, opened.index, unfiltered_body,
                                        written=opened.stored)
        self._stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._every_interval, name="sparkhist-list-file", daemon=True).start()

    def stop(self) -> None:
        """No more periodic writes (one under way finishes on its own)."""
        self._stop.set()

    def publish(self) -> None:
        """Write the file now, if the listing changed since it was last written."""
        try:
            self._publisher.publish()
        except Exception:  # the file is a cache: never stop serving for it
            log.exception("could not write the application list file")

    def _every_interval(self) -> None:
        while not self._stop.wait(LIST_WRITE_INTERVAL):
            self.publish()
