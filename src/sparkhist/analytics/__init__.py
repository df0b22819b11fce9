"""Across applications: every attempt's jobs, stages, executors, SQL executions and
properties as tables (:mod:`~sparkhist.analytics.tables`), made at index time and written
several attempts per pending file (:mod:`~sparkhist.analytics.pending`, buffered by
:mod:`~sparkhist.analytics.batch`), folded into one Parquet file per table
in the store (:mod:`~sparkhist.analytics.compaction`, kept by
:mod:`~sparkhist.analytics.repair`) and queried read-only with DuckDB
(:mod:`~sparkhist.analytics.query`).

Between ``scan`` (which writes an attempt's rows right after its snapshot) and
``store`` (whose snapshots the rows come from, read as ``render``'s views show them).
"""
