"""The ops CLI: ``carinho dlq|events|sync|status`` over the relay's operations API.

Every command is one HTTP call to the relay (httpx), so it runs from any terminal
with only the hub's URL and an API key — no ``DAGSTER_HOME``, no database access —
and answers exactly what the API answers: the same data, and on a 4xx/5xx the API's
``error`` and ``message`` with a non-zero exit. Tables for people, ``--json`` for
scripts (the API's body as is). The one exception is ``carinho dlq migrate-tags``, a
one-off maintenance step that rewrites run tags in Dagster's storage where the hub runs.

Options of every command: ``--hub-url`` (``CARINHO_HUB_URL``, default
http://127.0.0.1:8000), ``--api-key`` (``CARINHO_API_KEY``), ``--json``.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Callable

import click
import httpx

DEFAULT_HUB_URL = "http://127.0.0.1:8000"
#: the relay tags runs launched through the CLI ``cli:<key name>`` (relay.apikeys)
USER_AGENT = "carinho-cli/1"
TIMEOUT = httpx.Timeout(60.0, connect=5.0)


class Hub:
    """The relay at ``url``, called with an API key."""

    def __init__(self, url: str, api_key: str | None, as_json: bool) -> None:
        self.url, self.api_key, self.as_json = url.rstrip("/"), api_key, as_json

    def call(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
             auth: bool = True) -> tuple[int, Any]:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if auth:
            if not self.api_key:
                raise click.UsageError("no API key: set CARINHO_API_KEY or pass --api-key")
            headers["X-API-Key"] = self.api_key
        clean = {k: v for k, v in (params or {}).items() if v not in (None, False, "")}
        try:
            response = httpx.request(method, self.url + path, params=clean, json=body, headers=headers, timeout=TIMEOUT)
        except httpx.HTTPError as exc:
            raise click.ClickException(f"cannot reach the hub at {self.url}: {type(exc).__name__}: {exc}") from exc
        try:
            data = response.json()
        except ValueError:
            data = {"error": "not_json", "message": response.text[:500] or f"HTTP {response.status_code}"}
        return response.status_code, data

    def __call__(self, method: str, path: str, **kwargs: Any) -> Any:
        """The answer's body; an API error is printed as the API said it, exit 1."""
        status, data = self.call(method, path, **kwargs)
        if status >= 400:
            fail(self, status, data)
        return data

    def show(self, data: Any, human: Callable[[Any], None]) -> None:
        if self.as_json:
            click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        else:
            human(data)


class ApiFailed(click.ClickException):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.exit_code = 1


def fail(hub: Hub, status: int, data: Any) -> None:
    if hub.as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
    if isinstance(data, dict):
        extra = {k: v for k, v in data.items() if k not in ("error", "message")}
        detail = f" ({json.dumps(extra, ensure_ascii=False)})" if extra and not hub.as_json else ""
        raise ApiFailed(f"HTTP {status} {data.get('error', 'error')}: {data.get('message', '')}{detail}")
    raise ApiFailed(f"HTTP {status}: {data}")


def hub_command(group: click.Group | None, name: str, **kwargs: Any):
    """A subcommand of ``group`` (a top-level command when ``None``) with the connection
    options; the function gets a :class:`Hub`."""

    def decorate(fn: Callable[..., None]):
        @(group.command if group is not None else click.command)(name, **kwargs)
        @click.option("--hub-url", envvar="CARINHO_HUB_URL", default=DEFAULT_HUB_URL, show_default=True,
                      help="the relay (env CARINHO_HUB_URL)")
        @click.option("--api-key", envvar="CARINHO_API_KEY", default=None, help="an operations API key (env CARINHO_API_KEY)")
        @click.option("--json", "as_json", is_flag=True, help="print the API's JSON answer (for scripts)")
        @functools.wraps(fn)
        def wrapper(hub_url: str, api_key: str | None, as_json: bool, **params: Any) -> None:
            fn(Hub(hub_url, api_key, as_json), **params)

        return wrapper

    return decorate


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> None:
    """A plain text table: ``columns`` are (header, key) pairs."""
    cells = [[_cell(r.get(key)) for _h, key in columns] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (h, _k) in enumerate(columns)]
    click.echo("  ".join(h.upper().ljust(w) for (h, _k), w in zip(columns, widths)).rstrip())
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    return str(value)


