"""Forms of the custom-action editor. They check shapes; the domain rules live in versioning."""

from __future__ import annotations

from typing import Any

from django import forms

from actions_app.egress import egress_hosts_from_text
from actions_app.triggers import ALL_TRIGGERS
from actions_app.versioning import BUMPS, InvalidDraft, VersionDraft
from core.json_text import parse_json_text

BUMP_CHOICES = [
    ("patch", "Patch — fixes"),
    ("minor", "Minor — new behaviour, compatible config"),
    ("major", "Major — incompatible change"),
]


def parse_schema_text(text: str) -> Any:
    """JSON text of a config schema → value; empty text is an empty object schema."""
    if not text.strip():
        return {"type": "object", "properties": {}}
    return parse_json_text(text)


class ActionEditorForm(forms.Form):
    """The editor's save form: source, metadata and how to number the new version."""

    name = forms.CharField(max_length=120, help_text="Shown in the Actions list and flow editor.")
    slug = forms.CharField(
        max_length=80,
        required=False,
        help_text="Derived from the name; fixed after the first save. Lowercase letters, digits, hyphens.",
    )
    source = forms.CharField(strip=False, widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false"}))
    compatible_triggers = forms.MultipleChoiceField(
        choices=[(t, t) for t in ALL_TRIGGERS],
        widget=forms.CheckboxSelectMultiple,
        help_text="The trigger slots this action may be attached to.",
        error_messages={"required": "Choose at least one trigger slot this action can run in."},
    )
    config_schema = forms.CharField(
        strip=False,
        required=False,
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false"}),
        help_text="JSON Schema (2020-12) of the config each binding fills in; it becomes the config form.",
    )
    egress_hosts = forms.CharField(
        required=False,
        label="Outbound hosts",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "autocomplete": "off"}),
        help_text="Hosts the code may call with fetch, one per line: api.example.com, *.example.com, "
        "with :port when it is not 443. None: the code makes no calls. A change is a new version.",
    )
    bump = forms.ChoiceField(choices=BUMP_CHOICES, initial="patch", widget=forms.RadioSelect, required=False)
    version = forms.CharField(
        max_length=40, required=False, help_text="Or type an explicit higher version such as 2.0.0."
    )
    save_anyway = forms.BooleanField(
        required=False,
        label="Save anyway, with TypeScript errors",
        help_text="Recorded on the version. A version with errors cannot be published.",
    )
    base_version = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, editing_existing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing_existing:
            # An existing action's name and slug are not part of a version.
            self.fields["name"].required = False
            self.fields["slug"].disabled = True

    def clean_config_schema(self) -> Any:
        return parse_schema_text(self.cleaned_data.get("config_schema", ""))

    def clean_egress_hosts(self) -> list[str]:
        return egress_hosts_from_text(self.cleaned_data.get("egress_hosts", ""))

    def clean_bump(self) -> str:
        return self.cleaned_data.get("bump") or "patch"

    def draft(self) -> VersionDraft:
        return VersionDraft(
            source=self.cleaned_data["source"],
            config_schema=self.cleaned_data["config_schema"],
            compatible_triggers=list(self.cleaned_data["compatible_triggers"]),
            egress_hosts=self.cleaned_data["egress_hosts"],
        )

    def add_domain_errors(self, error: InvalidDraft) -> None:
        for name, messages in error.errors.items():
            field = name if name in self.fields else None
            for message in messages:
                self.add_error(field, message)


assert {choice for choice, _ in BUMP_CHOICES} == set(BUMPS)


class SecretForm(forms.Form):
    """Add or replace one secret of a custom action. The name and value rules are the service's
    (actions_app.secrets); the value is never rendered back into the page."""

    name = forms.CharField(
        max_length=64,
        help_text="Upper-case letters, digits and underscores, starting with a letter (API_KEY). "
        "An existing name replaces that secret's value.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "class": "mono"}),
    )
    value = forms.CharField(
        strip=False,
        help_text="At most 4 KiB. Stored encrypted and never shown again; code reads it as input.secrets.NAME.",
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}, render_value=False),
    )
