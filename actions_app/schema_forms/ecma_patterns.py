"""JSON Schema `pattern`s: ECMA-262 regular expressions in Unicode mode, matched by RE2 within bounds.

Operators write the config schemas of custom actions, and a `pattern` there is checked against
every value typed into a config form, saved by the API or tried in the test harness. Python's `re`
backtracks: `^(a+)+$` against 30 characters holds the GIL for seconds and stalls every other
request of the process. So patterns are translated from ECMA-262 syntax into RE2's, and matched by
RE2, whose time is linear in the text.

Which ECMA-262: the `u` flag's grammar and meaning, as JSON Schema recommends (`new RegExp(p, "u")`
in JavaScript). It is the stricter grammar (no Annex B leniency such as a lone `{` or `\\-` outside
a class), so every accepted pattern means one thing, and it matches by code point, as Python
strings are. A pattern outside that grammar, or one RE2 cannot run (lookaround, backreferences),
is refused where the schema is saved with a sentence that says why, rather than run with a time
limit that would make the same value valid or invalid depending on how busy the server is. The
translation keeps ECMA-262's meaning where the engines differ: `$` is the end of the string,
`.` excludes all four line terminators, `\\s` is ECMA-262's white space, `[]` matches nothing and
`[^]` anything.

Linear is not free: RE2's work grows with the compiled program's size times the text's length
(a counted repeat of a large class, `\\S{1,999}`, compiles to tens of thousands of steps). So a
pattern's program, a schema's patterns together, and the matching done while checking one
config all have budgets (measured: about 0.5 ns per program step and byte at worst, and about
0.4 µs to compile one step, which holds the GIL).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import re2

MAX_PATTERN_LENGTH = 1000
# RE2 refuses a pattern whose repetitions multiply past this (`(a{100}){100}`).
MAX_REPETITION = 1000
# Compiled program steps: per pattern, and for all the patterns of one schema together.
MAX_PROGRAM_SIZE = 50_000
MAX_SCHEMA_PROGRAM_SIZE = 100_000
MAX_SCHEMA_PATTERNS = 200
# Program steps × bytes matched while checking one config (about 50 ms of matching at worst).
MATCH_WORK_BUDGET = 100_000_000
_MAX_CODE_POINT = 0x10FFFF

# ECMA-262 WhiteSpace and LineTerminator, the code points `\s` matches.
_WHITE_SPACE = (
    (0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A), (0x2028, 0x2029),
    (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF),
)  # fmt: skip
_LINE_TERMINATORS = ((0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029))
_CONTROL_ESCAPES = {"n": 0x0A, "r": 0x0D, "t": 0x09, "f": 0x0C, "v": 0x0B}
# What may follow a backslash to stand for itself in Unicode mode.
_SYNTAX_CHARACTERS = frozenset("^$\\.*+?()[]{}|/")
_QUANTIFIER_BOUNDS = re.compile(r"\{([0-9]+)(,([0-9]*))?\}")
_PROPERTY = re.compile(r"\{([A-Za-z_]+)(?:=([A-Za-z0-9_]+))?\}")
_HEX = frozenset("0123456789abcdefABCDEF")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

# General_Category values as ECMA-262 spells them (long names and aliases) → RE2's class text.
# Cased_Letter is a union RE2 has no name for; Other and Unassigned include code points RE2's
# tables leave out, so they are refused rather than matched differently.
_GENERAL_CATEGORIES = {
    "L": "L", "Letter": "L", "Lu": "Lu", "Uppercase_Letter": "Lu", "Ll": "Ll", "Lowercase_Letter": "Ll",
    "Lt": "Lt", "Titlecase_Letter": "Lt", "Lm": "Lm", "Modifier_Letter": "Lm", "Lo": "Lo", "Other_Letter": "Lo",
    "M": "M", "Mark": "M", "Combining_Mark": "M", "Mn": "Mn", "Nonspacing_Mark": "Mn", "Mc": "Mc",
    "Spacing_Mark": "Mc", "Me": "Me", "Enclosing_Mark": "Me", "N": "N", "Number": "N", "Nd": "Nd",
    "Decimal_Number": "Nd", "digit": "Nd", "Nl": "Nl", "Letter_Number": "Nl", "No": "No", "Other_Number": "No",
    "P": "P", "Punctuation": "P", "punct": "P", "Pc": "Pc", "Connector_Punctuation": "Pc", "Pd": "Pd",
    "Dash_Punctuation": "Pd", "Ps": "Ps", "Open_Punctuation": "Ps", "Pe": "Pe", "Close_Punctuation": "Pe",
    "Pi": "Pi", "Initial_Punctuation": "Pi", "Pf": "Pf", "Final_Punctuation": "Pf", "Po": "Po",
    "Other_Punctuation": "Po", "S": "S", "Symbol": "S", "Sm": "Sm", "Math_Symbol": "Sm", "Sc": "Sc",
    "Currency_Symbol": "Sc", "Sk": "Sk", "Modifier_Symbol": "Sk", "So": "So", "Other_Symbol": "So", "Z": "Z",
    "Separator": "Z", "Zs": "Zs", "Space_Separator": "Zs", "Zl": "Zl", "Line_Separator": "Zl", "Zp": "Zp",
    "Paragraph_Separator": "Zp", "Cc": "Cc", "Control": "Cc", "cntrl": "Cc", "Cf": "Cf", "Format": "Cf",
    "Co": "Co", "Private_Use": "Co", "Cs": "Cs", "Surrogate": "Cs",
    "LC": "\\p{Lu}\\p{Ll}\\p{Lt}", "Cased_Letter": "\\p{Lu}\\p{Ll}\\p{Lt}",
}  # fmt: skip
_REFUSED_CATEGORIES = {"C", "Other", "Cn", "Unassigned"}
# Binary properties that may stand alone (\p{ASCII}); the others ECMA-262 knows are refused.
_BINARY_PROPERTIES = {"Any": f"\\x{{0}}-\\x{{{_MAX_CODE_POINT:X}}}", "ASCII": "\\x{0}-\\x{7F}"}


class PatternNotSupported(ValueError):
    """A pattern that is not ECMA-262 or uses what RE2 cannot run; the message says which and why."""


class PatternTooCostly(ValueError):
    """Checking a value against its pattern would take more than the matching budget allows."""


def _literal(code_point: int) -> str:
    return f"\\x{{{code_point:X}}}"


def _ranges(ranges: tuple[tuple[int, int], ...]) -> str:
    return "".join(_literal(low) if low == high else f"{_literal(low)}-{_literal(high)}" for low, high in ranges)


def _complement(ranges: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    result, start = [], 0
    for low, high in ranges:
        if low > start:
            result.append((start, low - 1))
        start = high + 1
    if start <= _MAX_CODE_POINT:
        result.append((start, _MAX_CODE_POINT))
    return tuple(result)


_SPACE_CLASS_BODY = _ranges(_WHITE_SPACE)
_NON_SPACE_CLASS_BODY = _ranges(_complement(_WHITE_SPACE))
_ANY_BUT_LINE_TERMINATOR = f"[^{_ranges(_LINE_TERMINATORS)}]"
_ANY = f"[{_literal(0)}-{_literal(_MAX_CODE_POINT)}]"
_NOTHING = f"[^{_literal(0)}-{_literal(_MAX_CODE_POINT)}]"


def _category_body(short: str) -> str:
    """RE2's text for a general category: \\p{Lu}, or a union such as Cased_Letter's."""
    return short if "\\" in short else f"\\p{{{short}}}"


class _Translator:
    """One pass over an ECMA-262 (Unicode mode) pattern, writing the RE2 pattern that means the same."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.position = 0
        self.output: list[str] = []
        self.group_names: set[str] = set()

    def _peek(self, offset: int = 0) -> str:
        index = self.position + offset
        return self.pattern[index] if index < len(self.pattern) else ""

    def _refuse(self, message: str) -> PatternNotSupported:
        return PatternNotSupported(f"{message} (at character {self.position + 1})")

    def translate(self) -> str:
        open_groups = 0
        can_repeat = False
        while self.position < len(self.pattern):
            char = self.pattern[self.position]
            if char == "\\":
                piece, can_repeat = self._escape_outside_class()
                self.output.append(piece)
            elif char == "[":
                self.output.append(self._character_class())
                can_repeat = True
            elif char == "(":
                self.output.append(self._group_opening())
                open_groups += 1
                can_repeat = False
            elif char == ")":
                if open_groups == 0:
                    raise self._refuse("A ) has no ( before it")
                open_groups -= 1
                self.output.append(")")
                self.position += 1
                can_repeat = True
            elif char == "|":
                self.output.append("|")
                self.position += 1
                can_repeat = False
            elif char in "*+?" or (char == "{" and _QUANTIFIER_BOUNDS.match(self.pattern, self.position)):
                if not can_repeat:
                    raise self._refuse(f"Nothing to repeat before {char}")
                self.output.append(self._quantifier())
                can_repeat = False
            elif char in "{}]":
                raise self._refuse(f"A lone {char} must be escaped as \\{char}")
            elif char == "^":
                self.output.append("^")
                self.position += 1
                can_repeat = False
            elif char == "$":
                self.output.append(r"\z")
                self.position += 1
                can_repeat = False
            elif char == ".":
                self.output.append(_ANY_BUT_LINE_TERMINATOR)
                self.position += 1
                can_repeat = True
            else:
                self.output.append(self._literal_at_position(char))
                can_repeat = True
        if open_groups:
            raise PatternNotSupported("A ( is not closed with )")
        return "".join(self.output)

    def _literal_at_position(self, char: str) -> str:
        if 0xD800 <= ord(char) <= 0xDFFF:
            raise self._refuse("A lone UTF-16 surrogate cannot be matched")
        self.position += 1
        return _literal(ord(char))

    def _quantifier(self) -> str:
        char = self.pattern[self.position]
        if char == "{":
            bounds = _QUANTIFIER_BOUNDS.match(self.pattern, self.position)
            assert bounds is not None
            low = int(bounds.group(1))
            high = low if bounds.group(2) is None else (int(bounds.group(3)) if bounds.group(3) else None)
            if high is not None and high < low:
                raise self._refuse(f"The numbers in {bounds.group(0)} are out of order")
            if low > MAX_REPETITION or (high or 0) > MAX_REPETITION:
                raise self._refuse(f"{bounds.group(0)} repeats more than {MAX_REPETITION:,} times")
            text = bounds.group(0)
            self.position = bounds.end()
        else:
            text = char
            self.position += 1
        if self._peek() == "?":
            text += "?"
            self.position += 1
        return text

    def _group_opening(self) -> str:
        rest = self.pattern[self.position : self.position + 4]
        if rest.startswith("(?:"):
            self.position += 3
            return "(?:"
        if rest.startswith(("(?=", "(?!", "(?<=", "(?<!")):
            raise self._refuse("Lookahead and lookbehind ((?=, (?!, (?<=, (?<!) are not supported in config patterns")
        if rest.startswith("(?<"):
            closing = self.pattern.find(">", self.position + 3)
            name = self.pattern[self.position + 3 : closing] if closing > 0 else ""
            if not name or not name.replace("$", "_").isidentifier():
                raise self._refuse("A group name must be an identifier followed by >")
            if name in self.group_names:
                raise self._refuse(f"The group name {name} is used twice")
            self.group_names.add(name)
            self.position = closing + 1
            return "(?:"  # names matter only to backreferences, which are not supported
        if rest.startswith("(?"):
            raise self._refuse("Only (…), (?:…) and (?<name>…) groups are supported in config patterns")
        self.position += 1
        return "("

    def _escape_outside_class(self) -> tuple[str, bool]:
        """The escape at the current backslash, and whether a quantifier may follow it."""
        escaped = self._peek(1)
        if escaped in ("b", "B"):
            self.position += 2
            return "\\" + escaped, False  # ASCII word boundaries, as in ECMA-262 without the i flag
        if escaped == "-":
            raise self._refuse("\\- is only an escape inside [...]; outside, write - alone")
        return self._escape(in_class=False), True

    def _escape(self, *, in_class: bool) -> str:
        """An escape that stands for characters; inside a class it must be usable as a class item."""
        escaped = self._peek(1)
        if not escaped:
            raise self._refuse("The pattern ends with a lone backslash")
        if escaped in "dDwW":
            self.position += 2
            return "\\" + escaped  # ASCII digits and word characters in both engines
        if escaped in "sS":
            self.position += 2
            body = _SPACE_CLASS_BODY if escaped == "s" else _NON_SPACE_CLASS_BODY
            return body if in_class else f"[{body}]"
        if escaped in "pP":
            return self._property_escape(negated=escaped == "P", in_class=in_class)
        code_point = self._escaped_code_point(escaped, in_class=in_class)
        if 0xD800 <= code_point <= 0xDFFF:
            raise self._refuse("A lone UTF-16 surrogate cannot be matched")
        return _literal(code_point)

    def _property_escape(self, *, negated: bool, in_class: bool) -> str:
        found = _PROPERTY.match(self.pattern, self.position + 2)
        if found is None:
            raise self._refuse("A Unicode property escape must look like \\p{L}, \\p{Letter} or \\p{Script=Greek}")
        name, value = found.group(1), found.group(2)
        if value is None and name in _GENERAL_CATEGORIES:
            body = _category_body(_GENERAL_CATEGORIES[name])
        elif value is None and name in _BINARY_PROPERTIES:
            body = _BINARY_PROPERTIES[name]
        elif name in ("General_Category", "gc") and value in _GENERAL_CATEGORIES:
            body = _category_body(_GENERAL_CATEGORIES[value])
        elif name in ("Script", "sc") and value and value.replace("_", "").isalpha():
            body = f"\\p{{{value}}}"  # RE2 knows scripts by their long names; compiling checks it
        else:
            shown = found.group(0)
            if (value or name) in _REFUSED_CATEGORIES:
                raise self._refuse(
                    f"\\p{shown} is not supported: list the categories you mean, such as [\\p{{Cc}}\\p{{Cf}}]"
                )
            raise self._refuse(
                f"\\p{shown} is not a property config patterns support; use a general category "
                "(\\p{L}, \\p{Letter}) or a script (\\p{Script=Greek})"
            )
        self.position = found.end()
        if body.startswith("\\p{") and body.count("\\") == 1:
            return ("\\P" if negated else "\\p") + body[2:]
        if negated and in_class:
            raise self._refuse(f"\\P{found.group(0)} cannot be used inside [...]; put it outside the class")
        if in_class:
            return body
        return ("[^" if negated else "[") + body + "]"

    def _escaped_code_point(self, escaped: str, *, in_class: bool) -> int:
        """The one character an escape such as \\n, \\x41, \\u00e9, \\cJ or \\. stands for."""
        start = self.position
        if escaped in _CONTROL_ESCAPES:
            self.position += 2
            return _CONTROL_ESCAPES[escaped]
        if escaped == "b" and in_class:
            self.position += 2
            return 0x08  # backspace, inside a class
        if escaped == "-" and in_class:
            self.position += 2
            return ord("-")
        if escaped == "0" and not self._peek(2).isdigit():
            self.position += 2
            return 0
        if escaped.isdigit():
            raise self._refuse(f"Backreferences and octal escapes (\\{escaped}) are not supported in config patterns")
        if escaped == "k":
            raise self._refuse("Backreferences (\\k<name>) are not supported in config patterns")
        if escaped == "c":
            letter = self._peek(2)
            if letter.isascii() and letter.isalpha():
                self.position += 3
                return ord(letter) % 32
            raise self._refuse("\\c must be followed by a letter A–Z")
        if escaped == "x":
            digits = self.pattern[start + 2 : start + 4]
            if len(digits) == 2 and set(digits) <= _HEX:
                self.position += 4
                return int(digits, 16)
            raise self._refuse("\\x must be followed by two hex digits")
        if escaped == "u":
            return self._unicode_escape()
        if escaped in _SYNTAX_CHARACTERS:
            self.position += 2
            return ord(escaped)
        raise self._refuse(f"\\{escaped} is not an escape; write {escaped} without the backslash")

    def _unicode_escape(self) -> int:
        start = self.position
        if self._peek(2) == "{":
            closing = self.pattern.find("}", start + 3)
            digits = self.pattern[start + 3 : closing] if closing > 0 else ""
            if digits and set(digits) <= _HEX and int(digits, 16) <= _MAX_CODE_POINT:
                self.position = closing + 1
                return int(digits, 16)
            raise self._refuse("A \\u{…} escape needs a hex code point up to 10FFFF")
        digits = self.pattern[start + 2 : start + 6]
        if len(digits) != 4 or not set(digits) <= _HEX:
            raise self._refuse("\\u must be followed by four hex digits or {hex}")
        value = int(digits, 16)
        self.position += 6
        low = self.pattern[self.position + 2 : self.position + 6]
        if (
            0xD800 <= value <= 0xDBFF
            and self.pattern[self.position : self.position + 2] == "\\u"
            and len(low) == 4
            and set(low) <= _HEX
            and 0xDC00 <= int(low, 16) <= 0xDFFF
        ):
            self.position += 6  # a surrogate pair written as two escapes is one character
            return 0x10000 + ((value - 0xD800) << 10) + (int(low, 16) - 0xDC00)
        return value

    def _class_item(self) -> tuple[str, int | None]:
        """One item of a [...] class: its RE2 text and, for a single character, its code point."""
        char = self.pattern[self.position]
        if char != "\\":
            text = self._literal_at_position(char)
            return text, ord(char)
        escaped = self._peek(1)
        if escaped and escaped in "dDwWsSpP":
            return self._escape(in_class=True), None
        if not escaped:
            raise self._refuse("The pattern ends with a lone backslash")
        if escaped == "B":
            raise self._refuse("\\B is not an escape inside [...]")
        code_point = self._escaped_code_point(escaped, in_class=True)
        if 0xD800 <= code_point <= 0xDFFF:
            raise self._refuse("A lone UTF-16 surrogate cannot be matched")
        return _literal(code_point), code_point

    def _character_class(self) -> str:
        opening = self.position
        self.position += 1
        negated = self._peek() == "^"
        if negated:
            self.position += 1
        if self._peek() == "]":  # ECMA-262: [] matches nothing and [^] any character
            self.position += 1
            return _ANY if negated else _NOTHING
        items: list[str] = []
        while True:
            if self.position >= len(self.pattern):
                self.position = opening
                raise self._refuse("A [ is not closed with ]")
            if self._peek() == "]":
                self.position += 1
                break
            first_text, first = self._class_item()
            if self._peek() == "-" and self._peek(1) not in ("]", ""):
                self.position += 1
                last_text, last = self._class_item()
                if first is None or last is None:
                    raise self._refuse("A range in [...] cannot start or end with a class such as \\d or \\p{L}")
                if last < first:
                    raise self._refuse("A range in a [...] class is out of order")
                items.append(f"{first_text}-{last_text}")
            else:
                items.append(first_text)
        return ("[^" if negated else "[") + "".join(items) + "]"