def _pairs(data: dict[str, Any], keys: list[str]) -> None:
    width = max(len(k) for k in keys)
    for key in keys:
        if key in data:
            click.echo(f"{key.ljust(width)}  {_cell(data[key])}")


# -- dlq ------------------------------------------------------------------------------------


@click.group()
def dlq() -> None:
    """The dead-letter queue (failed runs) through the operations API."""


def _what(item: dict[str, Any]) -> str:
    return item.get("event_type") or f"sync {item.get('sync') or item.get('job')}"


@hub_command(dlq, "list")
@click.option("--type", "event_type", default=None, help="event type, e.g. lead.created")
@click.option("--source", default=None)
@click.option("--kind", type=click.Choice(["event", "sync"]), default=None)
@click.option("--error-class", type=click.Choice(["unavailable", "rejected", "invalid", "error"]), default=None)
@click.option("--include-archived", is_flag=True)
@click.option("--page", type=int, default=1, show_default=True)
@click.option("--per-page", type=int, default=50, show_default=True)
def dlq_list(hub: Hub, event_type, source, kind, error_class, include_archived, page, per_page) -> None:
    """Open items (GET /api/dlq), newest first."""
    data = hub("GET", "/api/dlq", params={"type": event_type, "source": source, "kind": kind,
                                           "error_class": error_class, "include_archived": include_archived and "true",
                                           "page": page, "per_page": per_page})

    def human(d: dict[str, Any]) -> None:
        rows = [{**i, "what": _what(i)} for i in d["data"]]
        table(rows, [("id", "id"), ("status", "status"), ("class", "error_class"), ("what", "what"),
                     ("event", "event_id"), ("failed ops", "failed_ops"), ("last failed", "last_failed_at")])
        meta = d.get("meta", {})
        click.echo(f"{len(rows)} of {meta.get('total', len(rows))} item(s)")

    hub.show(data, human)


@hub_command(dlq, "stats")
def dlq_stats(hub: Hub) -> None:
    """Totals, by type and by error class (GET /api/dlq/stats)."""
    hub.show(hub("GET", "/api/dlq/stats"), lambda d: _pairs(d, list(d)))


@hub_command(dlq, "show")
@click.argument("item_id")
def dlq_show(hub: Hub, item_id: str) -> None:
    """One item: the failure, the downstream responses, each action, the replays."""
    data = hub("GET", f"/api/dlq/{item_id}")

    def human(d: dict[str, Any]) -> None:
        _pairs({**d, "what": _what(d)}, ["id", "status", "what", "kind", "event_id", "source", "queue", "error_class",
                                         "error_message", "failed_ops", "attempts", "first_failed_at", "last_failed_at",
                                         "run_url"])
        if d.get("archived"):
            _pairs(d["archived"], ["by", "at", "reason"])
        for op, response in (d.get("responses") or {}).items():
            click.echo(f"\nresponse of {op}:")
            click.echo(json.dumps(response, indent=2, ensure_ascii=False))
        if d.get("actions"):
            click.echo("\nactions:")
            table(d["actions"], [("action", "action"), ("status", "status"), ("class", "error_class"),
                                 ("attempts", "attempts"), ("message", "error_message")])
        if d.get("replays"):
            click.echo("\nreplays:")
            table(d["replays"], [("run", "run_id"), ("status", "status")])

    hub.show(data, human)


def _retried(d: dict[str, Any]) -> None:
    verb = "already re-executed as" if d.get("already_replayed") else "re-executing as"
    click.echo(f"{d['id']}: {verb} {d['new_run_id']}  {d.get('run_url') or ''}".rstrip())


@hub_command(dlq, "retry")
@click.argument("item_id")
@click.option("--force", is_flag=True, help="retry even while the destination's circuit breaker is open")
def dlq_retry(hub: Hub, item_id: str, force: bool) -> None:
    """Re-execute an item from failure on integrations-retry."""
    hub.show(hub("POST", f"/api/dlq/{item_id}/retry", body={"force": True} if force else None), _retried)


