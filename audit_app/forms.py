"""Forms of the audit pages. They check shapes; the allowed range lives in audit_app.retention."""

from __future__ import annotations

from typing import Any

from django import forms

from audit_app.models import MAX_RETENTION_DAYS, MIN_RETENTION_DAYS

KEEP_DAYS = "days"
KEEP_FOREVER = "forever"


class RetentionForm(forms.Form):
    """How long the tenant keeps audit events: a number of days, or forever."""

    policy = forms.ChoiceField(
        label="Keep audit events",
        choices=[(KEEP_DAYS, "For a number of days"), (KEEP_FOREVER, "Forever")],
        widget=forms.RadioSelect,
        error_messages={"required": "Choose whether to keep events for a number of days or forever."},
    )
    days = forms.IntegerField(
        label="Days to keep",
        required=False,
        min_value=MIN_RETENTION_DAYS,
        max_value=MAX_RETENTION_DAYS,
        help_text=(
            f"{MIN_RETENTION_DAYS} to {MAX_RETENTION_DAYS}. Older events are deleted by the scheduled purge; "
            "the rest of the chain stays verifiable."
        ),
        error_messages={
            "invalid": "Enter a whole number of days, such as 365.",
            "min_value": f"Keep events for at least {MIN_RETENTION_DAYS} days.",
            "max_value": f"At most {MAX_RETENTION_DAYS} days (ten years); choose Forever to keep them longer.",
        },
    )

    @classmethod
    def for_current(cls, days: int | None) -> RetentionForm:
        return cls(initial={"policy": KEEP_FOREVER if days is None else KEEP_DAYS, "days": days or ""})

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("policy") == KEEP_DAYS and cleaned.get("days") is None and "days" not in self.errors:
            self.add_error("days", "Enter how many days to keep events, or choose Forever.")
        return cleaned

    @property
    def retention_days(self) -> int | None:
        """The chosen period (None: forever); only after `is_valid()`."""
        return None if self.cleaned_data["policy"] == KEEP_FOREVER else self.cleaned_data["days"]
