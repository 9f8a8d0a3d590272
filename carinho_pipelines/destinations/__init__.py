"""The destinations the hub calls (Z-API and the internal systems): their circuit
breakers. No dagster import: the relay reads their state."""
