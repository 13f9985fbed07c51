"""The invitation link (/invitations/<secret>/): not tenant-scoped, since the invitee is no member
yet. Whoever holds the link sees the invitation; only an operator whose account email is the
invited address can accept it, signed in already or through the small sign-up form here."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from tenants.access import InvitationLink, invitation_not_valid, invitation_view
from tenants.acting import Acting
from tenants.forms import InvitationSignUpForm
from tenants.invitations import (
    AccountExists,
    AlreadyMember,
    InvitationForAnotherAddress,
    InvitationNotValid,
    UsernameTaken,
    accept_invitation,
    is_invited_address,
    sign_up_with_invitation,
)
from tenants.models import Membership
from tenants.usernames import UsernameNotAllowed

# The account was created a moment ago by this request: there is no password to check, so the
# sign-in names the backend itself (axes' backend only guards passwords typed at sign-in).
SIGN_UP_BACKEND = "django.contrib.auth.backends.ModelBackend"


def render_invitation(request: HttpRequest, link: InvitationLink) -> HttpResponse:
    """The invitation as the visitor stands to it: signed out (sign in or sign up), signed in as
    another address (403: sign in as the invited one), a member already, or able to accept."""
    user: Any = request.user
    context: dict[str, Any] = {"link": link, "invitation": link.invitation}
    status = 200
    if user.is_authenticated:
        context["membership"] = Membership.objects.filter(tenant=link.invitation.tenant, user=user).first()
        context["other_address"] = not is_invited_address(link.invitation, user)
        status = 403 if context["other_address"] else 200
    return render(request, "tenants/invitation.html", context, status=status)


def _joined(request: HttpRequest, membership: Membership) -> HttpResponse:
    messages.success(request, f"You joined {membership.tenant.name} as {membership.role}.")
    return redirect("actions:list", tenant_slug=membership.tenant.slug)


@invitation_view
@require_GET
def invitation_page(request: HttpRequest, link: InvitationLink) -> HttpResponse:
    return render_invitation(request, link)


@invitation_view
@require_POST
def invitation_accept(request: HttpRequest, link: InvitationLink) -> HttpResponse:
    """Accept as the signed-in operator; a signed-out visitor is shown the invitation again."""
    if not request.user.is_authenticated:
        return redirect("invitations:page", invitation_token=link.token)
    try:
        # No tenant role: an invitee is not a member yet, and accepting checks none.
        membership = accept_invitation(link.invitation, acting=Acting.for_operator(request, None))
    except InvitationNotValid:
        return invitation_not_valid(request)
    except (InvitationForAnotherAddress, AlreadyMember):
        return render_invitation(request, link)
    return _joined(request, membership)


@invitation_view
@require_http_methods(["GET", "POST"])
def invitation_sign_up(request: HttpRequest, link: InvitationLink) -> HttpResponse:
    """Create an account for the invited address and join with it. Signed-in operators go back to
    the invitation, where they accept or are told to sign in as the invited address."""
    if request.user.is_authenticated:
        return redirect("invitations:page", invitation_token=link.token)
    # Viewing the page says nothing about whether the address has an account (the admin who made
    # the link holds it too); only a sign-up attempt does, and that uses the invitation up.
    context: dict[str, Any] = {"link": link, "invitation": link.invitation}
    form = InvitationSignUpForm(request.POST or None, invited_email=link.invitation.email)
    if request.method == "POST" and form.is_valid():
        try:
            user, membership = sign_up_with_invitation(
                link.invitation,
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password1"],
                acting=Acting.for_visitor(request, "invitation sign-up"),
            )
        except InvitationNotValid:
            return invitation_not_valid(request)
        except AccountExists:
            return render(request, "registration/sign_up.html", context | {"account_exists": True})
        except (UsernameTaken, UsernameNotAllowed) as error:
            form.add_error("username", str(error))
        else:
            login(request, user, backend=SIGN_UP_BACKEND)
            return _joined(request, membership)
    return render(request, "registration/sign_up.html", context | {"form": form})
