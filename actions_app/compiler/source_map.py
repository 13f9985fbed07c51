"""Positions in an action's compiled JavaScript, mapped back to the operator's TypeScript.

tsc emits a source map (version 3) beside the JavaScript. The sandbox reports where an exception
came from in the JavaScript it ran, which differs from the editor's lines and columns: tsc adds its
CommonJS preamble, drops type-only lines and annotations and re-indents. Only the map's `mappings`
are kept; each generated line lists segments of (generated column, source line, source column),
base64 VLQ numbers relative to the segment before (columns reset on each generated line).
"""

from __future__ import annotations

import re

_BASE64_DIGITS = {char: index for index, char in enumerate(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
)}  # fmt: skip
# How the sandbox names a place in the action: appended to the message (isolate_runtime.js,
# firstActionFrame), so only at its very end; the message itself may say anything.
_LOCATION = re.compile(r"\(line (\d+), column (\d+)\)$")


def _vlq_numbers(segment: str) -> list[int]:
    numbers, value, shift = [], 0, 0
    for char in segment:
        digit = _BASE64_DIGITS[char]
        value += (digit & 31) << shift
        if digit & 32:
            shift += 5
            continue
        numbers.append(-(value >> 1) if value & 1 else value >> 1)
        value, shift = 0, 0
    return numbers


def _line_segments(mappings: str, wanted_line: int) -> list[tuple[int, int, int]]:
    """The segments of 0-based generated line `wanted_line`: (generated column, source line,
    source column), all 0-based. Source positions run on across lines, so earlier lines are read."""
    source_line = source_column = 0
    for line_number, line in enumerate(mappings.split(";")):
        generated_column = 0
        segments = []
        for segment in filter(None, line.split(",")):
            numbers = _vlq_numbers(segment)
            generated_column += numbers[0]
            if len(numbers) >= 4:
                source_line += numbers[2]
                source_column += numbers[3]
                segments.append((generated_column, source_line, source_column))
        if line_number == wanted_line:
            return segments
    return []


def source_position(mappings: str, line: int, column: int) -> tuple[int, int] | None:
    """The 1-based (line, column) in the TypeScript of 1-based (line, column) in the JavaScript,
    or None where the map says nothing (no map, or code tsc added)."""
    try:
        segments = _line_segments(mappings, line - 1)
    except (KeyError, IndexError):
        return None  # not a map tsc wrote
    before = [segment for segment in segments if segment[0] <= column - 1]
    if not before:
        return None
    generated_column, source_line, source_column = before[-1]
    # Within a segment (one token, as tsc maps them) the text is the operator's own.
    return source_line + 1, source_column + 1 + (column - 1 - generated_column)


def in_source_terms(message: str, mappings: str) -> str:
    """`message` with its "(line L, column C)" moved from the JavaScript to the TypeScript. Without
    a map (a version saved before maps were kept) the place is said to be in the JavaScript."""

    def moved(match: re.Match[str]) -> str:
        position = source_position(mappings, int(match[1]), int(match[2])) if mappings else None
        if position is None:
            return f"(line {match[1]}, column {match[2]} of the compiled JavaScript)"
        return f"(line {position[0]}, column {position[1]})"

    return _LOCATION.sub(moved, message)
