"""Validating request bodies against the JSON Schemas ``/openapi.json`` publishes.

The schemas come from the catalogue (:func:`carinho_pipelines.kernel.catalogue.payload_schema`)
and from :mod:`relay.schemas` (envelopes, Z-API callbacks); the relay checks bodies with
those very schemas, so the reference cannot drift from what is enforced. Every problem
is reported at once: a 422 carries ``fields``, one ``{"field", "reason"}`` per invalid or
missing field (and, for compatibility, ``field``/``reason`` of the first one).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Iterable

import jsonschema
from jsonschema.exceptions import ValidationError

from carinho_pipelines.kernel import catalogue
from carinho_pipelines.kernel.privacy import normalize_phone

from .errors import ApiError

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

#: the formats the relay enforces; an empty string means "not given" for optional fields
FORMATS = jsonschema.FormatChecker(())


@FORMATS.checks("email")
def _is_email(value: Any) -> bool:
    return not isinstance(value, str) or value == "" or bool(_EMAIL.match(value))


@FORMATS.checks("phone")
def _is_phone(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        return True  # the type keyword decides
    return normalize_phone(str(value)) is not None


@FORMATS.checks("date-time")
def _is_date_time(value: Any) -> bool:
    if not isinstance(value, str) or value == "":
        return True
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


_FORMAT_REASONS = {
    "email": "is not a valid e-mail address",
    "phone": "is not a valid phone number",
    "date-time": "must be an ISO-8601 date-time",
}
_TYPE_NAMES = {"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
               "object": "a JSON object", "array": "a list", "null": "null"}


def _path(prefix: str, parts: Iterable[Any]) -> str:
    out = prefix
    for part in parts:
        out = f"{out}[{part}]" if isinstance(part, int) else (f"{out}.{part}" if out else str(part))
    return out


def _reason(error: ValidationError) -> str:
    v = error.validator
    if v == "type":
        types = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        if error.instance is None:
            return "required"
        return "must be " + " or ".join(_TYPE_NAMES.get(t, t) for t in types if t != "null")
    if v == "format":
        return _FORMAT_REASONS.get(error.validator_value, f"must be a {error.validator_value}")
    if v == "minLength" and error.validator_value == 1:
        return "required"
    if v in ("enum", "const"):
        allowed = error.validator_value if v == "enum" else [error.validator_value]
        return "must be one of " + ", ".join(str(a) for a in allowed if a is not None)
    if v == "minimum":
        return f"must be at least {error.validator_value:g}"
    if v == "maximum":
        return f"must be at most {error.validator_value:g}"
    if v == "maxLength":
        return f"must be at most {error.validator_value} characters"
    if v == "minItems":
        return "must not be empty"
    return error.message


def problems(schema: dict[str, Any], body: Any, prefix: str = "") -> list[dict[str, str]]:
    """Every ``{"field", "reason"}`` of ``body`` against ``schema``, in field order."""
    found: list[dict[str, str]] = []
    for error in _validator(schema).iter_errors(body):
        if error.validator == "required":
            missing = [n for n in error.validator_value if not isinstance(body, dict) or n not in _at(body, error.path)]
            found += [{"field": _path(prefix, [*error.path, n]), "reason": "required"} for n in missing]
        elif error.validator == "anyOf" and all(e.validator in ("required", "type", "minLength") for e in error.context):
            names = [next(iter(s["properties"])) for s in error.validator_value]
            found.append({"field": _path(prefix, [*error.path, " or ".join(names)]), "reason": "at least one is required"})
        else:
            found.append({"field": _path(prefix, error.path) or "body", "reason": _reason(error)})
    return unique(found)


def unique(found: list[dict[str, str]]) -> list[dict[str, str]]:
    """``found`` without repeats, in order."""
    seen: set[tuple[str, str]] = set()
    out = []
    for p in found:
        if (p["field"], p["reason"]) not in seen:
            seen.add((p["field"], p["reason"]))
            out.append(p)
    return out


def _at(body: Any, path: Iterable[Any]) -> Any:
    for part in path:
        body = body[part]
    return body


def failed(found: list[dict[str, str]]) -> ApiError:
    """The 422 for ``found`` (non-empty): ``message`` names every field."""
    first = found[0]
    message = "; ".join(f"{p['field']}: {p['reason']}" for p in found)
    return ApiError(422, "validation_failed", message, field=first["field"], reason=first["reason"], fields=found)


def check(schema: dict[str, Any], body: Any, prefix: str = "") -> None:
    found = problems(schema, body, prefix)
    if found:
        raise failed(found)


def payload_problems(event_type: str, payload: Any, prefix: str = "") -> list[dict[str, str]]:
    return problems(catalogue.PAYLOAD_SCHEMAS[event_type], payload, prefix)


# -- compiled validators, one per schema ------------------------------------------------

_validators: dict[int, tuple[dict[str, Any], Any]] = {}


def _validator(schema: dict[str, Any]) -> Any:
    """The compiled validator of ``schema`` (module constants: cached by identity; the
    cache keeps the schema alive, so an id is never reused for another one)."""
    hit = _validators.get(id(schema))
    if hit is None or hit[0] is not schema:
        hit = _validators[id(schema)] = (schema, jsonschema.Draft202012Validator(schema, format_checker=FORMATS))
    return hit[1]
