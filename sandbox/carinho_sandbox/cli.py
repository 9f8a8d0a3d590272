"""``carinho sandbox …``: serve the simulators, inject faults, inspect calls, play a day.

Registered in the main CLI with ``main.add_command(sandbox)``. Every command except
``serve`` talks to a running sandbox through its control server (``--control-url``).
"""

from __future__ import annotations

import json
import signal
import threading
from typing import Any

import click
import httpx

from carinho_pipelines.kernel.privacy import mask_payload
from carinho_sandbox.control import DEFAULT_CONTROL_URL, ControlClient, ControlError
from carinho_sandbox.server import ALL_SYSTEMS, DEFAULT_BASE_PORT, Sandbox

control_option = click.option(
    "--control-url", envvar="CARINHO_SANDBOX_CONTROL_URL", default=DEFAULT_CONTROL_URL, show_default=True,
    help="the sandbox's control server",
)
system_argument = click.argument("system", type=click.Choice(ALL_SYSTEMS))
REDACTED_HEADERS = frozenset({"authorization", "x-internal-token", "x-api-key", "client-token", "z-api-token"})


def _control(url: str) -> ControlClient:
    return ControlClient(url)


def _fail(exc: ControlError) -> None:
    raise click.ClickException(str(exc))


@click.group(invoke_without_command=True)
@click.pass_context
def sandbox(ctx: click.Context) -> None:
    """Simulators of Z-API and the internal systems (serves them when no subcommand is given)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(serve)


@sandbox.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--base-port", default=DEFAULT_BASE_PORT, show_default=True, type=int,
              help="Z-API on this port, then CRM +1 … Documentos +8, control +9 (0 = free ports)")
@click.option("--seed/--no-seed", default=True, show_default=True, help="start with the default day of data")
@click.option("--webhook-url", default=None, help="the hub's /webhooks/whatsapp (Z-API callbacks go there)")
@click.option("--auto-callbacks", default=2.0, show_default=True, type=float,
              help="seconds between a send and its delivery/status callbacks (negative = off)")
def serve(host: str = "127.0.0.1", base_port: int = DEFAULT_BASE_PORT, seed: bool = True,
          webhook_url: str | None = None, auto_callbacks: float = 2.0) -> None:
    """Serve every simulator until Ctrl-C; prints the environment to point a hub at them."""
    sb = Sandbox(host=host, base_port=base_port, auto_callbacks=auto_callbacks if auto_callbacks >= 0 else None)
    try:
        sb.start()
    except OSError as exc:
        raise click.ClickException(str(exc)) from exc
    if seed:
        counts = sb.seed_default()
        seeded = ", ".join(f"{s}: " + "/".join(f"{n} {c}" for c, n in cols.items()) for s, cols in counts.items())
        click.echo(f"# seeded {seeded}")
    env = sb.env(webhook_url=webhook_url)
    click.echo("# Carinho sandbox is up. Point a hub at it with:")
    for key, value in env.items():
        click.echo(f"export {key}={value}")
    click.echo(f"# control server: {sb.control_url}   (carinho sandbox --help)")
    for name in sb.systems:
        click.echo(f"#   {name:12} {sb.url(name)}")
    if webhook_url:
        click.echo("# Z-API callbacks → the hub's /webhooks/whatsapp (status → …/status)")
    click.echo("# Ctrl-C stops.")
    stopping = threading.Event()
    # SIGINT too: a background job of a non-interactive shell inherits SIGINT ignored
    previous = {sig: signal.signal(sig, lambda *_: stopping.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sb.stop()
        click.echo("# sandbox stopped")


@sandbox.command()
@system_argument
@click.option("--status", type=int, help="answer the next calls with this status (500, 503, 429, 4xx…)")
@click.option("--count", default=1, show_default=True, type=int, help="how many calls fail")
@click.option("--retry-after", type=float, help="Retry-After header on the failures")
@click.option("--latency", type=float, help="seconds added to every call (over the client timeout = hang)")
@click.option("--down", "down", flag_value=True, default=None, help="close the port (connection refused)")
@click.option("--up", "down", flag_value=False, help="open the port again")
@click.option("--clear", is_flag=True, help="remove every fault of this system (and bring it up)")
@control_option
def fault(system: str, status: int | None, count: int, retry_after: float | None, latency: float | None,
          down: bool | None, clear: bool, control_url: str) -> None:
    """Inject a fault into SYSTEM."""
    body: dict[str, Any] = {}
    if status is not None:
        body.update(status=status, count=count, retry_after=retry_after)
    if latency is not None:
        body["latency"] = latency
    if down is not None:
        body["down"] = down
    if not body and not clear:
        raise click.UsageError("give --status [--count --retry-after], --latency, --down, --up or --clear")
    client = _control(control_url)
    try:
        result = client.clear_faults(system) if clear else client.faults(system, **body)
    except ControlError as exc:
        _fail(exc)
    finally:
        client.close()
    f = result["faults"]
    state = "up" if result["up"] else "DOWN (connection refused)"
    failing = f"next {f['fail_count']} call(s) → {f['fail_status']}" if f["fail_status"] else "no scheduled failures"
    extra = f", Retry-After {f['retry_after']}" if f["retry_after"] is not None else ""
    click.echo(f"{system}: {state}; {failing}{extra}; latency {f['latency']}s")


@sandbox.command()
@system_argument
@click.option("--limit", default=20, show_default=True, type=int, help="show the last N calls")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line (personal data masked)")
@control_option
def calls(system: str, limit: int, as_json: bool, control_url: str) -> None:
    """The calls SYSTEM received, newest last (secrets redacted, personal data masked)."""
    client = _control(control_url)
    try:
        received = client.calls(system)
    except ControlError as exc:
        _fail(exc)
    finally:
        client.close()
    shown = received[-limit:] if limit > 0 else received
    for call in shown:
        safe = _safe_call(call)
        if as_json:
            click.echo(json.dumps(safe, ensure_ascii=False))
            continue
        key = safe["headers"].get("idempotency-key")
        line = f"{safe['at']} {safe['method']:6} {safe['path']} → {safe['status']}"
        if key:
            line += f"  [Idempotency-Key {key}]"
        if call.get("replayed"):
            line += "  (replayed)"
        if call.get("fault"):
            line += "  (injected fault)"
        click.echo(line)
        if safe["json"] is not None:
            click.echo(f"    {json.dumps(safe['json'], ensure_ascii=False)[:300]}")
    click.echo(f"# {len(shown)} of {len(received)} call(s) to {system}")


def _safe_call(call: dict[str, Any]) -> dict[str, Any]:
    path = call["path"]
    if "/token/" in path:  # Z-API's instance token is in its URL path
        head, _, rest = path.partition("/token/")
        path = head + "/token/***/" + rest.partition("/")[2]
    headers = {k: ("***" if k in REDACTED_HEADERS else v) for k, v in call.get("headers", {}).items()}
    return {**call, "path": path, "headers": headers, "json": mask_payload(call.get("json")),
            "body": None if call.get("body") is None else f"<{len(call['body'])} chars>"}


@sandbox.command()
@control_option
def reset(control_url: str) -> None:
    """Forget all state, calls and faults (seeds nothing)."""
    client = _control(control_url)
    try:
        client.reset()
    except ControlError as exc:
        _fail(exc)
    finally:
        client.close()
    click.echo("sandbox reset: no data, no calls, no faults")


@sandbox.command()
@control_option
def seed(control_url: str) -> None:
    """Add the default day of data (pending schedules, services, billing setups, …)."""
    client = _control(control_url)
    try:
        result = client.seed()
    except ControlError as exc:
        _fail(exc)
    finally:
        client.close()
    click.echo(f"seeded {json.dumps(result['seeded'])}")


@sandbox.command()
@control_option
def status(control_url: str) -> None:
    """Each system's URL, whether it is up, its faults and how many calls it got."""
    client = _control(control_url)
    try:
        systems = client.systems()
    except ControlError as exc:
        _fail(exc)
    finally:
        client.close()
    for name, info in systems.items():
        f = info["faults"]
        notes = [] if info["up"] else ["DOWN"]
        if f["fail_status"]:
            notes.append(f"next {f['fail_count']} → {f['fail_status']}")
        if f["latency"]:
            notes.append(f"latency {f['latency']}s")
        click.echo(f"{name:12} {info['url']:28} calls {info['calls']:5}  {', '.join(notes) or 'ok'}")


