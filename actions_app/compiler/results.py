"""What compiling a custom action gives back: the emitted JavaScript and the problems found."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Diagnostic:
    """One problem in the operator's source, placed where the editor should underline it.

    `column` counts UTF-16 code units, as tsc and the browser editor (Monaco) both do; it differs from
    a Python string index only on lines with characters outside the Basic Multilingual Plane (emoji).
    """

    line: int  # 1-based, in the operator's source
    column: int  # 1-based
    message: str  # the compiler's text; multi-line when tsc explains a mismatch step by step
    code: str  # "TS2322" from tsc, or "ACTION001"… for our own rules


@dataclass(frozen=True)
class CompileResult:
    js: str  # emitted CommonJS, kept even when there are diagnostics so "save anyway" has code to run
    diagnostics: list[Diagnostic]
    duration_ms: float
    source_map: str = ""  # the `mappings` of tsc's source map from `js` back to the source

    @property
    def ok(self) -> bool:
        return not self.diagnostics


class CompileLimitError(ValueError):
    """The source is refused before the compiler runs (e.g. it is too large); the message is for the operator."""
