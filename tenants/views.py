from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from core.http import HtmxHttpRequest, parse_count
from tenants.access import TenantAccess, tenant_view
from tenants.forms import ApiTokenForm, ChangeRoleForm, InviteMemberForm, role_choices
from tenants.invitations import InvitationError, invitation_lifetime, invite_member, revoke_invitation
from tenants.models import ApiToken, Invitation, Membership, Tenant
from tenants.pages import render_tenant_page
from tenants.roles import Role
from tenants.services import (
    MemberChangeNotAllowed,
    MembershipError,
    TokenError,
    change_member_role,
    create_api_token,
    remove_member,
    revoke_api_token,
    roles_grantable_by,
)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Straight to the Actions list when the operator has one tenant; otherwise a chooser."""
    tenants = list(Tenant.objects.for_member(request.user))
    # The header's tenant switcher submits ?tenant=<slug> (works without JavaScript).
    chosen = request.GET.get("tenant")
    if chosen and any(t.slug == chosen for t in tenants):
        return redirect("actions:list", tenant_slug=chosen)
    if len(tenants) == 1:
        return redirect("actions:list", tenant_slug=tenants[0].slug)
    return render(request, "tenants/choose_tenant.html", {"tenants": tenants})


@tenant_view
def tenant_home(request: HttpRequest, access: TenantAccess) -> HttpResponse:
    return redirect("actions:list", tenant_slug=access.tenant.slug)


# --- Settings: members and API tokens (contract §8) ---
#
# Every member sees both lists (a viewer "reads everything in the tenant", and the audit log
# already shows the same facts); token secrets are never stored, so never shown after creation.
# Admins manage tokens and members below owner; only owners grant, change or remove the owner role.

MEMBERS_REGION = "members"
TOKENS_REGION = "api-tokens"
REGION_PARTIALS = {MEMBERS_REGION: "members", TOKENS_REGION: "tokens"}


@dataclass(frozen=True)
class NewToken:
    """A token just created, with the secret this one response shows."""

    token: ApiToken
    secret: str


@dataclass(frozen=True)
class NewInvitation:
    """An invitation just sent, with the link this one response shows."""

    invitation: Invitation
    link: str


@dataclass(frozen=True)
class SettingsState:
    """What one response of the settings page shows besides the stored lists."""

    token_form: ApiTokenForm | None = None
    new_token: NewToken | None = None
    confirm_revoke: str = ""
    tokens_notice: str = ""
    invite_form: InviteMemberForm | None = None
    new_invitation: NewInvitation | None = None
    confirm_revoke_invitation: str = ""
    confirm_remove: str = ""
    members_notice: str = ""
    member_error: tuple[str, str] | None = None  # (username, message) shown on that member's row


@dataclass(frozen=True)
class TokenRow:
    token: ApiToken
    status: str  # "active", "expired" or "revoked"


@dataclass(frozen=True)
class MemberRow:
    membership: Membership
    can_manage: bool
    is_last_owner: bool
    is_you: bool


@dataclass(frozen=True)
class InvitationRow:
    invitation: Invitation
    can_revoke: bool


def token_rows(tenant: Tenant) -> list[TokenRow]:
    """The tenant's tokens, usable ones first, each newest first."""
    tokens = ApiToken.objects.filter(tenant=tenant).select_related("created_by").order_by("-created_at", "-pk")
    rows = [TokenRow(token, token.status) for token in tokens]
    return sorted(rows, key=lambda row: row.status != "active")


def member_rows(access: TenantAccess) -> list[MemberRow]:
    memberships = list(
        Membership.objects.filter(tenant=access.tenant).select_related("user").order_by("user__username", "pk")
    )
    owners = sum(m.role == Role.OWNER.value for m in memberships)
    may_manage = access.can("manage_members")
    return [
        MemberRow(
            membership=m,
            can_manage=may_manage and (access.role == Role.OWNER or m.role != Role.OWNER.value),
            is_last_owner=m.role == Role.OWNER.value and owners == 1,
            is_you=m.user_id == access.user.pk,
        )
        for m in memberships
    ]


def invitation_rows(access: TenantAccess) -> list[InvitationRow]:
    """The tenant's pending invitations, newest first; admins revoke those below owner."""
    pending = Invitation.objects.pending().filter(tenant=access.tenant).select_related("invited_by")
    may_manage = access.can("manage_members")
    return [
        InvitationRow(i, can_revoke=may_manage and (access.role == Role.OWNER or i.role != Role.OWNER.value))
        for i in pending
    ]


def _invite_form(access: TenantAccess, data: Any = None) -> InviteMemberForm:
    return InviteMemberForm(data, grantable=roles_grantable_by(access.role), lifetime_days=invitation_lifetime().days)


