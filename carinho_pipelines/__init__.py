"""Carinho Integrações: the integrations hub's Dagster code location.

The Dagster ``Definitions`` live in :mod:`carinho_pipelines.definitions` (imported by
``workspace.yaml``); this package root stays import-light so the relay can use the
catalogue and settings without importing dagster.
"""
