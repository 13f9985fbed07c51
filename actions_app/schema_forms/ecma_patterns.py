"""JSON Schema `pattern`s, matched in linear time with ECMA-262 meaning.

Operators write the config schemas of custom actions, and a `pattern` there is checked against
every value typed into a config form, saved by the API or tried in the test harness. Python's `re`
backtracks: `^(a+)+$` against 30 characters holds the GIL for seconds and stalls every other
request of the process. So patterns are translated from ECMA-262 syntax (what JSON Schema says a
pattern is) into RE2's, and matched by RE2, whose time is linear in the text whatever the pattern.

RE2 has no backreferences and no lookaround; a pattern using them is refused with a sentence that
says so, where the schema is saved, rather than run with a time limit that would make the same
value valid or invalid depending on how busy the server is. The translation keeps ECMA-262's
meaning where the two engines differ: `$` is the end of the string (not before a final newline),
`.` excludes all four line terminators, `\\s` is ECMA-262's white space, a `]` first in a class
closes it (`[]` matches nothing, `[^]` anything), and Annex B's lenient literals (`{`, `}`, `]`
and identity escapes such as `\\-`) stay literal. Values are matched by code point, as ECMA-262
does with the `u` flag, since Python strings are code points.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import re2

MAX_PATTERN_LENGTH = 1000
# RE2 refuses a pattern whose repetitions multiply past this (`(a{100}){100}`), as ECMA-262 never would.
MAX_REPETITION = 1000
_MAX_CODE_POINT = 0x10FFFF

# ECMA-262 WhiteSpace and LineTerminator, the code points `\s` matches.
_WHITE_SPACE = (
    (0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A), (0x2028, 0x2029),
    (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF),
)  # fmt: skip
_LINE_TERMINATORS = ((0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029))
_CONTROL_ESCAPES = {"n": 0x0A, "r": 0x0D, "t": 0x09, "f": 0x0C, "v": 0x0B}
_QUANTIFIER_BOUNDS = re.compile(r"\{([0-9]+)(,([0-9]*))?\}")
_GROUP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")
_PROPERTY_NAME = re.compile(r"(?:(?:Script|sc|General_Category|gc)=)?[A-Za-z_]{1,40}")
# ECMA-262 spells general categories out (\p{Letter}); RE2 knows only the short names.
_GENERAL_CATEGORY_NAMES = {
    "Letter": "L", "Cased_Letter": "L", "Uppercase_Letter": "Lu", "Lowercase_Letter": "Ll",
    "Titlecase_Letter": "Lt", "Modifier_Letter": "Lm", "Other_Letter": "Lo", "Mark": "M", "Nonspacing_Mark": "Mn",
    "Spacing_Mark": "Mc", "Enclosing_Mark": "Me", "Number": "N", "Decimal_Number": "Nd", "digit": "Nd",
    "Letter_Number": "Nl", "Other_Number": "No", "Punctuation": "P", "punct": "P", "Connector_Punctuation": "Pc",
    "Dash_Punctuation": "Pd", "Open_Punctuation": "Ps", "Close_Punctuation": "Pe", "Initial_Punctuation": "Pi",
    "Final_Punctuation": "Pf", "Other_Punctuation": "Po", "Symbol": "S", "Math_Symbol": "Sm",
    "Currency_Symbol": "Sc", "Modifier_Symbol": "Sk", "Other_Symbol": "So", "Separator": "Z",
    "Space_Separator": "Zs", "Line_Separator": "Zl", "Paragraph_Separator": "Zp", "Other": "C", "Control": "Cc",
    "cntrl": "Cc", "Format": "Cf", "Surrogate": "Cs", "Private_Use": "Co", "Unassigned": "Cn",
}  # fmt: skip
_HEX = "0123456789abcdefABCDEF"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class PatternNotSupported(ValueError):
    """A pattern that is not ECMA-262 or uses what RE2 cannot run; the message says which and why."""


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


class _Translator:
    """One pass over an ECMA-262 pattern, writing the RE2 pattern that means the same."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.position = 0
        self.output: list[str] = []

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
            else:  # Annex B: a `{`, `}` or `]` that starts nothing is an ordinary character
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
            name = _GROUP_NAME.match(self.pattern, self.position + 3)
            if name is None or self.pattern[name.end() : name.end() + 1] != ">":
                raise self._refuse("A group name must be letters, digits and _ (at most 32) followed by >")
            self.position = name.end() + 1
            return f"(?P<{name.group(0)}>"
        if rest.startswith("(?"):
            raise self._refuse("Only (…), (?:…) and (?<name>…) groups are supported in config patterns")
        self.position += 1
        return "("

    def _escape_outside_class(self) -> tuple[str, bool]:
        """The escape at the current backslash, and whether a quantifier may follow it."""
        escaped = self._peek(1)
        if escaped in ("b", "B"):
            self.position += 2
            return "\\" + escaped, False  # ASCII word boundaries, as in ECMA-262 without flags
        if escaped.isdigit() and escaped != "0":
            raise self._refuse(f"Backreferences (\\{escaped}) are not supported in config patterns")
        if escaped == "k" and self._peek(2) == "<":
            raise self._refuse("Backreferences (\\k<name>) are not supported in config patterns")
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
        if escaped in "pP" and self._peek(2) == "{":
            name = _PROPERTY_NAME.match(self.pattern, self.position + 3)
            if name is None or self.pattern[name.end() : name.end() + 1] != "}":
                raise self._refuse("A Unicode property escape must look like \\p{L} or \\p{Greek}")
            self.position = name.end() + 1
            value = name.group(0).partition("=")[2] or name.group(0)
            return f"\\{escaped}{{{_GENERAL_CATEGORY_NAMES.get(value, value)}}}"
        code_point = self._escaped_code_point(escaped, in_class=in_class)
        if 0xD800 <= code_point <= 0xDFFF:
            raise self._refuse("A lone UTF-16 surrogate cannot be matched")
        return _literal(code_point)

    def _escaped_code_point(self, escaped: str, *, in_class: bool) -> int:
        """The one character an escape such as \\n, \\x41, \\u00e9, \\cJ or \\- stands for."""
        start = self.position
        if escaped in _CONTROL_ESCAPES:
            self.position += 2
            return _CONTROL_ESCAPES[escaped]
        if escaped == "b" and in_class:
            self.position += 2
            return 0x08  # backspace, inside a class
        if escaped == "0":
            if self._peek(2).isdigit():
                raise self._refuse("Octal escapes are not supported in config patterns; use \\x or \\u")
            self.position += 2
            return 0
        if escaped.isdigit():
            raise self._refuse("Octal escapes are not supported in config patterns; use \\x or \\u")
        if escaped == "c":
            letter = self._peek(2)
            if letter.isascii() and letter.isalpha():
                self.position += 3
                return ord(letter) % 32
            # Annex B: a \c that is not a control escape is a backslash; the c is read next.
            self.position += 1
            return ord("\\")
        if escaped == "x":
            digits = self.pattern[start + 2 : start + 4]
            if len(digits) == 2 and all(digit in _HEX for digit in digits):
                self.position += 4
                return int(digits, 16)
        if escaped == "u":
            return self._unicode_escape()
        # An identity escape: \. \/ \- and, by Annex B, any other character stands for itself.
        self.position += 2
        return ord(escaped)

    def _unicode_escape(self) -> int:
        start = self.position
        if self._peek(2) == "{":
            closing = self.pattern.find("}", start + 3)
            digits = self.pattern[start + 3 : closing] if closing > 0 else ""
            if digits and len(digits) <= 6 and all(digit in _HEX for digit in digits):
                value = int(digits, 16)
                if value <= _MAX_CODE_POINT:
                    self.position = closing + 1
                    return value
            raise self._refuse("A \\u{…} escape needs a hex code point up to 10FFFF")
        digits = self.pattern[start + 2 : start + 6]
        if len(digits) != 4 or not all(digit in _HEX for digit in digits):
            self.position += 2
            return ord("u")  # Annex B: \u without four hex digits is a u
        value = int(digits, 16)
        self.position += 6
        low = self.pattern[self.position + 2 : self.position + 6]
        if (
            0xD800 <= value <= 0xDBFF
            and self.pattern[self.position : self.position + 2] == "\\u"
            and len(low) == 4
            and all(digit in _HEX for digit in low)
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
        if escaped in "dDwWsS" or (escaped in "pP" and self._peek(2) == "{"):
            return self._escape(in_class=True), None
        if escaped.isdigit() and escaped != "0":
            raise self._refuse("Octal escapes are not supported in config patterns; use \\x or \\u")
        code_point = self._escaped_code_point(escaped, in_class=True) if escaped else -1
        if code_point < 0:
            raise self._refuse("The pattern ends with a lone backslash")
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
                if first is not None and last is not None:
                    if last < first:
                        raise self._refuse("A range in a [...] class is out of order")
                    items.append(f"{first_text}-{last_text}")
                else:  # Annex B: [\d-z] is \d, a hyphen and z
                    items.extend((first_text, _literal(ord("-")), last_text))
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
        return re2.compile(translated, _re2_options())
    except re2.error as error:
        reason = error.args[0].decode("utf-8", "replace") if error.args and isinstance(error.args[0], bytes) else ""
        if "repetition" in reason:
            raise PatternNotSupported(
                f"Its repetitions multiply to more than {MAX_REPETITION:,} (nested counted repeats)"
            ) from None
        if reason.startswith("invalid character class range: \\p") or reason.startswith(
            "invalid character class range: \\P"
        ):
            raise PatternNotSupported(f"{reason.rpartition(': ')[2]} names no Unicode property known here") from None
        if "pattern too large" in reason:
            raise PatternNotSupported("It is too large to run in linear time") from None
        raise PatternNotSupported(f"It cannot be compiled: {reason or 'unknown reason'}") from None


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` cannot be used in a config schema, or None when it can."""
    try:
        compile_pattern(pattern)
    except PatternNotSupported as refusal:
        return str(refusal)
    return None


def pattern_matches(pattern: str, text: str) -> bool:
    """JSON Schema's test: does `pattern` match anywhere in `text`? (PatternNotSupported if unusable.)"""
    compiled = compile_pattern(pattern)
    try:
        return compiled.search(text) is not None
    except UnicodeEncodeError:
        # A lone surrogate cannot be encoded for RE2; it matches what U+FFFD would (nothing typed).
        return compiled.search(_LONE_SURROGATE.sub("\ufffd", text)) is not None
