"""What an execution returns, and the check that an action's return value is a valid ActionResult.

The rules come from the contract (§2 which result kinds each slot allows, §3 the ActionResult
shape). The check runs in the web process on the JSON the worker read back from the isolate; the
isolate side has already refused values JSON cannot carry (functions, undefined, cycles, Symbols,
BigInts), so this module sees plain JSON, but it re-checks that too because it is also public.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from actions_app.triggers import ALLOWED_RESULTS, CLAIM_SLOTS

ERROR_CODES = frozenset(
    {
        "timeout",
        "memory",
        "exception",
        "invalid_result",
        "disallowed_result",
        "result_too_large",
        "worker_crashed",
        "compile",
    }
)

MAX_RESULT_BYTES = 64 * 1024
MAX_REASON_CHARS = 1000
MAX_URL_CHARS = 2048
MAX_RESULT_DEPTH = 64

RESULT_KEYS: dict[str, frozenset[str]] = {
    "continue": frozenset({"kind", "claims", "state"}),
    "block": frozenset({"kind", "reason"}),
    "demand_mfa": frozenset({"kind", "reason"}),
    "redirect": frozenset({"kind", "url"}),
}

# Registered JWT claims the token service owns; letting an action overwrite `sub` or `exp` would
# let it mint a token for someone else or one that never expires.
RESERVED_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "azp", "nonce"})


@dataclass(frozen=True)
class ExecutionError:
    """Why an execution produced no result. `code` is one of ERROR_CODES; `message` is for operators."""

    code: str
    message: str


@dataclass(frozen=True)
class ExecutionResult:
    """One execution: the validated ActionResult or an error, the captured logs and the duration."""

    result: dict[str, Any] | None
    logs: list[dict[str, str]]
    duration_ms: float
    error: ExecutionError | None


def _describe_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return f"a Python {type(value).__name__}"


def _find_non_json(value: object, path: str, depth: int = 0) -> str | None:
    """Return a sentence naming the first part of `value` that is not JSON data, or None."""
    if depth > MAX_RESULT_DEPTH:
        return f"{path} is nested more than {MAX_RESULT_DEPTH} levels deep."
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path} is {value}, which JSON cannot represent."
    if isinstance(value, list):
        for index, item in enumerate(value):
            problem = _find_non_json(item, f"{path}[{index}]", depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path} has a non-string key {key!r}."
            problem = _find_non_json(item, f"{path}.{key}", depth + 1)
            if problem:
                return problem
        return None
    return f"{path} is {_describe_type(value)}, which is not JSON data."


def _invalid(message: str) -> tuple[None, ExecutionError]:
    return None, ExecutionError("invalid_result", message)


def _check_redirect_url(url: object) -> str | None:
    if not isinstance(url, str) or not url:
        return f"A redirect result needs a url string, got {_describe_type(url)}."
    if len(url) > MAX_URL_CHARS:
        return f"The redirect url is longer than {MAX_URL_CHARS} characters."
    if any(char.isspace() or ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        return "The redirect url contains whitespace or control characters."
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        return f"The redirect url {url!r} is not a valid URL."
    if parts.scheme.lower() != "https":
        return f"The redirect url must be an absolute https:// URL, got {url!r}."
    if not hostname:
        return f"The redirect url {url!r} has no host."
    if parts.username is not None or parts.password is not None:
        return "The redirect url must not contain a user name or password."
    return None


def _check_reason(result: dict[str, Any], *, required: bool) -> str | None:
    kind = result["kind"]
    if "reason" not in result:
        return f"A {kind} result needs a reason." if required else None
    reason = result["reason"]
    if not isinstance(reason, str):
        return f"The reason of a {kind} result must be a string, got {_describe_type(reason)}."
    if required and not reason.strip():
        return f"The reason of a {kind} result must not be empty."
    if len(reason) > MAX_REASON_CHARS:
        return f"The reason of a {kind} result is longer than {MAX_REASON_CHARS} characters."
    return None


def _check_continue(result: dict[str, Any], trigger: str) -> str | None:
    for key in ("state", "claims"):
        if key in result and not isinstance(result[key], dict):
            return f"The {key} of a continue result must be an object, got {_describe_type(result[key])}."
    if "claims" in result:
        if trigger not in CLAIM_SLOTS:
            slots = " and ".join(sorted(CLAIM_SLOTS))
            return f"claims are only allowed in {slots}."
        reserved = sorted(RESERVED_CLAIMS.intersection(result["claims"]))
        if reserved:
            return f"claims may not set the reserved claim {reserved[0]!r}."
    return None


def validate_action_result(value: object, trigger: str) -> tuple[dict[str, Any] | None, ExecutionError | None]:
    """Check `value` (an action's return value, as JSON data) against the ActionResult of `trigger`.

    Returns (result, None) when valid, else (None, error) with code invalid_result,
    disallowed_result or result_too_large. Raises ValueError for a trigger the platform does not have.
    """
    if trigger not in ALLOWED_RESULTS:
        raise ValueError(f"unknown trigger slot {trigger!r}")
    problem = _find_non_json(value, "result")
    if problem:
        return _invalid(problem)
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size > MAX_RESULT_BYTES:
        return None, ExecutionError(
            "result_too_large", f"The result is {size:,} bytes of JSON; the limit is {MAX_RESULT_BYTES:,} (64 KiB)."
        )
    if not isinstance(value, dict):
        return _invalid(f"execute() must return an ActionResult object, got {_describe_type(value)}.")
    kinds = ", ".join(RESULT_KEYS)
    if "kind" not in value:
        return _invalid(f"The result has no kind; expected one of {kinds}.")
    kind = value["kind"]
    if not isinstance(kind, str) or kind not in RESULT_KEYS:
        return _invalid(f"Unknown result kind {kind!r}; expected one of {kinds}.")
    extra = sorted(set(value) - RESULT_KEYS[kind])
    if extra:
        return _invalid(f"Unexpected key {extra[0]!r} in a {kind} result.")

    if kind == "continue":
        problem = _check_continue(value, trigger)
    elif kind == "block":
        problem = _check_reason(value, required=True)
    elif kind == "demand_mfa":
        problem = _check_reason(value, required=False)
    else:
        problem = _check_redirect_url(value.get("url"))
    if problem:
        return _invalid(problem)

    allowed = ALLOWED_RESULTS[trigger]
    if kind not in allowed:
        return None, ExecutionError(
            "disallowed_result", f"A {kind} result is not allowed in {trigger}; allowed: {', '.join(allowed)}."
        )
    return value, None
