"""Config forms generated from JSON Schema (draft 2020-12), and server-side config validation.

Platform templates and custom actions describe their settings with a JSON Schema; this package
turns that schema into an HTML form (`build_config_form`), validates configs from forms and the API
with the same plain-word messages (`validate_config`; a binding's config through
`validate_binding_config`, which adds the checks registered for platform templates), says which schemas it cannot handle
(`check_schema_supported`) and keeps writeOnly settings out of sight (`secret_paths`, `mask_secrets`).

In a view::

    form = build_config_form(schema, data=request.POST, stored_secrets=stored)
    if form.row_change_requested or not form.is_valid():
        return render(request, "page.html", {"config_form": form})  # {{ config_form }} renders it
    save(form.cleaned_config)

Add/Remove row buttons are plain submit buttons named `{prefix}-{path}-add-row` and
`{prefix}-{path}-remove-row-{index}`; the bound form applies the change and shows itself again.
"""

from actions_app.schema_forms.form import ConfigForm, build_config_form
from actions_app.schema_forms.secret_fields import mask_secrets, secret_paths
from actions_app.schema_forms.support import SchemaProblem, UnsupportedSchema, check_schema_supported
from actions_app.schema_forms.validation import (
    register_template_config_check,
    validate_binding_config,
    validate_config,
)

__all__ = [
    "ConfigForm",
    "SchemaProblem",
    "UnsupportedSchema",
    "build_config_form",
    "check_schema_supported",
    "mask_secrets",
    "register_template_config_check",
    "secret_paths",
    "validate_binding_config",
    "validate_config",
]