def _re2_options() -> Any:
    options = re2.Options()
    options.log_errors = False  # refusals are reported to the operator, not written to stderr
    return options


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> Any:
    """The RE2 program for an ECMA-262 pattern; raises PatternNotSupported with the reason."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternNotSupported(f"A config pattern can be at most {MAX_PATTERN_LENGTH:,} characters long")
    translated = _Translator(pattern).translate()
    try:
        compiled = re2.compile(translated, _re2_options())
    except re2.error as error:
        reason = error.args[0].decode("utf-8", "replace") if error.args and isinstance(error.args[0], bytes) else ""
        if "repetition" in reason:
            raise PatternNotSupported(
                f"Its repetitions multiply to more than {MAX_REPETITION:,} (nested counted repeats)"
            ) from None
        if reason.startswith(("invalid character class range: \\p", "invalid character class range: \\P")):
            raise PatternNotSupported(f"{reason.rpartition(': ')[2]} names no Unicode property known here") from None
        if "pattern too large" in reason:
            raise PatternNotSupported(_too_large_message(None)) from None
        raise PatternNotSupported(f"It cannot be compiled: {reason or 'unknown reason'}") from None
    if compiled.programsize > MAX_PROGRAM_SIZE:
        raise PatternNotSupported(_too_large_message(compiled.programsize))
    return compiled


def _too_large_message(size: int | None) -> str:
    steps = f"{size:,} steps" if size else "too many steps"
    return (
        f"It compiles to {steps}; a config pattern may take {MAX_PROGRAM_SIZE:,}. Counted repeats of large "
        "classes cost the most (\\S{1,999}, .{0,500}, \\p{L}{1,50}): use maxLength to limit a length"
    )


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` cannot be used in a config schema, or None when it can."""
    try:
        compile_pattern(pattern)
    except PatternNotSupported as refusal:
        return str(refusal)
    return None


