"""Across applications: every attempt's jobs, stages, executors, SQL executions and
properties as tables (:mod:`~sparkhist.analytics.tables`), kept as Parquet fragments in
the store (:mod:`~sparkhist.analytics.fragments`) and queried read-only with DuckDB
(:mod:`~sparkhist.analytics.query`).

Between ``scan`` (which writes an attempt's fragments right after its snapshot) and
``store`` (whose snapshots the rows come from, through ``render``'s views).
"""
