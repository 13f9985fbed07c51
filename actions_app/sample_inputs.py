"""Sample ActionInput per trigger slot for the test harness, and the rules for an edited one."""

from __future__ import annotations

import re
import uuid
from typing import Any

from actions_app.models import SECRET_NAME_RE
from actions_app.triggers import ALL_TRIGGERS, kind_of_trigger
from core.api_types import IP_ADDRESS_MESSAGE, RISK_SCORE_MESSAGE, ip_address_problem, risk_score_problem

SAMPLE_IP = "203.0.113.24"


def sample_input(trigger: str) -> dict[str, Any]:
    """A realistic input for `trigger`; the harness fills `context` itself."""
    return {
        "trigger": trigger,
        "user": {
            "id": "user_8f3a2c",
            "email": "jane.doe@example.com",
            "email_verified": True,
            "name": "Jane Doe",
            "groups": ["staff"],
            "app_metadata": {"plan": "enterprise"},
        },
        "request": {
            "ip": SAMPLE_IP,
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
            "hostname": "login.example.com",
            "country": "DE",
        },
        "state": {},
        "context": {"risk": {"score": 20}},
    }


class InvalidSampleInput(ValueError):
    pass


def given_test_secrets(edited: Any) -> dict[str, str]:
    """The operator's test values of secrets, from the harness input's optional `secrets` object
    (name → string). They win over the action's stored secrets of the same names; names not given
    keep the stored values."""
    given = edited.get("secrets", {}) if isinstance(edited, dict) else {}
    if not isinstance(given, dict):
        raise InvalidSampleInput('“secrets” must be an object of test values, e.g. {"API_KEY": "test-key"}.')
    for name, value in given.items():
        if not re.fullmatch(SECRET_NAME_RE, name):
            raise InvalidSampleInput(f"“secrets.{name[:64]}” is not a secret name (API_KEY, CRM_TOKEN…).")
        if not isinstance(value, str):
            raise InvalidSampleInput(f"“secrets.{name}” must be a string.")
    return dict(given)


def _risk_score(context: Any) -> float:
    """The score of an edited input's `context.risk`, as the run API reads it: an object whose score
    is a JSON number 0–100. Anything else used to run quietly as score 0."""
    if not isinstance(context, dict):
        raise InvalidSampleInput('“context” must be an object, e.g. {"risk": {"score": 20}}.')
    risk = context.get("risk", {})
    if not isinstance(risk, dict):
        raise InvalidSampleInput('“context.risk” must be an object with a score, e.g. {"score": 20}.')
    score = risk.get("score", 0)
    if risk_score_problem(score):
        raise InvalidSampleInput(f"“context.risk.score” {RISK_SCORE_MESSAGE}.")
    return float(score)


def harness_input(
    edited: Any, *, tenant_slug: str, action_slug: str, version_label: str, config: dict[str, Any]
) -> dict[str, Any]:
    """Turn the operator's edited JSON into a full ActionInput, or say plainly what is wrong."""
    if not isinstance(edited, dict):
        raise InvalidSampleInput("The input must be a JSON object with trigger, user, request and state.")
    trigger = edited.get("trigger")
    if trigger not in ALL_TRIGGERS:
        raise InvalidSampleInput(f"“trigger” must be one of the slots: {', '.join(ALL_TRIGGERS)}.")
    user = edited.get("user")
    if not isinstance(user, dict) or not isinstance(user.get("email"), str):
        raise InvalidSampleInput("“user” must be an object with at least an email.")
    request = edited.get("request", {})
    if not isinstance(request, dict):
        raise InvalidSampleInput("“request” must be an object (ip, user_agent, hostname).")
    state = edited.get("state", {})
    if not isinstance(state, dict):
        raise InvalidSampleInput("“state” must be an object.")
    ip = request.get("ip", SAMPLE_IP)
    if not isinstance(ip, str) or ip_address_problem(ip):
        raise InvalidSampleInput(f"“request.ip” {IP_ADDRESS_MESSAGE}.")
    score = _risk_score(edited.get("context", {}))
    return {
        "trigger": trigger,
        "user": {
            "id": str(user.get("id", "user_test")),
            "email": user["email"],
            "email_verified": bool(user.get("email_verified", False)),
            **({"name": str(user["name"])} if "name" in user else {}),
            "groups": [str(g) for g in user.get("groups", []) if isinstance(g, str | int)],
            "app_metadata": user.get("app_metadata") if isinstance(user.get("app_metadata"), dict) else {},
        },
        "request": {
            "ip": ip,
            "user_agent": str(request.get("user_agent", "")),
            "hostname": str(request.get("hostname", "login.example.com")),
            **({"country": str(request["country"])} if "country" in request else {}),
        },
        "state": state,
        "context": {
            "tenant": tenant_slug,
            "flow": kind_of_trigger(trigger),
            "transaction_id": f"test_{uuid.uuid4().hex[:16]}",
            "action": {"slug": action_slug, "version": version_label},
            "config": config,
            "risk": {"score": score},
        },
    }