@sandbox.group()
def zapi() -> None:
    """The Z-API instance: connection state and the phone side of a chat."""


@zapi.command("disconnect")
@control_option
def zapi_disconnect(control_url: str) -> None:
    """Disconnect the instance (GET /status says so; a DisconnectedCallback is posted)."""
    _set_connected(control_url, False)


@zapi.command("connect")
@control_option
def zapi_connect(control_url: str) -> None:
    """Reconnect the instance (queued messages are delivered; a ConnectedCallback is posted)."""
    _set_connected(control_url, True)


def _set_connected(control_url: str, connected: bool) -> None:
    client = _control(control_url)
    try:
        result = client.zapi_connect(connected)
    except ControlError as exc:
        _fail(exc)
    finally:
        client.close()
    click.echo(f"zapi instance {'connected' if result['connected'] else 'disconnected'}")


@zapi.command("receive")
@click.argument("phone")
@click.option("--text", help="the message the contact types")
@click.option("--button-id", help="a button clicked instead (e.g. rating_5)")
@click.option("--sender-name", default="Cliente Sandbox", show_default=True)
@click.option("--gzip", is_flag=True, help="post the callback gzip-compressed")
@control_option
def zapi_receive(phone: str, text: str | None, button_id: str | None, sender_name: str, gzip: bool,
                 control_url: str) -> None:
    """Post a ReceivedCallback from PHONE to the configured webhook."""
    if not text and not button_id:
        raise click.UsageError("give --text or --button-id")
    client = _control(control_url)
    try:
        result = client.emit_received(phone, text, button_id, sender_name, gzip)
    except ControlError as exc:
        _fail(exc)
    finally:
        client.close()
    click.echo(f"ReceivedCallback {result['payload']['messageId']} → webhook answered {result['webhook_status']}")


