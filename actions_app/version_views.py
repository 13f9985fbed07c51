"""Version history of a custom action: one version, publish, restore as new, diff of two."""

from __future__ import annotations

import difflib
import json
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from actions_app.models import Action, ActionVersion
from actions_app.versioning import (
    CompileFailed,
    InvalidDraft,
    NothingChanged,
    VersionDraft,
    publish_version,
    save_action_version,
)
from tenants.access import TenantAccess, get_visible_or_404, require_object_perm, tenant_view
from tenants.pages import render_tenant_page


def _version_or_404(access: TenantAccess, action_slug: str, label: str) -> ActionVersion:
    action = get_visible_or_404(access, "view_action", Action.objects.all(), slug=action_slug)
    version = action.versions.select_related("author", "published_by", "action").filter(version=label).first()
    if version is None:
        raise Http404("No such version")
    return version


@tenant_view
def version_detail(request: HttpRequest, access: TenantAccess, action_slug: str, version_label: str) -> HttpResponse:
    version = _version_or_404(access, action_slug, version_label)
    context = {
        "action": version.action,
        "version": version,
        "schema_text": json.dumps(version.config_schema, indent=2),
    }
    return render_tenant_page(request, access, "actions_app/version_detail.html", context)


@tenant_view
@require_POST
def version_publish(request: HttpRequest, access: TenantAccess, action_slug: str, version_label: str) -> HttpResponse:
    version = _version_or_404(access, action_slug, version_label)
    require_object_perm(access, "publish_action", version.action)
    try:
        publish_version(version, acting=access.acting)
    except InvalidDraft as error:
        messages.error(request, " ".join(error.errors.get("version", [str(error)])))
    else:
        messages.success(request, f"Published {version.action.slug} {version.version}. Flows can now pin it.")
    return redirect("actions:detail", tenant_slug=access.tenant.slug, action_slug=version.action.slug)


@tenant_view
@require_POST
def version_restore(request: HttpRequest, access: TenantAccess, action_slug: str, version_label: str) -> HttpResponse:
    """Save an old version's content as the next version (history is never rewritten)."""
    old = _version_or_404(access, action_slug, version_label)
    require_object_perm(access, "change_action", old.action)
    draft = VersionDraft(old.source, old.config_schema, list(old.compatible_triggers), list(old.egress_hosts))
    try:
        outcome = save_action_version(old.action, draft, save_anyway=old.saved_with_errors, acting=access.acting)
    except NothingChanged:
        messages.info(request, f"{old.version} is already the latest content; nothing was saved.")
    except (CompileFailed, InvalidDraft) as error:
        messages.error(request, f"{old.version} could not be restored: {error}")
    else:
        messages.success(request, f"Restored {old.version} as {outcome.version.version}.")
    return redirect("actions:detail", tenant_slug=access.tenant.slug, action_slug=old.action.slug)


def side_by_side(left: str, right: str) -> list[dict[str, Any]]:
    """Rows of a side-by-side diff: each row has left/right line numbers, texts and a change kind."""
    left_lines, right_lines = left.splitlines(), right.splitlines()
    rows: list[dict[str, Any]] = []
    matcher = difflib.SequenceMatcher(a=left_lines, b=right_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        span = max(i2 - i1, j2 - j1)
        for offset in range(span):
            i, j = i1 + offset, j1 + offset
            rows.append(
                {
                    "kind": tag,
                    "left_no": i + 1 if i < i2 else None,
                    "left": left_lines[i] if i < i2 else "",
                    "right_no": j + 1 if j < j2 else None,
                    "right": right_lines[j] if j < j2 else "",
                }
            )
    return rows


@tenant_view
def version_diff(request: HttpRequest, access: TenantAccess, action_slug: str) -> HttpResponse:
    action = get_visible_or_404(access, "view_action", Action.objects.all(), slug=action_slug)
    versions = list(action.versions.all())
    labels = [v.version for v in versions]
    left_label = request.GET.get("from") or (labels[1] if len(labels) > 1 else labels[0] if labels else "")
    right_label = request.GET.get("to") or (labels[0] if labels else "")
    by_label = {v.version: v for v in versions}
    if left_label not in by_label or right_label not in by_label:
        raise Http404("No such version")
    left, right = by_label[left_label], by_label[right_label]
    context = {
        "action": action,
        "versions": versions,
        "left": left,
        "right": right,
        "source_rows": side_by_side(left.source, right.source),
        "schema_rows": side_by_side(
            json.dumps(left.config_schema, indent=2, sort_keys=True),
            json.dumps(right.config_schema, indent=2, sort_keys=True),
        ),
        "triggers_removed": [t for t in left.compatible_triggers if t not in right.compatible_triggers],
        "triggers_added": [t for t in right.compatible_triggers if t not in left.compatible_triggers],
        "hosts_removed": [h for h in left.egress_hosts if h not in right.egress_hosts],
        "hosts_added": [h for h in right.egress_hosts if h not in left.egress_hosts],
        "hosts_kept": [h for h in right.egress_hosts if h in left.egress_hosts],
    }
    return render_tenant_page(request, access, "actions_app/version_diff.html", context)
