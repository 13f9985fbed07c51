"""The Secrets panel of a custom action's page (contract §11): add or replace a secret, delete one
after a confirmation. Whoever may change the action may change its secrets; every member sees
their names. An htmx request swaps only the panel; without JavaScript each POST redirects back to
the action page, or shows the whole page again with the errors."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from actions_app.forms import SecretForm
from actions_app.models import Action, ActionKind, ActionSecret
from actions_app.secrets import SecretRefused, delete_secret, set_secret
from core.http import HtmxHttpRequest
from flows_app.action_editor_views import SECRET_FIELD_IDS, action_editor, secrets_panel
from tenants.access import TenantAccess, get_visible_or_404, require_object_perm, tenant_view
from tenants.pages import render_tenant_page

EDITOR_TEMPLATE = "actions_app/action_editor.html"


def _custom_action_or_404(access: TenantAccess, slug: str) -> Action:
    # Templates have no secrets of their own (theirs are in a binding's config): no page here.
    return get_visible_or_404(access, "view_action", Action.objects.filter(kind=ActionKind.CUSTOM), slug=slug)


def _changed(request: HtmxHttpRequest, access: TenantAccess, action: Action, notice: str) -> HttpResponse:
    if request.htmx:
        context = {"action": action, **secrets_panel(access, action, notice=notice)}
        return render_tenant_page(request, access, EDITOR_TEMPLATE, context, partial="secrets")
    messages.success(request, notice)
    url = reverse("actions:detail", kwargs={"tenant_slug": access.tenant.slug, "action_slug": action.slug})
    return redirect(url + "#secrets")


@tenant_view
@require_POST
def secret_set(request: HtmxHttpRequest, access: TenantAccess, action_slug: str) -> HttpResponse:
    """Add a secret or replace its value (who may change the action may)."""
    action = _custom_action_or_404(access, action_slug)
    require_object_perm(access, "change_action", action)
    form = SecretForm(request.POST, auto_id=SECRET_FIELD_IDS)
    if form.is_valid():
        name = form.cleaned_data["name"]
        try:
            replaced = set_secret(action, name, form.cleaned_data["value"], acting=access.acting)
        except SecretRefused as refused:
            form.add_error(refused.field, refused.message)
        else:
            return _changed(request, access, action, f"{'Replaced' if replaced else 'Added'} the secret {name}.")
    if not request.htmx:
        return action_editor(request, access, action, secret_form=form)
    # 200, not 422: htmx swaps only successful answers, and the panel shows the errors.
    context = {"action": action, **secrets_panel(access, action, form)}
    return render_tenant_page(request, access, EDITOR_TEMPLATE, context, partial="secrets")


@tenant_view
@require_http_methods(["GET", "POST"])
def secret_delete(request: HtmxHttpRequest, access: TenantAccess, action_slug: str, secret_name: str) -> HttpResponse:
    """Confirm, then delete one secret (the POST: who may change the action)."""
    action = _custom_action_or_404(access, action_slug)
    secret = action.secrets.filter(name=secret_name).first()
    if secret is None:
        raise Http404("No such secret")
    if request.method == "POST":
        require_object_perm(access, "change_action", action)
        try:
            delete_secret(action, secret_name, acting=access.acting)
        except ActionSecret.DoesNotExist as gone:
            raise Http404("No such secret") from gone
        return _changed(request, access, action, f"Deleted the secret {secret_name}.")
    context = {"action": action, "secret": secret, "can_change_secrets": access.has_perm("change_action", action)}
    return render_tenant_page(request, access, "actions_app/secret_delete.html", context)
