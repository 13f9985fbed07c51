"""Starting points for a new custom action: each one a small, real pattern operators adapt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actions_app.templates_catalog.registry import NAMESPACED_CLAIM_PATTERN

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True)
class Starter:
    key: str
    name: str
    summary: str
    source: str
    config_schema: dict[str, Any]
    compatible_triggers: list[str]


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "$schema": SCHEMA_DIALECT,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


STARTERS: list[Starter] = [
    Starter(
        key="empty",
        name="Empty action",
        summary="A skeleton that lets every sign-in continue. Start from scratch.",
        source="""export async function execute(input: ActionInput): Promise<ActionResult> {
  // input.user, input.request, input.context.config, input.context.risk.score …
  return { kind: "continue" };
}
""",
        config_schema=_schema({}, []),
        compatible_triggers=["login.post-auth"],
    ),
    Starter(
        key="domain-allowlist",
        name="Domain allowlist",
        summary="Only let people with an email on your list of domains sign in or register.",
        source="""export async function execute(input: ActionInput): Promise<ActionResult> {
  const domain = input.user.email.split("@").pop()?.toLowerCase() ?? "";
  const allowed = input.context.config.domains.map((d) => d.toLowerCase());
  if (allowed.includes(domain)) {
    return { kind: "continue" };
  }
  console.info(`blocked ${domain}`);
  return { kind: "block", reason: input.context.config.message ?? "Your email domain is not allowed." };
}
""",
        config_schema=_schema(
            {
                "domains": {
                    "type": "array",
                    "title": "Allowed domains",
                    "items": {"type": "string", "format": "hostname"},
                    "minItems": 1,
                },
                "message": {"type": "string", "title": "Message shown when blocked", "maxLength": 200},
            },
            ["domains"],
        ),
        compatible_triggers=["login.pre-credential-check", "registration.pre-create"],
    ),
    Starter(
        key="custom-claim",
        name="Add a custom claim",
        summary="Put the user's plan from app_metadata into the issued token.",
        source="""export async function execute(input: ActionInput): Promise<ActionResult> {
  const plan = input.user.app_metadata["plan"];
  const value = typeof plan === "string" ? plan : input.context.config.fallback_plan;
  return {
    kind: "continue",
    claims: { [input.context.config.claim_name]: value },
  };
}
""",
        config_schema=_schema(
            {
                "claim_name": {
                    "type": "string",
                    "title": "Claim name",
                    "description": "A namespaced claim such as https://example.com/plan.",
                    "pattern": NAMESPACED_CLAIM_PATTERN,
                    "default": "https://example.com/plan",
                },
                "fallback_plan": {"type": "string", "title": "Plan when none is set", "default": "free"},
            },
            ["claim_name", "fallback_plan"],
        ),
        compatible_triggers=["login.pre-token", "token-refresh.pre-issue"],
    ),
    Starter(
        key="block-by-risk",
        name="Block by risk score",
        summary="Block attempts the risk engine scores above a threshold; ask for MFA in the grey zone.",
        source="""export async function execute(input: ActionInput): Promise<ActionResult> {
  const score = input.context.risk.score;
  const { block_above, mfa_above } = input.context.config;
  if (score > block_above) {
    return { kind: "block", reason: `Risk score ${score} is above ${block_above}.` };
  }
  if (score > mfa_above) {
    return { kind: "demand_mfa", reason: `Risk score ${score}` };
  }
  return { kind: "continue" };
}
""",
        config_schema=_schema(
            {
                "block_above": {"type": "integer", "title": "Block above", "minimum": 0, "maximum": 100, "default": 85},
                "mfa_above": {
                    "type": "integer",
                    "title": "Ask for MFA above",
                    "minimum": 0,
                    "maximum": 100,
                    "default": 50,
                },
            },
            ["block_above", "mfa_above"],
        ),
        compatible_triggers=["login.post-auth"],
    ),
    Starter(
        key="redirect-by-group",
        name="Redirect by group",
        summary="Send members of a group to their own landing page after sign-in.",
        source="""export async function execute(input: ActionInput): Promise<ActionResult> {
  for (const rule of input.context.config.rules) {
    if (input.user.groups.includes(rule.group)) {
      return { kind: "redirect", url: rule.url };
    }
  }
  return { kind: "continue" };
}
""",
        config_schema=_schema(
            {
                "rules": {
                    "type": "array",
                    "title": "Rules",
                    "description": "The first rule whose group the user is in wins.",
                    "items": {
                        "type": "object",
                        "properties": {
                            "group": {"type": "string", "title": "Group", "minLength": 1},
                            "url": {"type": "string", "title": "URL", "format": "uri", "pattern": "^https://"},
                        },
                        "required": ["group", "url"],
                        "additionalProperties": False,
                    },
                    "minItems": 1,
                }
            },
            ["rules"],
        ),
        compatible_triggers=["login.post-auth", "login.post-login"],
    ),
]

STARTERS_BY_KEY = {starter.key: starter for starter in STARTERS}