@sandbox.command()
@click.option("--hub-url", default="http://127.0.0.1:8000", show_default=True, help="the running hub's relay")
@click.option("--wait", default=120.0, show_default=True, type=float,
              help="seconds to wait at most for the hub to finish this round's events")
@click.option("--api-key", envvar="CARINHO_API_KEY", default=None,
              help="an operations API key with events:read (default: the one `carinho run` keeps in the data folder)")
@control_option
def demo(hub_url: str, wait: float, api_key: str | None, control_url: str) -> None:
    """Play a realistic day against a running hub (site lead, WhatsApp, client, service, rating, payment),
    wait until the hub has done everything it caused, and report this round."""
    from carinho_pipelines.kernel import settings
    from carinho_sandbox.demo import RoundTimeout, play_day

    if api_key is None:
        kept = settings.data_dir() / "api_key"
        if not kept.exists():
            raise click.ClickException(f"no API key: pass --api-key or set CARINHO_API_KEY (none in {kept})")
        api_key = kept.read_text().strip()
    try:
        steps, result = play_day(hub_url, sandbox=control_url, echo=click.echo, wait=wait, api_key=api_key)
    except ControlError as exc:
        _fail(exc)
    except RoundTimeout as exc:
        raise click.ClickException(f"the hub did not finish this round: {exc}") from exc
    except httpx.HTTPStatusError as exc:
        raise click.ClickException(f"the hub's operations API answered {exc.response.status_code}: "
                                   f"{exc.response.text[:200]}") from exc
    if not all(s.ok for s in steps) or result is None:
        raise SystemExit(1)
    problems = [f"{len(result.failed)} evento(s) com falha"] if result.failed else []
    problems += [f"{q} acima do SLA" for q in result.over_sla()]
    if problems:
        click.echo("; ".join(problems), err=True)
        raise SystemExit(1)
