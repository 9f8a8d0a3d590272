"""``POST /api/privacy/erase``: erase a person on request (LGPD art. 18; issue 16),
under its own scope ``privacy:erase``. The work is :mod:`carinho_pipelines.people.erasure`;
the audit record names the request by a hash prefix, never the phone, e-mail or CPF."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from carinho_pipelines.kernel import person_keys
from carinho_pipelines.people import erasure

from . import schemas, validation
from .apikeys import audit, key_of, requires
from .bodies import read_json_object
from .errors import ApiError


@requires("privacy:erase")
async def erase(request: Request) -> JSONResponse:
    """Erase one person's data: every event payload, outbox row, ledger result and search
    hash of theirs; their pending work is cancelled, never sent. Idempotent."""
    key = key_of(request)
    _raw, body = await read_json_object(request)
    validation.check(schemas.ERASE_BODY, body)
    [(kind, raw)] = body.items()
    normalised = person_keys.normalise(kind, raw)
    if normalised is None:
        raise validation.failed([{"field": kind, "reason": f"not a valid {kind}"}])
    store = request.app.state.store

    def work() -> dict:
        try:
            done = erasure.erase(store, kind, normalised)
        except erasure.NotConfigured as exc:
            raise ApiError(503, "person_search_off", "erasure by person needs CARINHO_PERSON_KEY_SECRET on the relay",
                           headers={"Retry-After": "3600"}) from exc
        secret = person_keys.secret() or b""
        audit(store, key, "privacy.erase", f"{kind}:{person_keys.digest(kind, normalised, secret)[:12]}",
              done.as_dict())
        return {"erased": done.as_dict()}

    return JSONResponse(await run_in_threadpool(work))