def render_settings(
    request: HtmxHttpRequest, access: TenantAccess, state: SettingsState, region: str | None = None
) -> HttpResponse:
    """The whole settings page, or with `region` only that region's partial (for htmx)."""
    grantable = roles_grantable_by(access.role)
    context: dict[str, Any] = {
        "state": state,
        "can_manage_tokens": access.can("manage_tokens"),
        "can_manage_members": access.can("manage_members"),
        "grantable_roles": role_choices(grantable),
    }
    if region in (None, MEMBERS_REGION):
        rows = member_rows(access)
        context["member_rows"] = rows
        invitations = invitation_rows(access)
        context["invitation_rows"] = invitations
        context["invite_form"] = state.invite_form or _invite_form(access)
        context["invitation_days"] = invitation_lifetime().days
        context["confirm_remove"] = next(
            (r for r in rows if r.can_manage and r.membership.user.get_username() == state.confirm_remove), None
        )
        context["confirm_revoke_invitation"] = next(
            (r for r in invitations if r.can_revoke and str(r.invitation.pk) == state.confirm_revoke_invitation),
            None,
        )
    if region in (None, TOKENS_REGION):
        tokens = token_rows(access.tenant)
        context["token_rows"] = tokens
        context["token_form"] = state.token_form or ApiTokenForm()
        context["confirm_revoke"] = next(
            (
                r
                for r in tokens
                if context["can_manage_tokens"] and r.status == "active" and r.token.key_id == state.confirm_revoke
            ),
            None,
        )
    partial = REGION_PARTIALS[region] if region else None
    response = render_tenant_page(request, access, "tenants/settings.html", context, partial=partial)
    # A new token's secret or invitation link must not come back from any cache, back button or history.
    patch_cache_control(response, no_store=True)
    return response


def _htmx_region(request: HtmxHttpRequest) -> str | None:
    target = request.htmx.target if request.htmx else None
    return target if target in REGION_PARTIALS else None


def _settings_url(access: TenantAccess, query: str = "", region: str = "") -> str:
    url = reverse("settings:index", kwargs={"tenant_slug": access.tenant.slug})
    return url + (f"?{query}" if query else "") + (f"#{region}" if region else "")


def _changed(request: HtmxHttpRequest, access: TenantAccess, region: str, notice: str) -> HttpResponse:
    """After a change: the region again with the notice (htmx), or post/redirect/get."""
    if request.htmx:
        if region == MEMBERS_REGION:
            return render_settings(request, access, SettingsState(members_notice=notice), region)
        return render_settings(request, access, SettingsState(tokens_notice=notice), region)
    messages.success(request, notice)
    return redirect(_settings_url(access, region=region))


def _refused_on_row(request: HtmxHttpRequest, access: TenantAccess, username: str, problem: str) -> HttpResponse:
    if request.htmx:
        return render_settings(request, access, SettingsState(member_error=(username, problem)), MEMBERS_REGION)
    messages.error(request, problem)
    return redirect(_settings_url(access, region=MEMBERS_REGION))


def _left_or_moved(request: HtmxHttpRequest, url: str, notice: str) -> HttpResponse:
    """After operators change their own membership the whole page changes: load it afresh."""
    messages.success(request, notice)
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def settings_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """`tenant_view` for members only: a single-object grant (a contractor) opens no settings."""

    @tenant_view
    @wraps(view)
    def members_only(request: HttpRequest, access: TenantAccess, **kwargs: Any) -> HttpResponse:
        if access.membership is None:
            raise Http404("No such page")
        return view(request, access, **kwargs)

    return members_only


def _member_or_404(access: TenantAccess, username: str) -> Membership:
    membership = (
        Membership.objects.select_related("user", "tenant")
        .filter(tenant=access.tenant, user__username=username)
        .first()
    )
    if membership is None:
        raise Http404("No such member")
    return membership


@settings_view
@require_GET
def settings_page(request: HtmxHttpRequest, access: TenantAccess) -> HttpResponse:
    state = SettingsState(
        confirm_revoke=request.GET.get("confirm_revoke", ""),
        confirm_remove=request.GET.get("confirm_remove", ""),
        confirm_revoke_invitation=request.GET.get("confirm_revoke_invitation", ""),
    )
    return render_settings(request, access, state, _htmx_region(request))


@settings_view
@require_POST
def token_create(request: HtmxHttpRequest, access: TenantAccess) -> HttpResponse:
    """Create a token and show its secret in this response only; the page never shows it again."""
    access.require("manage_tokens")
    form = ApiTokenForm(request.POST)
    region = TOKENS_REGION if request.htmx else None
    if form.is_valid():
        try:
            token, secret = create_api_token(
                access.tenant,
                name=form.cleaned_data["name"],
                scopes=form.cleaned_data["scopes"],
                expires_at=form.expires_at(),
                acting=access.acting,
            )
        except TokenError as error:
            form.add_error(None, str(error))
        else:
            return render_settings(request, access, SettingsState(new_token=NewToken(token, secret)), region)
    return render_settings(request, access, SettingsState(token_form=form), region)


