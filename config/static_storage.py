"""Static files in production: WhiteNoise's hashed, compressed manifest storage, minus one
rewrite that the npm front-end packages cannot pass, and a collectstatic that leaves out the
parts of Monaco the editor never loads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib.staticfiles.finders import FileSystemFinder
from django.contrib.staticfiles.storage import HashedFilesMixin
from django.contrib.staticfiles.utils import matches_patterns
from django.core.files.storage import Storage
from whitenoise.storage import CompressedManifestStaticFilesStorage

# Django's CSS patterns (url(), @import, source maps) are kept; its one JS pattern rewrites
# `//# sourceMappingURL=` comments to hashed names and fails on a map that is not there.
# Monaco's vs/loader.js names `min-maps/vs/loader.js.map`, which the npm package does not ship,
# and our own scripts have no source maps.
_CSS_PATTERNS = tuple(entry for entry in HashedFilesMixin.patterns if entry[0] == "*.css")

# Monaco's translations (loaded only for a non-English locale) and its stand-alone language
# entry points and workers (editor.main starts the workers in vs/assets instead): 11 MB of 25.
MONACO_PREFIX = "monaco"
MONACO_NEVER_LOADED = ["vs/nls/*", "vs/language/*"]


class ManifestStaticFilesStorage(CompressedManifestStaticFilesStorage):
    patterns = _CSS_PATTERNS


class StaticFilesDirsFinder(FileSystemFinder):
    """Django's STATICFILES_DIRS finder; what it lists for collectstatic leaves out Monaco's
    files that the editor never loads. Finding one by name (runserver) still works."""

    def list(self, ignore_patterns: Any) -> Iterator[tuple[str, Storage]]:
        for path, storage in super().list(ignore_patterns):
            if getattr(storage, "prefix", None) == MONACO_PREFIX and matches_patterns(path, MONACO_NEVER_LOADED):
                continue
            yield path, storage
