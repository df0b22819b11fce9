"""The shared rendering layer: turns application state into what is shown.

It sits below both ``store`` and ``api`` and above ``state``: JSON encoding in the
SHS's conventions (:mod:`.encode`), the REST model's records built from the state's
accumulators (:mod:`.views`) and the application list's entries, rendered once when a
catalog row is written (:mod:`.listing`). The web UI of a later issue renders from it
too, so nothing is rendered twice and nothing above it computes a figure again.
"""