@settings_view
@require_POST
def token_revoke(request: HtmxHttpRequest, access: TenantAccess, token_key_id: str) -> HttpResponse:
    """Revoke a token. Without `confirm=yes` the operator is asked first."""
    access.require("manage_tokens")
    token = ApiToken.objects.filter(tenant=access.tenant, key_id=token_key_id).first()
    if token is None:
        raise Http404("No such token")
    if request.POST.get("confirm") != "yes":
        if request.htmx:
            return render_settings(request, access, SettingsState(confirm_revoke=token.key_id), TOKENS_REGION)
        return redirect(_settings_url(access, urlencode({"confirm_revoke": token.key_id}), TOKENS_REGION))
    if token.revoked_at is not None:
        return _changed(request, access, TOKENS_REGION, f"{token.name} ({token.key_id}) was already revoked.")
    revoke_api_token(token, acting=access.acting)
    notice = f"Revoked {token.name} ({token.key_id}): every request with it is refused from now on."
    return _changed(request, access, TOKENS_REGION, notice)


@settings_view
@require_POST
def invitation_create(request: HtmxHttpRequest, access: TenantAccess) -> HttpResponse:
    """Invite an email address. The answer is the same whether the address has an account, is a
    member already or is unknown; the link is shown in this response only."""
    access.require("manage_members")
    form = _invite_form(access, request.POST)
    region = MEMBERS_REGION if request.htmx else None
    if form.is_valid():
        try:
            invitation, link = invite_member(
                access.tenant,
                form.cleaned_data["email"],
                form.role,
                link_for=lambda token: request.build_absolute_uri(reverse("invitations:page", args=[token])),
                acting=access.acting,
            )
        except MemberChangeNotAllowed as error:
            form.add_error("role", str(error))
        except InvitationError as error:
            form.add_error(None, str(error))
        else:
            return render_settings(
                request, access, SettingsState(new_invitation=NewInvitation(invitation, link)), region
            )
    return render_settings(request, access, SettingsState(invite_form=form), region)


@settings_view
@require_POST
def invitation_revoke(request: HtmxHttpRequest, access: TenantAccess, invitation_id: str) -> HttpResponse:
    """Revoke a pending invitation. Without `confirm=yes` the operator is asked first."""
    access.require("manage_members")
    pk = parse_count(invitation_id)
    invitation = Invitation.objects.filter(tenant=access.tenant, pk=pk).first() if pk is not None else None
    if invitation is None:
        raise Http404("No such invitation")
    if not invitation.is_pending:
        notice = f"The invitation to {invitation.email} was already used, revoked or expired; nothing changed."
        return _changed(request, access, MEMBERS_REGION, notice)
    if request.POST.get("confirm") != "yes":
        if request.htmx:
            return render_settings(
                request, access, SettingsState(confirm_revoke_invitation=str(invitation.pk)), MEMBERS_REGION
            )
        query = urlencode({"confirm_revoke_invitation": invitation.pk})
        return redirect(_settings_url(access, query, MEMBERS_REGION))
    try:
        revoke_invitation(invitation, acting=access.acting)
    except MemberChangeNotAllowed as error:
        raise PermissionDenied(str(error)) from error
    notice = f"Revoked the invitation to {invitation.email}: its link no longer works."
    return _changed(request, access, MEMBERS_REGION, notice)


@settings_view
@require_POST
def member_change_role(request: HtmxHttpRequest, access: TenantAccess, member_username: str) -> HttpResponse:
    access.require("manage_members")
    membership = _member_or_404(access, member_username)
    form = ChangeRoleForm(request.POST, grantable=roles_grantable_by(access.role))
    if not form.is_valid():
        return _refused_on_row(request, access, member_username, " ".join(str(e) for e in form.errors["role"]))
    before = membership.role
    try:
        change_member_role(membership, form.role, acting=access.acting)
    except MembershipError as error:
        return _refused_on_row(request, access, member_username, f"{member_username} is still {before}: {error}")
    if before == form.role.value:
        notice = f"{member_username} already is {before}; nothing changed."
    else:
        notice = f"{member_username} is now {form.role.value} (was {before})."
    if membership.user_id == request.user.pk:
        return _left_or_moved(request, _settings_url(access), notice)
    return _changed(request, access, MEMBERS_REGION, notice)


@settings_view
@require_POST
def member_remove(request: HtmxHttpRequest, access: TenantAccess, member_username: str) -> HttpResponse:
    """Remove a member (or leave, for one's own row). Without `confirm=yes` the operator is asked first."""
    access.require("manage_members")
    membership = _member_or_404(access, member_username)
    if request.POST.get("confirm") != "yes":
        if request.htmx:
            return render_settings(request, access, SettingsState(confirm_remove=member_username), MEMBERS_REGION)
        return redirect(_settings_url(access, urlencode({"confirm_remove": member_username}), MEMBERS_REGION))
    try:
        remove_member(membership, acting=access.acting)
    except MembershipError as error:
        return _refused_on_row(request, access, member_username, f"{member_username} is still a member: {error}")
    if membership.user_id == request.user.pk:
        return _left_or_moved(request, reverse("home"), f"You left {access.tenant.name}.")
    return _changed(request, access, MEMBERS_REGION, f"Removed {member_username} from {access.tenant.name}.")
