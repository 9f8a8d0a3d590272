"""The dead-letter queue: failed runs are its items (:mod:`.items`: reading, tagging,
re-executing, archiving them); :mod:`.sensors` keeps the tags true and re-drives what a
destination's outage failed. ``from carinho_pipelines import dlq`` gives the items' API."""

from .items import *  # noqa: F401,F403 - the package's API is the items module's
from .items import DLQ_JOBS, OPEN, ReplayError  # noqa: F401 - named for readers and linters
