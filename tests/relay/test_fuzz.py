"""Every route of ``/openapi.json`` fuzzed by schemathesis against a running relay
(uvicorn on a free port, PostgreSQL store, a Dagster instance it reads runs from):
valid and invalid bodies, parameters and headers drawn from the published schemas.

Asserted for every request: no 5xx; the status is one the document lists for the
route; a JSON answer matches the documented schema; and nothing is stored for a
rejected request (the event store's row count does not move on a 4xx).

Bounded: a few examples per operation and mode, no shrinking (~25 s on 2 cores).
"""

from __future__ import annotations

from typing import Any, Iterator

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
import sqlalchemy as sa
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus
from dagster._core.utils import make_new_run_id
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from relay import runs, sync_api
from carinho_pipelines.store.migrate import upgrade
from carinho_pipelines.store import EventStore
from carinho_pipelines.store.tables import events
from tests.conftest import TOKENS, ZAPI_WEBHOOK_TOKEN
from tests.relay.conftest import Relay

API_KEY = "fuzz-key-all-scopes"
EXAMPLES_PER_MODE = 12
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

# the relay's own formats, so positive cases are valid where the relay is strict
schemathesis.openapi.format("phone", st.from_regex(r"55[1-9][0-9]9[0-9]{8}", fullmatch=True))


@pytest.fixture(scope="module")
def fuzz_relay(pg_database, tmp_path_factory) -> Iterator[Relay]:
    url = pg_database("carinho_fuzz")
    upgrade(url)
    home = tmp_path_factory.mktemp("dagster_home")
    with pytest.MonkeyPatch.context() as mp, DagsterInstance.ephemeral() as instance:
        for system, token in TOKENS.items():
            mp.setenv(f"CARINHO_{system.upper()}_TOKEN", token)
            mp.delenv(f"CARINHO_{system.upper()}_WEBHOOK_SECRET", raising=False)
        mp.setenv("ZAPI_WEBHOOK_TOKEN", ZAPI_WEBHOOK_TOKEN)
        mp.delenv("ZAPI_INSTANCE_ID", raising=False)  # any instanceId the fuzzer draws is ours
        for key in ("ZAPI_BASE_URL", "ZAPI_TOKEN", "CARINHO_DIRECT_SUBMIT", "CARINHO_METRICS_REQUIRE_KEY"):
            mp.delenv(key, raising=False)
        mp.setenv("CARINHO_API_KEYS", f"fuzz:{API_KEY}:*")
        mp.setenv("DAGSTER_HOME", str(home))
        mp.setattr(runs, "_instance", instance)
        # every sync is running, so a fuzzed manual run answers 409 instead of launching
        for name in sync_api.SYNCS:
            instance.add_run(DagsterRun(job_name=name, run_id=make_new_run_id(), status=DagsterRunStatus.STARTED,
                                        tags=sync_api.run_tags(name)))
        relay = Relay(EventStore(url))
        try:
            yield relay
        finally:
            relay.close()


def _credentials(case: Any) -> dict[str, str]:
    """The credentials the route wants (the fuzzer varies everything else)."""
    path = case.operation.path
    if path.startswith("/webhooks/whatsapp"):
        return {"z-api-token": ZAPI_WEBHOOK_TOKEN}
    if path == "/webhooks/systems/{system}":
        system = (case.path_parameters or {}).get("system")
        return {"Authorization": f"Bearer {TOKENS.get(system, TOKENS['crm'])}"}
    if path.startswith("/webhooks/"):
        return {"Authorization": f"Bearer {TOKENS[path.split('/')[2]]}"}
    if path == "/api/events" and case.method.upper() == "POST":
        body = case.body if isinstance(case.body, dict) else {}
        source = body.get("source_system")
        return {"Authorization": f"Bearer {TOKENS.get(source, TOKENS['crm']) if isinstance(source, str) else TOKENS['crm']}"}
    return {"X-API-Key": API_KEY}


def _count(relay: Relay) -> int:
    with relay.store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()


def test_every_route_survives_fuzzing_and_stores_nothing_it_rejects(fuzz_relay):
    schema = schemathesis.openapi.from_url(f"{fuzz_relay.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 23
    seen: dict[str, set[int]] = {}
    failures: list[str] = []

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @hypothesis.settings(max_examples=EXAMPLES_PER_MODE, deadline=None, database=None, derandomize=True,
                                 phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def fuzz(case: Any) -> None:
                before = _count(fuzz_relay)
                response = case.call(base_url=fuzz_relay.url, headers=_credentials(case), timeout=30)
                seen.setdefault(operation.label, set()).add(response.status_code)
                try:
                    case.validate_response(response, checks=CHECKS)
                except Exception as exc:  # noqa: BLE001 - collected, reported together below
                    failures.append(f"{operation.label} [{mode.value}] {response.status_code}: "
                                    f"{str(exc).splitlines()[0]}\n  {case.as_curl_command()}")
                if 400 <= response.status_code < 500:
                    assert _count(fuzz_relay) == before, (
                        f"{operation.label} answered {response.status_code} but stored an event: {response.text}")

            try:
                fuzz()
            except hypothesis.errors.Unsatisfiable:
                # an operation without parameters or body has nothing to make invalid
                assert mode is GenerationMode.NEGATIVE, operation.label

    assert not failures, "\n".join(failures[:20])
    # the fuzz reached past authentication into every route: some answer other than 401/403
    unreached = [label for label, codes in seen.items() if codes <= {401, 403}]
    assert not unreached, unreached
    # and accepted events on the webhook routes
    accepted = {label for label, codes in seen.items() if 202 in codes}
    assert {"POST /webhooks/site/lead", "POST /api/events", "POST /webhooks/whatsapp"} <= accepted, seen
    assert _count(fuzz_relay) > 0