@hub_command(dlq, "retry-all")
@click.option("--limit", type=int, required=True, help="at most this many items (1-100), oldest first")
@click.option("--type", "event_type", default=None)
@click.option("--source", default=None)
@click.option("--kind", type=click.Choice(["event", "sync"]), default=None)
@click.option("--error-class", type=click.Choice(["unavailable", "rejected", "invalid", "error"]), default=None)
@click.option("--force", is_flag=True, help="also items whose destination's circuit breaker is open")
def dlq_retry_all(hub: Hub, limit, event_type, source, kind, error_class, force) -> None:
    """Retry the open items matching the filters (POST /api/dlq/retry-all)."""
    body = {k: v for k, v in {"limit": limit, "event_type": event_type, "source": source, "kind": kind,
                              "error_class": error_class, "force": force or None}.items() if v is not None}

    def human(d: dict[str, Any]) -> None:
        for r in d["retried"] + d["already_replayed"]:
            _retried(r)
        for h in d.get("held_by_breaker", []):
            click.echo(f"{h['id']}: held, {h['message']}")
        click.echo(f"matched {d['matched']}; retried {len(d['retried'])}; already {len(d['already_replayed'])}; "
                   f"held by a breaker {len(d.get('held_by_breaker', []))}")

    hub.show(hub("POST", "/api/dlq/retry-all", body=body), human)


@hub_command(dlq, "recover")
@click.option("--from", "since", required=True, help="failed at or after (ISO-8601 date-time)")
@click.option("--to", "until", required=True, help="failed at or before (at most 31 days after --from)")
@click.option("--destination", default=None, help="only items that failed against it, e.g. financeiro")
@click.option("--type", "event_type", default=None)
@click.option("--error-class", type=click.Choice(["unavailable", "rejected", "invalid", "error"]), default=None)
@click.option("--dry-run", is_flag=True, help="only count (and show the oldest and newest item)")
def dlq_recover(hub: Hub, since, until, destination, event_type, error_class, dry_run) -> None:
    """Recover a time window (POST /api/dlq/recover): one run re-executes its items."""
    body = {k: v for k, v in {"from": since, "to": until, "destination": destination, "event_type": event_type,
                              "error_class": error_class, "dry_run": dry_run or None}.items() if v is not None}

    def human(d: dict[str, Any]) -> None:
        span = f"oldest {d['oldest']['id']} ({d['oldest']['created_at']}), newest {d['newest']['id']}" \
            if d.get("oldest") else "nothing matches"
        click.echo(f"{d['count']} item(s); {span}")
        if d.get("run_id"):
            click.echo(f"recovering as {d['run_id']}  {d.get('run_url') or ''}".rstrip())

    hub.show(hub("POST", "/api/dlq/recover", body=body), human)


@hub_command(dlq, "archive")
@click.argument("item_id")
@click.option("--reason", required=True, help="why this item needs no retry")
def dlq_archive(hub: Hub, item_id: str, reason: str) -> None:
    """Archive an item with a reason (nothing is deleted)."""
    hub.show(hub("POST", f"/api/dlq/{item_id}/archive", body={"reason": reason}),
             lambda d: click.echo(f"{d['id']}: {d['status']}"))


@dlq.command("migrate-tags")
def dlq_migrate_tags() -> None:
    """One-off, where the hub runs (reads $DAGSTER_HOME): make the tags of existing runs
    mean the DLQ — successful runs lose carinho/dlq and the error tags, failed event/sync
    runs without the tag get carinho/dlq=open, empty error tags are removed. Idempotent."""
    import os

    from dagster import DagsterInstance

    from . import dlq as service

    if not os.environ.get("DAGSTER_HOME"):
        raise click.ClickException("DAGSTER_HOME is not set: run this where the hub's Dagster instance is")
    with DagsterInstance.get() as instance:
        counts = service.migrate_tags(instance)
    click.echo(f"examined {counts['examined']} run(s): {counts['cleared']} successful run(s) cleared of DLQ tags, "
               f"{counts['opened']} failed run(s) put in the DLQ, {counts['emptied']} with empty tags fixed")


# -- events ---------------------------------------------------------------------------------


@click.group()
def events() -> None:
    """Stored events through the operations API."""


