"""The Dagster code location: one ``Definitions`` assembled in one place."""

from dagster import Definitions

defs = Definitions()
