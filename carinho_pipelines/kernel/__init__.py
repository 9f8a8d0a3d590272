"""The kernel: the facts everything else derives from (settings, the event catalogue,
the queue table, the run tags, the sync registry, the templates, business hours, the
error classes) and the personal-data masking. Pure Python: it imports neither Dagster,
the store, the domains nor the relay."""