@hub_command(events, "list")
@click.option("--type", "event_type", default=None)
@click.option("--source", default=None)
@click.option("--status", default=None, help="received, filtered, scheduled, dispatched, running, succeeded, failed, archived")
@click.option("--from", "since", default=None, help="ISO-8601 date-time")
@click.option("--to", "until", default=None, help="ISO-8601 date-time")
@click.option("--phone", default=None, help="a person's events, by phone (exact, any format)")
@click.option("--email", default=None, help="a person's events, by e-mail")
@click.option("--cpf", default=None, help="a person's events, by CPF")
@click.option("--page", type=int, default=1, show_default=True)
@click.option("--per-page", type=int, default=50, show_default=True)
def events_list(hub: Hub, event_type, source, status, since, until, phone, email, cpf, page, per_page) -> None:
    """Events, newest first (GET /api/events)."""
    data = hub("GET", "/api/events", params={"type": event_type, "source": source, "status": status, "from": since,
                                              "to": until, "phone": phone, "email": email, "cpf": cpf,
                                              "page": page, "per_page": per_page})

    def human(d: dict[str, Any]) -> None:
        table(d["data"], [("id", "id"), ("type", "event_type"), ("source", "source"), ("queue", "queue"),
                          ("status", "status"), ("received", "received_at"), ("run", "run_id")])
        click.echo(f"{len(d['data'])} of {d.get('meta', {}).get('total', len(d['data']))} event(s)")

    hub.show(data, human)


@hub_command(events, "show")
@click.argument("event_id")
def events_show(hub: Hub, event_id: str) -> None:
    """One event: masked payload, runs, each action's outcome."""
    data = hub("GET", f"/api/events/{event_id}")

    def human(d: dict[str, Any]) -> None:
        _pairs(d, ["id", "event_type", "source", "queue", "status", "filtered_reason", "received_at", "available_at"])
        click.echo("\npayload (masked):")
        click.echo(json.dumps(d.get("payload"), indent=2, ensure_ascii=False))
        if d.get("runs"):
            click.echo("\nruns:")
            table(d["runs"], [("run", "run_id"), ("status", "status"), ("dlq", "dlq"), ("parent", "parent_run_id")])
        if d.get("actions"):
            click.echo("\nactions:")
            table(d["actions"], [("action", "action"), ("status", "status"), ("class", "error_class"),
                                 ("attempts", "attempts"), ("message", "error_message")])

    hub.show(data, human)


# -- sync -----------------------------------------------------------------------------------


@click.group()
def sync() -> None:
    """The scheduled syncs through the operations API."""


@hub_command(sync, "list")
@click.option("--sync", "name", default=None, help="one sync, e.g. operacao_financeiro")
@click.option("--limit", type=int, default=5, show_default=True, help="recent runs per sync")
def sync_list(hub: Hub, name, limit) -> None:
    """Each sync with its recent runs and their counts (GET /api/sync)."""
    data = hub("GET", "/api/sync", params={"sync": name, "limit": limit})

    def human(d: dict[str, Any]) -> None:
        for s in d["syncs"]:
            state = "running" if s["running"] else "idle"
            click.echo(f"{s['name']}  ({s['schedule']} {s['timezone']}; {state}; last success {s['last_success_at'] or '-'})")
            if s["runs"]:
                table(s["runs"], [("  run", "run_id"), ("status", "status"), ("partition", "partition"),
                                  ("trigger", "trigger"), ("launched by", "launched_by"), ("created", "created_at"),
                                  ("counts", "counts"), ("failed items", "failed_items")])
            click.echo("")

    hub.show(data, human)


@hub_command(sync, "run")
@click.argument("name")
@click.option("--date", default=None, help="the day (YYYY-MM-DD) of operacao_financeiro to run")
def sync_run(hub: Hub, name: str, date: str | None) -> None:
    """Start a sync now (POST /api/sync/{name}/run); 409 while it runs."""
    data = hub("POST", f"/api/sync/{name}/run", body={"date": date} if date else None)
    hub.show(data, lambda d: click.echo(f"{d['sync']}: {d['status']} as {d['run_id']}"
                                        + (f" (partition {d['partition']})" if d.get("partition") else "")
                                        + f"  {d.get('run_url') or ''}"))


# -- destinations ---------------------------------------------------------------------------


@click.group()
def destination() -> None:
    """Pause and resume a destination (a maintenance window), over the operations API."""