# What is left of the schema budget while one schema is checked (see schema_pattern_budget).
_schema_budget: ContextVar[list[int] | None] = ContextVar("schema_pattern_budget", default=None)
# What is left of the matching budget while one config is checked (see match_work_budget).
_match_budget: ContextVar[list[int] | None] = ContextVar("pattern_match_budget", default=None)


@contextmanager
def schema_pattern_budget() -> Iterator[None]:
    """While a schema is checked, its patterns together may compile to MAX_SCHEMA_PROGRAM_SIZE steps
    and number MAX_SCHEMA_PATTERNS (compiling holds the GIL: 60 large patterns took 5 s)."""
    token = _schema_budget.set([MAX_SCHEMA_PROGRAM_SIZE, MAX_SCHEMA_PATTERNS])
    try:
        yield
    finally:
        _schema_budget.reset(token)


def check_schema_pattern(pattern: str) -> None:
    """A schema's pattern, charged to the schema's budget; raises PatternNotSupported."""
    budget = _schema_budget.get()
    if budget is not None:
        if budget[1] <= 0:
            raise PatternNotSupported(f"A config schema can have at most {MAX_SCHEMA_PATTERNS} patterns")
        budget[1] -= 1
    compiled = compile_pattern(pattern)
    if budget is not None:
        budget[0] -= compiled.programsize
        if budget[0] < 0:
            raise PatternNotSupported(
                f"The schema's patterns together compile to more than {MAX_SCHEMA_PROGRAM_SIZE:,} steps; "
                "simplify them (use maxLength rather than counted repeats)"
            )


