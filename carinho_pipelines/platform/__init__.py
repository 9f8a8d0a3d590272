"""The Dagster platform code: the instance, the run launcher, the Celery app, the storage,
and the small GraphQL client. Import-light: the GraphQL client is plain httpx and the
relay uses it; the other modules import dagster."""
