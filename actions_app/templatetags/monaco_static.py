"""Where Monaco's AMD loader finds its files: `{% monaco_paths as paths %}` for require.config.

In production every static file has a hashed name (config.static_storage), and Monaco's modules
load each other by module id ("vs/editor-BdtEMBbM") and by URLs made from ids
(`require.toUrl("./assets/ts.worker-g3pjEjl4.js")` for the TypeScript worker). The loader maps an
id to a URL by the longest matching `paths` prefix and appends ".js" when the URL lacks it, so one
entry per file, id and URL both without ".js", serves modules and worker URLs alike; other files
(the editor's CSS) are mapped under their full names.
"""

from __future__ import annotations

from django import template
from django.contrib.staticfiles.storage import staticfiles_storage
from django.templatetags.static import static

register = template.Library()

MONACO_STATIC_DIR = "monaco/"  # STATICFILES_DIRS prefix of node_modules/monaco-editor/min
MONACO_FILE_TYPES = (".js", ".css")


@register.simple_tag
def monaco_paths() -> dict[str, str]:
    """require.config `paths`: each Monaco module id to its hashed URL, from the staticfiles
    manifest; without a manifest (development) the one folder all ids live under. A manifest
    never has an entry for a folder, so asking it for "monaco/vs" would be a server error."""
    hashed_files: dict[str, str] | None = getattr(staticfiles_storage, "hashed_files", None)
    if hashed_files is None:
        return {"vs": static(MONACO_STATIC_DIR + "vs")}
    names = [
        name for name in hashed_files if name.startswith(MONACO_STATIC_DIR + "vs/") and name.endswith(MONACO_FILE_TYPES)
    ]
    paths = {}
    for name in sorted(names):
        module_id, url = name.removeprefix(MONACO_STATIC_DIR), staticfiles_storage.url(name)
        if name.endswith(".js"):
            module_id, url = module_id.removesuffix(".js"), url.removesuffix(".js")
        paths[module_id] = url
    return paths
