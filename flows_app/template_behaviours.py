"""What the ten platform templates do when a flow runs them (contract §4).

Each behaviour takes the binding's config (secrets already decrypted), the ActionInput and a
counter scope (tenant + binding, for the rate limits) and returns an ActionResult plus, for the
webhook templates, the messages to put in the outbox. Nothing here waits on the network.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.rate_limits import count_hit


@dataclass
class OutboundMessage:
    url: str
    signing_secret: str
    body: dict[str, Any]


@dataclass
class TemplateOutcome:
    result: dict[str, Any]
    logs: list[dict[str, str]] = field(default_factory=list)
    outbound: list[OutboundMessage] = field(default_factory=list)


@dataclass(frozen=True)
class TemplateCall:
    version: str
    config: dict[str, Any]
    action_input: dict[str, Any]
    counter_scope: str


CONTINUE: dict[str, Any] = {"kind": "continue"}


def _email_domain(action_input: dict[str, Any]) -> str | None:
    email = str(action_input.get("user", {}).get("email") or "")
    if "@" not in email:
        return None
    return email.rsplit("@", 1)[1].strip().rstrip(".").lower() or None


def _domain_listed(domain: str, config: dict[str, Any]) -> bool:
    listed = {d.strip().rstrip(".").lower() for d in config.get("domains", [])}
    if domain in listed:
        return True
    return bool(config.get("include_subdomains")) and any(domain.endswith("." + d) for d in listed)


def domain_allowlist(call: TemplateCall) -> TemplateOutcome:
    domain = _email_domain(call.action_input)
    if domain is not None and _domain_listed(domain, call.config):
        return TemplateOutcome(CONTINUE)
    reason = call.config.get("message") or "Sign-in from this email domain is not allowed."
    return TemplateOutcome({"kind": "block", "reason": reason}, [_log("info", f"domain {domain!r} is not allowed")])


def domain_blocklist(call: TemplateCall) -> TemplateOutcome:
    domain = _email_domain(call.action_input)
    if domain is not None and _domain_listed(domain, call.config):
        reason = call.config.get("message") or "Sign-in from this email domain is not allowed."
        return TemplateOutcome({"kind": "block", "reason": reason}, [_log("info", f"domain {domain!r} is blocked")])
    return TemplateOutcome(CONTINUE)


def _ip_in_allowed_networks(ip: str, cidrs: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def rate_limit_by_ip(call: TemplateCall) -> TemplateOutcome:
    ip = str(call.action_input.get("request", {}).get("ip") or "unknown")
    # allow_cidrs exists from 1.1.0; a 1.0.0 binding has none, so it keeps the old behaviour.
    if call.version != "1.0.0" and _ip_in_allowed_networks(ip, call.config.get("allow_cidrs", [])):
        return TemplateOutcome(CONTINUE, [_log("info", f"{ip} is in an allowed network; not counted")])
    window = int(call.config["window_seconds"])
    seen = count_hit(f"{call.counter_scope}:ip:{ip}", window)
    if seen > int(call.config["limit"]):
        reason = call.config.get("message") or "Too many attempts. Try again later."
        return TemplateOutcome({"kind": "block", "reason": reason}, [_log("warn", f"{ip}: {seen} requests in window")])
    return TemplateOutcome(CONTINUE)


def rate_limit_by_user(call: TemplateCall) -> TemplateOutcome:
    user = call.action_input.get("user", {})
    account = str(user.get("id") or user.get("email", "")).lower() or "unknown"
    window = int(call.config["window_seconds"])
    seen = count_hit(f"{call.counter_scope}:user:{account}", window)
    if seen > int(call.config["max_attempts"]):
        reason = call.config.get("message") or "Too many attempts on this account. Try again later."
        return TemplateOutcome({"kind": "block", "reason": reason}, [_log("warn", f"{seen} attempts on {account}")])
    return TemplateOutcome(CONTINUE)


def value_at_path(document: Any, path: str) -> Any:
    """`app_metadata.plan` → document["app_metadata"]["plan"], or None when any step is missing."""
    current = document
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            return None
        current = current[part]
    return current


def decorate_token(call: TemplateCall) -> TemplateOutcome:
    claim = call.config["claim"]
    if "from" in call.config:
        value = value_at_path(call.action_input.get("user", {}), call.config["from"])
        if value is None:
            return TemplateOutcome(CONTINUE, [_log("warn", f"user.{call.config['from']} is not set; claim omitted")])
    else:
        value = call.config.get("value", "")
    return TemplateOutcome({"kind": "continue", "claims": {claim: value}})


def _event_body(call: TemplateCall, parts: list[str]) -> dict[str, Any]:
    context = call.action_input.get("context", {})
    body: dict[str, Any] = {
        "event": call.action_input.get("trigger"),
        "tenant": context.get("tenant"),
        "flow": context.get("flow"),
        "transaction_id": context.get("transaction_id"),
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    for part in parts:
        if part == "context":
            # Never forward the binding's own config: it holds the signing secret.
            body["context"] = {k: v for k, v in context.items() if k != "config"}
        elif part in call.action_input:
            body[part] = call.action_input[part]
    return body


def webhook_emit(call: TemplateCall) -> TemplateOutcome:
    body = _event_body(call, call.config.get("include", ["user", "request"]))
    message = OutboundMessage(call.config["url"], call.config.get("secret", ""), body)
    return TemplateOutcome(CONTINUE, [_log("info", "webhook queued")], [message])


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")


def fill_placeholders(text: str, action_input: dict[str, Any]) -> str:
    """Replace `{user.email}`-style placeholders; unknown ones stay as written."""

    def replace(match: re.Match[str]) -> str:
        value = value_at_path(action_input, match.group(1))
        return match.group(0) if value is None or isinstance(value, dict | list) else str(value)

    return _PLACEHOLDER.sub(replace, text)


def slack_notify(call: TemplateCall) -> TemplateOutcome:
    text = fill_placeholders(call.config["text"], call.action_input)
    message = OutboundMessage(call.config["webhook_url"], "", {"text": text})
    return TemplateOutcome(CONTINUE, [_log("info", "slack message queued")], [message])


def _risk_score(call: TemplateCall) -> float:
    return float(call.action_input.get("context", {}).get("risk", {}).get("score", 0))


def block_by_risk_score(call: TemplateCall) -> TemplateOutcome:
    score, threshold = _risk_score(call), call.config["threshold"]
    if score > threshold:
        reason = call.config.get("message") or "This sign-in looks risky and was blocked."
        return TemplateOutcome({"kind": "block", "reason": reason}, [_log("info", f"risk {score} > {threshold}")])
    return TemplateOutcome(CONTINUE)


def demand_mfa_by_risk_score(call: TemplateCall) -> TemplateOutcome:
    score, threshold = _risk_score(call), call.config["threshold"]
    if score > threshold:
        return TemplateOutcome({"kind": "demand_mfa", "reason": f"Risk score {score:g} is above {threshold}."})
    return TemplateOutcome(CONTINUE)


def redirect_by_group(call: TemplateCall) -> TemplateOutcome:
    groups = set(call.action_input.get("user", {}).get("groups", []))
    for rule in call.config.get("rules", []):
        if rule["group"] in groups:
            return TemplateOutcome({"kind": "redirect", "url": rule["url"]}, [_log("info", f"group {rule['group']}")])
    return TemplateOutcome(CONTINUE)


def _log(level: str, message: str) -> dict[str, str]:
    return {"level": level, "message": message}


BEHAVIOURS: dict[str, Callable[[TemplateCall], TemplateOutcome]] = {
    "domain-allowlist": domain_allowlist,
    "domain-blocklist": domain_blocklist,
    "rate-limit-by-ip": rate_limit_by_ip,
    "rate-limit-by-user": rate_limit_by_user,
    "decorate-token": decorate_token,
    "webhook-emit": webhook_emit,
    "slack-notify": slack_notify,
    "block-by-risk-score": block_by_risk_score,
    "demand-mfa-by-risk-score": demand_mfa_by_risk_score,
    "redirect-by-group": redirect_by_group,
}


def run_platform_template(slug: str, call: TemplateCall) -> TemplateOutcome:
    return BEHAVIOURS[slug](call)
