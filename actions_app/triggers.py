"""Flow kinds, their trigger slots in order, and the result kinds each slot allows (contract §2)."""

FLOW_SLOTS: dict[str, list[str]] = {
    "login": [
        "login.pre-credential-check",
        "login.post-auth",
        "login.pre-token",
        "login.post-login",
    ],
    "registration": ["registration.pre-create", "registration.post-create"],
    "password-reset": ["password-reset.requested", "password-reset.completed"],
    "token-refresh": ["token-refresh.pre-issue"],
}

FLOW_KINDS: list[str] = list(FLOW_SLOTS)
ALL_TRIGGERS: list[str] = [trigger for slots in FLOW_SLOTS.values() for trigger in slots]

ALLOWED_RESULTS: dict[str, list[str]] = {
    "login.pre-credential-check": ["continue", "block"],
    "login.post-auth": ["continue", "block", "demand_mfa", "redirect"],
    "login.pre-token": ["continue", "block"],
    "login.post-login": ["continue", "redirect"],
    "registration.pre-create": ["continue", "block"],
    "registration.post-create": ["continue"],
    "password-reset.requested": ["continue", "block"],
    "password-reset.completed": ["continue"],
    "token-refresh.pre-issue": ["continue", "block"],
}

# Slots whose `continue` may carry token claims.
CLAIM_SLOTS = {"login.pre-token", "token-refresh.pre-issue"}


def kind_of_trigger(trigger: str) -> str:
    for kind, slots in FLOW_SLOTS.items():
        if trigger in slots:
            return kind
    raise KeyError(trigger)
