"""The tenants file: one `tenant-url token` pair per line.

    # Comments start with "#", blank lines are skipped.
    http://127.0.0.1:8000/      acx_1a2b3c4d5e6f_Zm9vYmFy...
    https://eu.example.com/     env:EU_ROLLOUT_TOKEN     # the token from an environment variable

The URL is the base URL of the console (the API is under `api/v1/` below it); the token decides
the tenant. Several lines may share a URL: one console serves many tenants. Every problem is
reported with its line number, all at once, before anything is sent anywhere.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

# RFC 6750 b64token: what may follow "Bearer ".
TOKEN_RE = re.compile(r"^[A-Za-z0-9._~+/=-]+$")
ENV_PREFIX = "env:"


class TenantsFileError(ValueError):
    """The file cannot be used; `problems` name each bad line."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(problems))
        self.path = path
        self.problems = problems


@dataclass(frozen=True)
class TenantLine:
    line_no: int
    base_url: str  # always ends with "/"
    token: str

    @property
    def label(self) -> str:
        return f"line {self.line_no} ({self.base_url})"


def _strip_comment(raw: str) -> str:
    if raw.lstrip().startswith("#"):
        return ""
    # A trailing comment needs whitespace before "#": tokens and URLs never contain " #".
    return re.split(r"\s#", raw, maxsplit=1)[0].strip()


def _check_url(url: str) -> str | None:
    if "://" not in url:
        # Never echo it: with the columns swapped this field is the token.
        return "the first field must be the console's URL (http:// or https://); the format is `tenant-url token`"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"the tenant URL {url!r} must be an http:// or https:// URL with a host"
    if parts.query or parts.fragment:
        return f"the tenant URL {url!r} must be the console's base URL, without ?query or #fragment"
    try:
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        return f"the tenant URL {url!r} has an invalid port"
    return None


def _resolve_token(field: str, environ: dict[str, str]) -> tuple[str | None, str | None]:
    """(token, problem) for the second field of a line."""
    if field.startswith(ENV_PREFIX):
        name = field[len(ENV_PREFIX) :]
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            return None, f"{field!r} must name an environment variable, e.g. env:ROLLOUT_TOKEN"
        value = environ.get(name, "").strip()
        if not value:
            return None, f"the environment variable {name} (named by {field!r}) is not set or empty"
        field = value
    if field.startswith(("http://", "https://")):
        return None, "the second field looks like a URL; the format is `tenant-url token`"
    if not TOKEN_RE.match(field):
        return None, "the token contains characters an API token never has"
    return field, None


def parse_tenants_file(path: Path, environ: dict[str, str] | None = None) -> list[TenantLine]:
    """Every tenant line of `path`, or TenantsFileError naming every bad line."""
    environ = dict(os.environ) if environ is None else environ
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise TenantsFileError(path, [f"cannot read the file: {error}"]) from error
    lines: list[TenantLine] = []
    problems: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    for line_no, raw in enumerate(text.splitlines(), start=1):
        content = _strip_comment(raw)
        if not content:
            continue
        fields = content.split()
        if len(fields) != 2:
            problems.append(f"line {line_no}: expected `tenant-url token` (2 fields), found {len(fields)}")
            continue
        url, token_field = fields
        url_problem = _check_url(url)
        token, token_problem = _resolve_token(token_field, environ)
        if url_problem or token_problem or token is None:
            problems += [f"line {line_no}: {p}" for p in (url_problem, token_problem) if p]
            continue
        base_url = url if url.endswith("/") else url + "/"
        key = (base_url.lower(), token)
        if key in seen:
            problems.append(f"line {line_no}: repeats line {seen[key]} (same URL and token)")
            continue
        seen[key] = line_no
        lines.append(TenantLine(line_no, base_url, token))
    if not lines and not problems:
        problems.append("no tenant lines: add one `tenant-url token` pair per line")
    if problems:
        raise TenantsFileError(path, problems)
    return lines
