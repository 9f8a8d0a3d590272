"""What the pooled PostgreSQL and cached SQLite storages share, in a module of its own
so that the embedded default (SQLite) never imports dagster-postgres and its driver
(a few MB of resident memory per Dagster process, measured)."""

from __future__ import annotations

import functools


def remember_yes(method):
    """Cache a schema check once it answers True (per storage object and arguments): a
    schema only gains columns through ``dagster instance migrate``, after which
    processes restart."""

    @functools.wraps(method)
    def wrapper(self, *args):
        cache = self.__dict__.setdefault("_carinho_schema_yes", set())
        key = (method.__name__, args)
        if key in cache:
            return True
        answer = method(self, *args)
        if answer:
            cache.add(key)
        return answer

    return wrapper