@contextmanager
def match_work_budget() -> Iterator[None]:
    """While one config is checked, all its pattern matches together may do MATCH_WORK_BUDGET units
    of work (program steps × bytes): a list of long values must not add up to minutes."""
    token = _match_budget.set([MATCH_WORK_BUDGET])
    try:
        yield
    finally:
        _match_budget.reset(token)


def pattern_matches(pattern: str, text: str) -> bool:
    """JSON Schema's test: does `pattern` match anywhere in `text`? Raises PatternNotSupported for
    an unusable pattern and PatternTooCostly when the matching budget would be passed."""
    compiled = compile_pattern(pattern)
    # UTF-8 bytes, counted without encoding: at most 4 per code point.
    work = compiled.programsize * ((len(text) if text.isascii() else 4 * len(text)) + 1)
    budget = _match_budget.get() or [MATCH_WORK_BUDGET]
    if work > budget[0]:
        budget[0] = 0
        raise PatternTooCostly("too long to check against its pattern")
    budget[0] -= work
    try:
        return compiled.search(text) is not None
    except UnicodeEncodeError:
        # A lone surrogate cannot be encoded for RE2; it matches what U+FFFD would (nothing typed).
        return compiled.search(_LONE_SURROGATE.sub("\ufffd", text)) is not None
