"""The Starlette relay: webhooks in, canonical events committed to the event store."""
