"""Event fan-out: one Dagster job per catalogued event type, one op per action."""
