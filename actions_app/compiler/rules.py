"""Our own rules for custom action sources, checked around tsc, and where in the source they point."""

from __future__ import annotations

import re

from actions_app.compiler.results import CompileLimitError, Diagnostic

MAX_SOURCE_BYTES = 100 * 1024

MISSING_EXECUTE_CODE = "ACTION001"
MISSING_EXECUTE_MESSAGE = "The module must export an async function named execute."
REFERENCE_DIRECTIVE_CODE = "ACTION002"
REFERENCE_DIRECTIVE_MESSAGE = (
    "Triple-slash reference directives are not allowed: the Action SDK is available without them, "
    "and the sandbox has no other libraries."
)
TIMEOUT_CODE = "ACTION003"
IMPORT_CODE = "ACTION004"
IMPORT_MESSAGE = "Actions cannot import modules: the sandbox has no module loader. Keep helper code in this file."

# `/// <reference lib="dom" />` would bring DOM types (fetch, window…) the sandbox does not have, and
# `path=`/`types=` would make tsc read files of the server. tsc only honours these at the top of the file.
_REFERENCE_DIRECTIVE = re.compile(r"^[ \t]*(///)[ \t]*<(?:reference|amd-module|amd-dependency)\b", re.MULTILINE)

# Import and re-export declarations at the start of a line. tsc would either fail to find the module with a
# confusing message ("Cannot find name 'fs'") or, for one of our own work files, emit a require() that
# fails in the sandbox. Dynamic import() is left to tsc, which cannot resolve it either.
_IMPORT_DECLARATION = re.compile(
    r"^[ \t]*(?:"
    r"import\s*(?:type\b\s*)?(?:[\w$*{][^;]*?\bfrom\s*)?[\"']"
    r"|import\s+(?:type\s+)?[\w$]+\s*=\s*require\s*\("
    r"|export\s*(?:type\b\s*)?(?:\*|\{[^}]*\})\s*from\s*[\"']"
    r")",
    re.MULTILINE,
)

# Where the operator declared `execute`: used to place signature errors. A match inside a comment only
# moves the underline, so a plain scan is good enough.
_EXECUTE_DECLARATION = re.compile(
    r"\bexport\s+(?:declare\s+)?(?:async\s+)?function\s*\*?\s*(?P<function>execute)\b"
    r"|\bexport\s+(?:declare\s+)?(?:const|let|var)\s+(?P<variable>execute)\b"
    r"|\bexport\s*\{[^}]*?\b(?P<listed>execute)\s*[,}]"
)

# tsc's CommonJS output assigns every export; `exports.execute = void 0;` is only the hoisted placeholder.
_EXECUTE_ASSIGNMENT = re.compile(
    r"^\s*(?:exports\.\w+ = )*exports\.execute = (?!(?:exports\.\w+ = )*void 0;)", re.MULTILINE
)

# The line terminators of ECMAScript, which tsc counts lines by.
_LINE_BREAK = re.compile("\r\n|[\n\r\u2028\u2029]")


def check_source_size(source: str) -> None:
    """Raise CompileLimitError when `source` is over MAX_SOURCE_BYTES in UTF-8."""
    size = len(source.encode("utf-8", errors="surrogatepass"))
    if size > MAX_SOURCE_BYTES:
        raise CompileLimitError(
            f"The source is {size / 1024:.1f} kB, over the limit of {MAX_SOURCE_BYTES // 1024} kB. "
            "Shorten the code, or move lists and texts into the action's config."
        )


def neutralize_reference_directives(source: str) -> tuple[str, list[Diagnostic]]:
    """The source with each `/// <reference …>` turned into a plain comment, and an ACTION002 for each.

    The third slash becomes a space, so every line and column tsc reports still matches the operator's text.
    """
    diagnostics: list[Diagnostic] = []
    for match in _REFERENCE_DIRECTIVE.finditer(source):
        line, column = source_position(source, match.start(1))
        diagnostics.append(Diagnostic(line, column, REFERENCE_DIRECTIVE_MESSAGE, REFERENCE_DIRECTIVE_CODE))
    checked_source = _REFERENCE_DIRECTIVE.sub(lambda match: match[0].replace("///", "// ", 1), source)
    return checked_source, diagnostics


def import_diagnostics(source: str) -> list[Diagnostic]:
    """An ACTION004 at each import or re-export declaration."""
    diagnostics: list[Diagnostic] = []
    for match in _IMPORT_DECLARATION.finditer(source):
        keyword_offset = match.start() + len(match[0]) - len(match[0].lstrip())
        diagnostics.append(Diagnostic(*source_position(source, keyword_offset), IMPORT_MESSAGE, IMPORT_CODE))
    return diagnostics


def execute_position(source: str) -> tuple[int, int]:
    """Line and column of the exported `execute` name, or (1, 1) when there is none to point at."""
    match = _EXECUTE_DECLARATION.search(source)
    if match is None:
        return 1, 1
    name_group = next(group for group in ("function", "variable", "listed") if match[group] is not None)
    return source_position(source, match.start(name_group))


def emits_execute(js: str) -> bool:
    """Whether the emitted CommonJS assigns `exports.execute` (a `declare`d execute type-checks but emits nothing)."""
    return _EXECUTE_ASSIGNMENT.search(js) is not None


def source_position(source: str, offset: int) -> tuple[int, int]:
    """1-based line and column of `offset`, counting the column in UTF-16 code units like tsc and Monaco."""
    line, line_start = 1, 0
    for line_break in _LINE_BREAK.finditer(source, 0, offset):
        line, line_start = line + 1, line_break.end()
    column = len(source[line_start:offset].encode("utf-16-le", errors="surrogatepass")) // 2 + 1
    return line, column
