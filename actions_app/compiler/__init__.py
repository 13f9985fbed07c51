"""Compiling custom actions: TypeScript type-checked against the Action SDK, emitted as CommonJS.

`compile_action` runs the native TypeScript 7 compiler from npm on the operator's source together
with `sdk_declarations(config_schema)` — the same `.d.ts` the browser editor loads — and returns the
emitted JavaScript with every problem as a `Diagnostic` (line and column in the operator's source).
"""

from actions_app.compiler.action_compiler import compile_action
from actions_app.compiler.results import CompileLimitError, CompileResult, Diagnostic
from actions_app.compiler.rules import MAX_SOURCE_BYTES
from actions_app.compiler.sdk_types import config_type_from_schema, sdk_declarations

__all__ = [
    "MAX_SOURCE_BYTES",
    "CompileLimitError",
    "CompileResult",
    "Diagnostic",
    "compile_action",
    "config_type_from_schema",
    "sdk_declarations",
]
