"""Templates shared by several apps live in templates/components/ (house style): a page of one app
that includes or extends another app's template is a component in the wrong place."""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
APP_FOLDERS = {"actions_app", "audit_app", "flows_app", "tenants", "registration"}
REFERENCE = re.compile(r"""\{%\s*(?:include|extends)\s+["']([a-z_]+)/[^"'#]+(?:#[^"']*)?["']""")


def test_no_app_includes_a_template_of_another_app() -> None:
    crossings = []
    for template in TEMPLATES.rglob("*.html"):
        folder = template.relative_to(TEMPLATES).parts[0]
        for referenced_app in REFERENCE.findall(template.read_text()):
            if referenced_app in APP_FOLDERS and folder in APP_FOLDERS and referenced_app != folder:
                crossings.append(f"{template.relative_to(TEMPLATES)} includes a template of {referenced_app}")
    assert crossings == []
