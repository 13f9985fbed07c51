"""Definitions of the ten platform templates and their versions.

Each version carries the JSON Schema (2020-12) its config form is generated from and that the
server validates against, and the trigger slots it may be attached to. Behaviour lives in the
run engine (flows_app); this module only describes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from actions_app.triggers import ALL_TRIGGERS

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


# A custom claim's name carries its owner's namespace, an http(s) URL (contract §4, decorate-token),
# so it cannot collide with claims the platform or a standard defines later.
NAMESPACED_CLAIM_PATTERN = r"^https?://[^\s/]+/\S+$"
RESERVED_CLAIMS = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "azp", "nonce"]


@dataclass(frozen=True)
class TemplateVersion:
    version: str
    config_schema: dict[str, Any]
    compatible_triggers: list[str]
    changelog: str = ""


@dataclass(frozen=True)
class PlatformTemplate:
    slug: str
    name: str
    description: str
    versions: list[TemplateVersion] = field(default_factory=list)

    @property
    def latest(self) -> TemplateVersion:
        return self.versions[-1]

    def version(self, label: str) -> TemplateVersion | None:
        return next((v for v in self.versions if v.version == label), None)


def _object(properties: dict[str, Any], required: list[str], title: str) -> dict[str, Any]:
    return {
        "$schema": SCHEMA_DIALECT,
        "title": title,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


_MESSAGE = {
    "type": "string",
    "title": "Message shown to the user",
    "maxLength": 200,
}

_DOMAIN_LIST_PROPERTIES = {
    "domains": {
        "type": "array",
        "title": "Domains",
        "description": "Email domains, one per entry, such as example.com.",
        "items": {"type": "string", "format": "hostname", "minLength": 1, "maxLength": 253},
        "minItems": 1,
        "uniqueItems": True,
    },
    "include_subdomains": {
        "type": "boolean",
        "title": "Include subdomains",
        "description": "Also match eu.example.com when example.com is listed.",
        "default": False,
    },
    "message": {**_MESSAGE, "default": "Sign-in from this email domain is not allowed."},
}

_RATE_WINDOW = {
    "type": "integer",
    "title": "Window (seconds)",
    "description": "Length of the counting window.",
    "minimum": 1,
    "maximum": 86400,
    "default": 60,
}

_RATE_LIMIT_BY_IP_1_0 = {
    "limit": {
        "type": "integer",
        "title": "Requests allowed per window",
        "description": "Requests from one IP address beyond this number are refused until the window ends.",
        "minimum": 1,
        "default": 10,
    },
    "window_seconds": _RATE_WINDOW,
    "message": {**_MESSAGE, "default": "Too many attempts. Try again later."},
}

_RISK_THRESHOLD = {
    "type": "integer",
    "title": "Risk threshold",
    "description": "Acts when the risk engine's score (0–100) is above this value.",
    "minimum": 0,
    "maximum": 100,
    "default": 70,
}

_INCLUDE_PARTS = {
    "type": "array",
    "title": "Include in the payload",
    "description": "Which parts of the action input the POST body carries.",
    "items": {"type": "string", "enum": ["user", "request", "context", "state"]},
    "uniqueItems": True,
    "default": ["user", "request"],
}

PLATFORM_TEMPLATES: list[PlatformTemplate] = [
    PlatformTemplate(
        slug="domain-allowlist",
        name="Domain allowlist",
        description="Block sign-ins and registrations from email addresses outside an allowed list of domains.",
        versions=[
            TemplateVersion(
                "1.0.0",
                _object(_DOMAIN_LIST_PROPERTIES, ["domains"], "Domain allowlist"),
                ["login.pre-credential-check", "registration.pre-create"],
            )
        ],
    ),
    PlatformTemplate(
        slug="domain-blocklist",
        name="Domain blocklist",
        description="Block sign-ins and registrations from email addresses on a denied list of domains.",
        versions=[
            TemplateVersion(
                "1.0.0",
                _object(_DOMAIN_LIST_PROPERTIES, ["domains"], "Domain blocklist"),
                ["login.pre-credential-check", "registration.pre-create"],
            )
        ],
    ),
    PlatformTemplate(
        slug="rate-limit-by-ip",
        name="Rate limit by IP",
        description="Refuse requests from one IP address above a threshold per time window.",
        versions=[
            TemplateVersion(
                "1.0.0",
                _object(_RATE_LIMIT_BY_IP_1_0, ["limit", "window_seconds"], "Rate limit by IP"),
                ["login.pre-credential-check", "registration.pre-create", "password-reset.requested"],
            ),
            TemplateVersion(
                "1.1.0",
                _object(
                    {
                        **_RATE_LIMIT_BY_IP_1_0,
                        "allow_cidrs": {
                            "type": "array",
                            "title": "Never limit these networks",
                            "description": "CIDR ranges such as 203.0.113.0/24 (office egress, health checks).",
                            "items": {"type": "string", "format": "cidr"},
                            "uniqueItems": True,
                            "default": [],
                        },
                    },
                    ["limit", "window_seconds"],
                    "Rate limit by IP",
                ),
                ["login.pre-credential-check", "registration.pre-create", "password-reset.requested"],
                changelog="Adds allow_cidrs: networks that are never limited.",
            ),
        ],
    ),
    PlatformTemplate(
        slug="rate-limit-by-user",
        name="Rate limit by user",
        description="Refuse repeated attempts on the same user account within a time window.",
        versions=[
            TemplateVersion(
                "1.0.0",
                _object(
                    {
                        "max_attempts": {
                            "type": "integer",
                            "title": "Attempts allowed per window",
                            "minimum": 1,
                            "default": 5,
                        },
                        "window_seconds": {**_RATE_WINDOW, "default": 300},
                        "message": {**_MESSAGE, "default": "Too many attempts on this account. Try again later."},
                    },
                    ["max_attempts", "window_seconds"],
                    "Rate limit by user",
                ),
                ["login.pre-credential-check", "password-reset.requested"],
            )
        ],
    ),
    PlatformTemplate(
        slug="decorate-token",
        name="Decorate token",
        description="Add a custom claim to the issued token, as a constant or taken from the user profile.",
        versions=[
            TemplateVersion(
                "1.0.0",
                {
                    **_object(
                        {
                            "claim": {
                                "type": "string",
                                "title": "Claim name",
                                "description": "A namespaced name such as https://example.com/plan. "
                                "Reserved claims (" + ", ".join(RESERVED_CLAIMS) + ") are refused.",
                                "minLength": 1,
                                "maxLength": 200,
                                "pattern": NAMESPACED_CLAIM_PATTERN,
                                "not": {"enum": RESERVED_CLAIMS},
                            },
                            "value": {
                                "type": "string",
                                "title": "Constant value",
                                "description": "Use this value, or leave empty and give a source path.",
                                "maxLength": 1000,
                            },
                            "from": {
                                "type": "string",
                                "title": "Source path in the user",
                                "description": "A dotted path into the user, e.g. app_metadata.plan.",
                                "pattern": r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$",
                                "maxLength": 200,
                            },
                        },
                        ["claim"],
                        "Decorate token",
                    ),
                    # Exactly one source of the value.
                    "oneOf": [{"required": ["value"]}, {"required": ["from"]}],
                },
                ["login.pre-token", "token-refresh.pre-issue"],
            )
        ],
    ),
    PlatformTemplate(
        slug="webhook-emit",
        name="Webhook emit",
        description="POST a signed JSON payload to a URL when the slot fires. The flow continues at once; "
        "delivery happens in the background with retries.",
        versions=[
            TemplateVersion(
                "1.0.0",
                _object(
                    {
                        "url": {
                            "type": "string",
                            "title": "Endpoint URL",
                            "description": "An https URL on the public internet.",
                            "format": "uri",
                            "pattern": "^https://",
                            "maxLength": 2000,
                        },
                        "secret": {
                            "type": "string",
                            "title": "Signing secret",
                            "description": "Signs each POST (HMAC-SHA256 header). Stored encrypted; never shown again.",
                            "minLength": 16,
                            "maxLength": 200,
                            "writeOnly": True,
                        },
                        "include": _INCLUDE_PARTS,
                    },
                    ["url", "secret"],
                    "Webhook emit",
                ),
                ALL_TRIGGERS,
            )
        ],
    ),
    PlatformTemplate(
        slug="slack-notify",
        name="Slack notify",
        description="Post a message to a Slack incoming webhook when the slot fires (a specialised webhook emit).",
        versions=[
            TemplateVersion(
                "1.0.0",
                _object(
                    {
                        "webhook_url": {
                            "type": "string",
                            "title": "Slack incoming-webhook URL",
                            "description": "Stored encrypted; never shown again.",
                            "format": "uri",
                            "pattern": "^https://",
                            "maxLength": 2000,
                            "writeOnly": True,
                        },
                        "text": {
                            "type": "string",
                            "title": "Message text",
                            "description": "Placeholders such as {user.email}, {request.ip} and {trigger} are filled.",
                            "minLength": 1,
                            "maxLength": 2000,
                            "default": "{trigger}: {user.email} from {request.ip}",
                        },
                    },
                    ["webhook_url", "text"],
                    "Slack notify",
                ),
                ALL_TRIGGERS,
            )
        ],
    ),
    PlatformTemplate(
        slug="block-by-risk-score",
        name="Block by risk score",
        description="Block when the risk engine's score for the attempt is above a threshold.",
        versions=[
            TemplateVersion(
                "1.0.0",
                _object(
                    {
                        "threshold": _RISK_THRESHOLD,
                        "message": {**_MESSAGE, "default": "This sign-in looks risky and was blocked."},
                    },
                    ["threshold"],
                    "Block by risk score",
                ),
                ["login.post-auth", "registration.pre-create", "password-reset.requested"],
            )
        ],
    ),
    PlatformTemplate(
        slug="demand-mfa-by-risk-score",
        name="Demand MFA by risk score",
        description="Force multi-factor authentication when the risk score is above a threshold, even where "
        "policy would not normally ask for it.",
        versions=[
            TemplateVersion(
                "1.0.0",
                _object({"threshold": {**_RISK_THRESHOLD, "default": 50}}, ["threshold"], "Demand MFA by risk score"),
                ["login.post-auth"],
            )
        ],
    ),
    PlatformTemplate(
        slug="redirect-by-group",
        name="Redirect by group",
        description="After sign-in, redirect members of specific groups to specific URLs. First matching rule wins.",
        versions=[
            TemplateVersion(
                "1.0.0",
                _object(
                    {
                        "rules": {
                            "type": "array",
                            "title": "Rules",
                            "description": "Checked in order; the first rule whose group the user belongs to wins.",
                            "minItems": 1,
                            "items": {
                                "type": "object",
                                "properties": {
                                    "group": {"type": "string", "title": "Group", "minLength": 1, "maxLength": 100},
                                    "url": {
                                        "type": "string",
                                        "title": "Redirect URL",
                                        "description": "An absolute https URL.",
                                        "format": "uri",
                                        "pattern": "^https://",
                                        "maxLength": 2000,
                                    },
                                },
                                "required": ["group", "url"],
                                "additionalProperties": False,
                            },
                        }
                    },
                    ["rules"],
                    "Redirect by group",
                ),
                ["login.post-auth", "login.post-login"],
            )
        ],
    ),
]

_BY_SLUG = {template.slug: template for template in PLATFORM_TEMPLATES}


def get_template(slug: str) -> PlatformTemplate | None:
    return _BY_SLUG.get(slug)
