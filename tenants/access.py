"""Access helpers every view starts with.

The tenant comes from the URL. An operator who is not a member of it (and holds no single-object
grant in it) gets the same 404 as for a tenant that does not exist, so tenant slugs do not leak.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar, cast

from django.apps import apps
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_cache_control
from guardian.utils import get_user_obj_perms_model

from tenants.acting import Acting
from tenants.audit_hooks import record_refused_tenant
from tenants.invitations import InvitationNotValid, pending_invitation
from tenants.models import Invitation, Membership, Tenant
from tenants.permissions import has_object_perm, objects_with_perm
from tenants.roles import OBJECT_PERMS_BY_MODEL, TENANT_ABILITIES, Role

M = TypeVar("M", bound=models.Model)
QS = TypeVar("QS", bound=models.QuerySet[Any])


@dataclass(frozen=True)
class TenantAccess:
    """What the signed-in operator may do in the tenant named by the URL."""

    tenant: Tenant
    user: Any
    membership: Membership | None
    # Built once per request; every write service the view calls takes it as `acting=`.
    acting: Acting

    @property
    def role(self) -> Role | None:
        return self.membership.role_enum if self.membership else None

    def can(self, ability: str) -> bool:
        """Tenant-wide abilities (create an action, manage tokens); object rights are separate."""
        return self.role is not None and self.role.includes(TENANT_ABILITIES[ability])

    def has_perm(self, perm: str, obj: models.Model) -> bool:
        """Whether the operator holds `perm` on `obj` (for showing or hiding a control)."""
        return has_object_perm(self.user, perm, obj)

    def require(self, ability: str) -> None:
        if not self.can(ability):
            raise PermissionDenied(f"Your role does not allow this ({ability.replace('_', ' ')}).")


def _holds_single_object_grant(user: Any, tenant: Tenant) -> bool:
    for model_key in OBJECT_PERMS_BY_MODEL:
        model = apps.get_model(model_key)
        perm_model: Any = get_user_obj_perms_model(cast(Any, model))
        if perm_model.objects.filter(user=user, content_object__tenant=tenant).exists():
            return True
    return False


def tenant_access(request: HttpRequest, tenant_slug: str) -> TenantAccess:
    """Resolve the URL's tenant for the signed-in operator, or 404."""
    user = request.user
    if not user.is_authenticated or not user.is_active:
        raise Http404("No such tenant")
    membership = Membership.objects.select_related("tenant").filter(tenant__slug=tenant_slug, user=user).first()
    if membership is not None:
        acting = Acting.for_operator(request, membership.role_enum)
        return TenantAccess(tenant=membership.tenant, user=user, membership=membership, acting=acting)
    tenant = Tenant.objects.filter(slug=tenant_slug).first()
    if tenant is not None and _holds_single_object_grant(user, tenant):
        acting = Acting.for_operator(request, None)
        return TenantAccess(tenant=tenant, user=user, membership=None, acting=acting)
    # Into the platform security log, never the tenant's audit (see audit_app.security).
    record_refused_tenant(request, tenant_slug, tenant_exists=tenant is not None)
    raise Http404("No such tenant")


def visible(access: TenantAccess, perm: str, queryset: QS) -> QS:
    """The part of `queryset` inside the tenant that the operator holds `perm` on."""
    return objects_with_perm(access.user, perm, queryset.filter(tenant=access.tenant))


def get_visible_or_404(access: TenantAccess, view_perm: str, queryset: models.QuerySet[M], **lookup: Any) -> M:
    """Fetch one object the operator may see; "doesn't exist" and "can't see" both answer 404."""
    obj = visible(access, view_perm, queryset).filter(**lookup).first()
    if obj is None:
        raise Http404("Not found")
    return obj


def require_object_perm(access: TenantAccess, perm: str, obj: models.Model) -> None:
    """403 for a visible object the operator may not change in this way."""
    if not access.has_perm(perm, obj):
        raise PermissionDenied("Your role does not allow this.")


def tenant_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Sign-in, then the URL's tenant, before anything else about the request is looked at, so an
    outsider gets the same 404 from every URL of a tenant (not a 405 or a form error first).
    The view receives the resolved `TenantAccess` in place of the tenant slug."""

    @login_required
    @wraps(view)
    def with_tenant(request: HttpRequest, tenant_slug: str, **kwargs: Any) -> HttpResponse:
        return view(request, tenant_access(request, tenant_slug), **kwargs)

    return with_tenant


def invitation_not_valid(request: HttpRequest) -> HttpResponse:
    """The one answer for a link that is unknown, expired, revoked or used (404, no detail)."""
    response = render(request, "tenants/invitation_invalid.html", status=404)
    patch_cache_control(response, no_store=True)
    return response


@dataclass(frozen=True)
class InvitationLink:
    """A pending invitation as reached through its link; the secret is kept to link on with."""

    invitation: Invitation
    token: str


def invitation_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The pending invitation named by the link's secret, for whoever holds the link, signed in
    or not (the invitee is no member yet), before anything else about the request is looked at.
    Every link that does not name a pending invitation gets `invitation_not_valid`. The view
    receives an `InvitationLink` in place of the secret; no answer is cached, as it carries it."""

    @wraps(view)
    def with_invitation(request: HttpRequest, invitation_token: str, **kwargs: Any) -> HttpResponse:
        try:
            invitation = pending_invitation(invitation_token)
        except InvitationNotValid:
            return invitation_not_valid(request)
        response = view(request, InvitationLink(invitation, invitation_token), **kwargs)
        patch_cache_control(response, no_store=True)
        return response

    return with_invitation