@hub_command(destination, "list")
def destination_list(hub: Hub) -> None:
    """Every destination with its breaker and pause (GET /api/destinations)."""
    def human(d: dict[str, Any]) -> None:
        table([{**x, "paused": (x["paused"] or {}).get("reason", ""), "until": (x["paused"] or {}).get("until", "")}
               for x in d["destinations"]],
              [("destination", "destination"), ("breaker", "breaker"), ("paused", "paused"), ("until", "until")])

    hub.show(hub("GET", "/api/destinations"), human)


@hub_command(destination, "pause")
@click.argument("name")
@click.option("--reason", required=True, help="why (shown in the UI, /status and the audit log)")
@click.option("--until", default=None, help="when the pause ends by itself (ISO-8601, at most 7 days ahead)")
def destination_pause(hub: Hub, name: str, reason: str, until: str | None) -> None:
    """Pause a destination: its actions wait, then go out once each when it is resumed."""
    data = hub("POST", f"/api/destinations/{name}/pause", body={"reason": reason, **({"until": until} if until else {})})
    hub.show(data, lambda d: click.echo(f"{d['destination']}: paused ({d['paused']['reason']})"
                                        + (f" until {d['paused']['until']}" if d["paused"].get("until") else "")))


@hub_command(destination, "resume")
@click.argument("name")
def destination_resume(hub: Hub, name: str) -> None:
    """Resume a destination: what waited for it is sent within a sensor tick."""
    data = hub("POST", f"/api/destinations/{name}/resume")
    hub.show(data, lambda d: click.echo(f"{d['destination']}: {'resumed' if d['resumed'] else 'was not paused'}"))


# -- privacy --------------------------------------------------------------------------------


@click.group()
def privacy() -> None:
    """A person's data (LGPD): erase it on request."""


@hub_command(privacy, "erase")
@click.option("--phone", default=None)
@click.option("--email", default=None)
@click.option("--cpf", default=None)
def privacy_erase(hub: Hub, phone: str | None, email: str | None, cpf: str | None) -> None:
    """Erase one person's data (POST /api/privacy/erase; scope privacy:erase)."""
    given = {k: v for k, v in {"phone": phone, "email": email, "cpf": cpf}.items() if v}
    if len(given) != 1:
        raise click.UsageError("give exactly one of --phone, --email or --cpf")
    hub.show(hub("POST", "/api/privacy/erase", body=given),
             lambda d: click.echo("erased: " + ", ".join(f"{k} {v}" for k, v in d["erased"].items())))


# -- status ---------------------------------------------------------------------------------


@hub_command(None, "status")
def status(hub: Hub) -> None:
    """The hub's health (GET /health/detailed) and the §7 metrics with their levels (GET /status)."""
    _code, health = hub.call("GET", "/health/detailed", auth=False)
    metrics = hub("GET", "/status")
    data = {"health": health, "status": metrics}

    def human(d: dict[str, Any]) -> None:
        h, m = d["health"], d["status"]
        degraded = ", ".join(h.get("degraded") or []) or "nothing"
        click.echo(f"health: {h.get('status')} (degraded: {degraded}); metrics: {m.get('status')}")
        click.echo("")
        table([{"metric": k, **v} for k, v in m["metrics"].items()],
              [("metric", "metric"), ("value", "value"), ("level", "level"), ("alert", "alert"),
               ("critical", "critical")])
        click.echo("")
        table([{"queue": k, "p95": (v.get("processing_seconds") or {}).get("p95"), **v} for k, v in m["queues"].items()],
              [("queue", "queue"), ("pending", "pending"), ("oldest s", "oldest_pending_seconds"),
               ("p95 s", "p95"), ("sla s", "sla_seconds"), ("level", "level")])
        click.echo("")
        click.echo("breakers: " + _cell(h.get("breakers")))
        click.echo(f"whatsapp: connected={(h.get('whatsapp') or {}).get('connected')}")
        for alert in m.get("alerts") or []:
            click.echo(f"alert: {alert['summary']} (level {alert['escalation_level']} since {alert['since']})")

    hub.show(data, human)


def register(main: click.Group) -> None:
    """Add the ops commands to the ``carinho`` command line."""
    for command in (dlq, events, sync, destination, privacy, status):
        main.add_command(command)
