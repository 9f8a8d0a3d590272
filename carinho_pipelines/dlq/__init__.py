"""The dead-letter queue: failed runs are its items (:mod:`.items`: reading, tagging,
re-executing, archiving them); :mod:`.hooks` tags a run the moment it fails;
:mod:`.sensors` keeps the tags true and re-drives what a destination's outage failed;
:mod:`.recover` re-executes a time window. ``from carinho_pipelines import dlq`` gives
the items' API, without importing Dagster (the relay uses it)."""

from .items import *  # noqa: F401,F403 - the package's API is the items module's
from .items import DLQ_JOBS, OPEN, ReplayError  # noqa: F401 - named for readers and linters
