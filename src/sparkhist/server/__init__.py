"""One running sparkhist: the store, the scanner, the scan loop and the HTTP app, wired.

- :mod:`~sparkhist.server.runtime`: the wiring of a runtime, and its release
  (:func:`build_runtime` for tests and ``sparkhist scan``);
- :mod:`~sparkhist.server.startup`: ``serve``, the two-step start and the stop;
- :mod:`~sparkhist.server.opening`: the start's first step, the store opened and listed;
- :mod:`~sparkhist.server.first_answer`: what the HTTP app reads while the start is under way;
- :mod:`~sparkhist.server.pending`: the runtime being completed, for requests that need it;
- :mod:`~sparkhist.server.state_readers`: what reads application states, made once;
- :mod:`~sparkhist.server.list_publishing`: the stored application list, kept current.
"""

from sparkhist.server.runtime import Runtime, build_runtime
from sparkhist.server.startup import serve

__all__ = ["Runtime", "build_runtime", "serve"]
