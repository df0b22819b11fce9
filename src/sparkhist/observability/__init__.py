"""Health, readiness, metrics and structured logs: how sparkhist reports on itself.

Everything here *reads* the runtime (at request or scrape time) instead of being
called from the data path, so the scanner, reader and store stay free of metrics
code; the few counters that must move at the event live on the objects that own
them (``Scanner.events_parsed``, ``StoreStates.evictions``...) as plain integers.
"""
