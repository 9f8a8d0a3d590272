"""What the hub knows about one person (LGPD art. 18): their events found through the
keyed hashes stored at ingest, and their erasure on request. No dagster import: the
relay serves both."""
