"""The form of the flows list's "New flow" page. It checks shapes; uniqueness is the service's rule."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django import forms
from django.http import QueryDict
from django.utils.text import slugify

from actions_app.triggers import FLOW_KINDS, FLOW_SLOTS
from flows_app.models import Flow
from flows_app.services import RESERVED_FLOW_SLUGS

KIND_CHOICES = [(kind, f"{kind} — slots: {', '.join(FLOW_SLOTS[kind])}") for kind in FLOW_KINDS]
SLUG_MESSAGE = "Use 2–80 lowercase letters, digits and hyphens, starting and ending with a letter or digit."


def derive_flow_slug(name: str) -> str:
    """`[a-z0-9-]` from a name: "Login (staging)" → "login-staging"."""
    return re.sub(r"[^a-z0-9]+", "-", slugify(name)).strip("-")[:80].strip("-")


def _with_value(data: Mapping[str, Any], key: str, value: str) -> Mapping[str, Any]:
    if isinstance(data, QueryDict):
        changed = data.copy()
        changed[key] = value
        return changed
    return {**data, key: value}


class NewFlowForm(forms.Form):
    """A new flow: its name, slug (derived from the name when left blank) and kind."""

    name = forms.CharField(max_length=120, help_text="Shown in the flows list, e.g. “Login (staging)”.")
    slug = forms.CharField(
        max_length=80,
        required=False,
        help_text="Used in URLs and the API; fixed once created. Lowercase letters, digits, hyphens. "
        "Leave empty to derive it from the name (“Login (staging)” → login-staging).",
    )
    kind = forms.ChoiceField(
        choices=KIND_CHOICES,
        widget=forms.RadioSelect,
        help_text="The kind of event the flow runs for; it decides the trigger slots.",
    )

    def clean_slug(self) -> str:
        slug: str = self.cleaned_data.get("slug", "").strip()
        if not slug:
            slug = derive_flow_slug(self.data.get("name", ""))
            if not slug:
                raise forms.ValidationError("Type a slug, or a name with letters or digits to derive it from.")
            # Shown back in the field if the form comes back with errors, so the operator sees
            # (and can edit) the slug that was derived.
            self.data = _with_value(self.data, "slug", slug)
        try:
            Flow._meta.get_field("slug").run_validators(slug)
        except forms.ValidationError as error:
            raise forms.ValidationError(SLUG_MESSAGE) from error
        if slug in RESERVED_FLOW_SLUGS:
            raise forms.ValidationError(f"“{slug}” is reserved by the console; choose another slug.")
        return slug

    def flow_fields(self) -> dict[str, Any]:
        return {key: self.cleaned_data[key] for key in ("name", "slug", "kind")}


class DuplicateFlowForm(NewFlowForm):
    """A copy of a flow: its name and slug; the kind is the source's."""

    kind = None  # type: ignore[assignment]


ON_ERROR_CHOICES = [
    ("block", "block — fail closed: an error in this action blocks the sign-in"),
    ("continue", "continue — the sign-in goes on as if the action had not run"),
]


class AttachForm(forms.Form):
    """Where and how to attach one action: a published version, a compatible slot of a flow the
    operator may edit, and on_error. The config is the version's own schema form beside it."""

    version = forms.ChoiceField(help_text="Only published versions can be pinned; the newest is chosen first.")
    target = forms.ChoiceField(
        label="Flow and slot",
        help_text="Slots this version declares it can run in, of flows you may edit. It runs after the "
        "slot's actions already there.",
        error_messages={"invalid_choice": "Choose one of the flows and slots offered; %(value)s is not one of them."},
    )
    on_error = forms.ChoiceField(
        label="On error",
        choices=ON_ERROR_CHOICES,
        initial="block",
        widget=forms.RadioSelect,
        help_text="When the action throws, times out or returns something not allowed in the slot.",
    )

    def __init__(self, *args: Any, versions: list[str], targets: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = [(label, label) for label in versions]  # type: ignore[attr-defined]
        self.fields["target"].choices = [("", "Choose a flow and slot…"), *targets]  # type: ignore[attr-defined]
