"""Static files as production has them (DJANGO_ENV=production: hashed, compressed manifest
storage): collectstatic takes Monaco as npm ships it, and the custom-action editor finds every
Monaco file under its hashed name. tests/production/walk.py deploys the whole thing and uses it
in chromium; these are the quick checks that run with every `make test`."""

from __future__ import annotations

import json
import re
import runpy
import shutil
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

MONACO_MIN = Path(django_settings.BASE_DIR) / "node_modules" / "monaco-editor" / "min"
HASHED = r"\.[0-9a-f]{12}"


@pytest.fixture
def production_static(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The test settings with production's static files storage, collecting into a temporary
    STATIC_ROOT and from a copy of the given Monaco files only (all 25 MB would take seconds)."""
    monkeypatch.setenv("DJANGO_ENV", "production")
    monkeypatch.setenv("DJANGO_SECRET_KEY", "test-only-" + "x" * 40)
    production = runpy.run_path(str(Path(django_settings.BASE_DIR) / "config" / "settings.py"))
    settings.STORAGES = {**settings.STORAGES, "staticfiles": production["STORAGES"]["staticfiles"]}
    settings.WHITENOISE_KEEP_ONLY_HASHED_FILES = production.get("WHITENOISE_KEEP_ONLY_HASHED_FILES", False)
    settings.STATIC_ROOT = tmp_path / "collected"

    def collect(*monaco_files: str) -> dict[str, str]:
        monaco = tmp_path / "monaco"
        for name in monaco_files:
            (monaco / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(MONACO_MIN / name, monaco / name)
        settings.STATICFILES_DIRS = [Path(django_settings.BASE_DIR) / "static", ("monaco", monaco)]
        call_command("collectstatic", "--noinput", verbosity=0)
        manifest: dict[str, str] = json.loads((tmp_path / "collected" / "staticfiles.json").read_text())["paths"]
        return manifest

    return collect


def test_collectstatic_takes_monacos_loader_which_names_a_source_map_npm_does_not_ship(
    production_static: Any,
) -> None:
    assert "sourceMappingURL=../../min-maps/vs/loader.js.map" in (MONACO_MIN / "vs" / "loader.js").read_text()
    manifest = production_static("vs/loader.js")
    assert re.fullmatch(rf"monaco/vs/loader{HASHED}\.js", manifest["monaco/vs/loader.js"])


def test_the_editor_loads_monaco_and_its_typescript_worker_by_hashed_names(
    production_static: Any, client: Any, personas: Any
) -> None:
    ts_worker = next((MONACO_MIN / "vs" / "assets").glob("ts.worker-*.js")).name
    production_static("vs/loader.js", "vs/editor/editor.main.js", "vs/editor/editor.main.css", f"vs/assets/{ts_worker}")
    client.force_login(personas.editor)
    response = client.get("/t/acme/actions/new/", {"starter": "empty"})
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(rf'<script src="/static/monaco/vs/loader{HASHED}\.js" defer>', html)
    found = re.search(r'<script id="monaco-paths" type="application/json">(.*?)</script>', html)
    assert found
    paths = json.loads(found.group(1))
    # Module ids map to URLs without ".js" (the loader appends it), so the same entry serves
    # require.toUrl("vs/assets/ts.worker-….js"), which is how Monaco starts its TypeScript worker.
    assert re.fullmatch(rf"/static/monaco/vs/editor/editor\.main{HASHED}", paths["vs/editor/editor.main"])
    worker_id = "vs/assets/" + ts_worker.removesuffix(".js")
    assert re.fullmatch(rf"/static/monaco/{re.escape(worker_id)}{HASHED}", paths[worker_id])
    assert re.fullmatch(rf"/static/monaco/vs/editor/editor\.main{HASHED}\.css", paths["vs/editor/editor.main.css"])
    assert "vs" not in paths  # no way back to the plain names, which production does not keep


def test_in_development_monaco_loads_from_its_folder(client: Any, personas: Any) -> None:
    client.force_login(personas.editor)
    html = client.get("/t/acme/actions/new/", {"starter": "empty"}).content.decode()
    found = re.search(r'<script id="monaco-paths" type="application/json">(.*?)</script>', html)
    assert found
    assert json.loads(found.group(1)) == {"vs": "/static/monaco/vs"}
