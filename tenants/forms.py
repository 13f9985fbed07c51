"""Forms of the tenant settings page. They check shapes; who may do what is the services' rule."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import ValidationError
from django.utils import timezone

from tenants.models import API_SCOPES
from tenants.roles import Role
from tenants.usernames import MAX_LENGTH, MIN_LENGTH, UsernameNotAllowed, check_username_shape

SCOPE_HELP = {
    "actions:read": "list actions and read their versions and source",
    "actions:write": "create custom actions and save new versions",
    "actions:publish": "publish versions so flows can pin them",
    "flows:read": "read flows, their revisions and bindings",
    "flows:write": "change the actions attached to flow slots",
    "audit:read": "read the audit log",
    "runtime:execute": "run flows and test action versions",
}
EXPIRY_DAYS = {"30": 30, "90": 90, "365": 365}
EXPIRY_ON_DATE = "date"
EXPIRY_NEVER = "never"
EXPIRY_CHOICES = [
    ("30", "In 30 days"),
    ("90", "In 90 days"),
    ("365", "In 1 year"),
    (EXPIRY_ON_DATE, "On a date…"),
    (EXPIRY_NEVER, "Never"),
]
ROLE_HELP = {
    Role.VIEWER: "reads everything in the tenant",
    Role.EDITOR: "also creates and edits custom actions and flows",
    Role.ADMIN: "also publishes versions and manages API tokens and members",
    Role.OWNER: "also deletes actions and flows, and manages owners",
}


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="Where the token is used, e.g. “CI deploy” or “Terraform”. Shown in the audit log.",
        error_messages={"required": "Give the token a name."},
    )
    scopes = forms.MultipleChoiceField(
        choices=[(scope, f"{scope} — {SCOPE_HELP[scope]}") for scope in API_SCOPES],
        widget=forms.CheckboxSelectMultiple,
        help_text="What the token may do. Grant only what the tool needs.",
        error_messages={"required": "Choose at least one scope."},
    )
    expiry = forms.ChoiceField(
        label="Expires",
        choices=EXPIRY_CHOICES,
        initial="90",
        help_text="After this the token stops working. “Never” is convenient and risky.",
    )
    expires_on = forms.DateField(
        label="Expiry date",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Only with “On a date…”: the token stops working at 00:00 UTC on this day.",
        error_messages={"invalid": "Enter a date as YYYY-MM-DD."},
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        expiry, expires_on = cleaned.get("expiry"), cleaned.get("expires_on")
        if expiry == EXPIRY_ON_DATE and expires_on is None and "expires_on" not in self.errors:
            self.add_error("expires_on", "Pick the day the token stops working.")
        elif expiry == EXPIRY_ON_DATE and expires_on is not None and expires_on <= timezone.now().date():
            self.add_error("expires_on", "Pick a day after today.")
        elif expiry != EXPIRY_ON_DATE and expires_on is not None:
            # Two answers to one question: ask rather than silently drop the date.
            self.add_error("expires_on", "You also chose an expiry above: choose “On a date…” or clear this date.")
        return cleaned

    def expires_at(self) -> datetime | None:
        expiry = self.cleaned_data["expiry"]
        if expiry == EXPIRY_NEVER:
            return None
        if expiry == EXPIRY_ON_DATE:
            day: date = self.cleaned_data["expires_on"]
            return datetime.combine(day, time.min, tzinfo=UTC)
        return timezone.now() + timedelta(days=EXPIRY_DAYS[expiry])


def role_choices(roles: list[Role]) -> list[tuple[str, str]]:
    return [(role.value, f"{role.value.capitalize()} — {ROLE_HELP[role]}") for role in roles]


class _RoleField(forms.ChoiceField):
    def __init__(self, grantable: list[Role], **kwargs: Any) -> None:
        names = ", ".join(role.value for role in grantable)
        refusal = f"Choose one of the roles you can give: {names}."
        if Role.OWNER not in grantable:
            refusal += " Only an owner can make someone an owner."
        super().__init__(
            choices=role_choices(grantable),
            error_messages={"invalid_choice": refusal, "required": "Choose a role."},
            **kwargs,
        )


class InviteMemberForm(forms.Form):
    email = forms.EmailField(
        label="Email",
        max_length=254,
        help_text=(
            "The person's email address. They join by opening the invitation link and signing in with "
            "an account that has this email, or by creating one. The console sends no mail: you get "
            "the link here, once, to pass on; it is also written to the server log."
        ),
        error_messages={"required": "Enter the email address to invite.", "invalid": "Enter a valid email address."},
    )

    def __init__(self, *args: Any, grantable: list[Role], lifetime_days: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"] = _RoleField(
            grantable,
            initial=Role.VIEWER.value,
            help_text=(
                f"The role they get when they accept. Roles nest: each one includes the ones above it. "
                f"The link works once, for {lifetime_days} days."
            ),
        )

    @property
    def role(self) -> Role:
        return Role(self.cleaned_data["role"])


class InvitationSignUpForm(UserCreationForm):
    """A new operator account for an invited address: username and password; the email is the
    invited one and is not a field. Django's password validators apply, with the username and
    that email known to them."""

    def __init__(self, *args: Any, invited_email: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instance.email = invited_email
        username = self.fields["username"]
        username.help_text = (
            f"The name you sign in with and others see you by: {MIN_LENGTH} to {MAX_LENGTH} ASCII letters, "
            "digits and . _ - characters, not like an existing username."
        )
        username.widget.attrs["maxlength"] = str(MAX_LENGTH)
        self.fields["password2"].label = "Password again"
        username.error_messages["required"] = "Choose a username."
        self.fields["password1"].error_messages["required"] = "Choose a password."
        self.fields["password2"].error_messages["required"] = "Enter the same password again."

    def clean_username(self) -> str:
        # First, so a name refused for its characters is told so on every database (PostgreSQL's
        # UPPER('alıce') is 'ALICE', which the duplicate check below would report instead).
        username = self.cleaned_data.get("username")
        if username:
            try:
                check_username_shape(username)  # look-alikes are the service's check (it reads every username)
            except UsernameNotAllowed as refusal:
                raise ValidationError(str(refusal), code="username_not_allowed") from refusal
        return super().clean_username()


class ChangeRoleForm(forms.Form):
    def __init__(self, *args: Any, grantable: list[Role], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"] = _RoleField(grantable)

    @property
    def role(self) -> Role:
        return Role(self.cleaned_data["role"])
