"""Secret redaction (contract §11): every secret value is replaced by `[secret NAME]` in what an
execution hands back to the host — logs, result, error — before anyone else sees it.

It runs once, in execute_action(), on the worker's answer, so every consumer (the sign-in's
answer, run records, executions, audit events, the harness, replays, exports) gets redacted data.

Forms caught, for each value of at least MIN_SECRET_CHARS characters:
- the exact value;
- JSON-escaped (quotes, backslashes, control characters, `\\uXXXX` for non-ASCII), also escaped twice;
- percent-encoded (encodeURIComponent, encodeURI, `+` for spaces, lower-case hex);
- base64 and base64url, padded or not, also inside a longer encoded text (`btoa("user:" + key)`):
  the part of the encoding that depends on the value alone, at each of the three byte alignments;
- hexadecimal, lower or upper case;
- any of these split across consecutive console lines (`log(key.slice(0, 5)); log(key.slice(5))`):
  the logs are also searched joined together, and each line's share of a match is replaced.
Not caught: anything the code transforms otherwise (reversed, xor'ed, hashed, encrypted, sliced
and returned in separate fields, interleaved with other text) — redaction is a safety net against
accidents, not a guarantee against code that means to leak.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus

# Shorter values are more likely to be ordinary words or numbers ("true", "2024") than credentials,
# and redacting them would garble innocent logs and results; a real key is far longer.
MIN_SECRET_CHARS = 6
# Base64 fragments of a value at an unknown alignment drop up to three characters at each end.
_MIN_FRAGMENT_CHARS = 6


def marker(name: str) -> str:
    return f"[secret {name}]"


def _base64_forms(raw: bytes) -> set[str]:
    forms: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode("ascii")
        forms.update({whole, whole.rstrip("=")})
        # Preceded by 0, 1 or 2 bytes of something else: keep only characters made of the value's bits.
        for offset in (0, 1, 2):
            encoded = encode(b"\0" * offset + raw).decode("ascii")
            start = -(-8 * offset // 6)
            end = 8 * (offset + len(raw)) // 6
            fragment = encoded[start:end]
            if len(fragment) >= _MIN_FRAGMENT_CHARS:
                forms.add(fragment)
    return forms


def encoded_forms(value: str) -> set[str]:
    """The texts that stand for `value` in output: itself and its common encodings."""
    raw = value.encode("utf-8")
    forms = {value}
    for escaped in (json.dumps(value, ensure_ascii=False)[1:-1], json.dumps(value)[1:-1]):
        upper_hex = re.sub(r"\\u[0-9a-f]{4}", lambda escape: "\\u" + escape.group(0)[2:].upper(), escaped)
        twice = {json.dumps(escaped, ensure_ascii=ascii_only)[1:-1] for ascii_only in (False, True)}
        forms.update({escaped, upper_hex, *twice})
    for percent in (
        quote(value, safe="-_.!~*'()"),
        quote(value, safe=";,/?:@&=+$-_.!~*'()#"),
        quote(value, safe=""),
        quote_plus(value, safe=""),
    ):
        forms.update({percent, re.sub(r"%[0-9A-F]{2}", lambda hexed: hexed.group(0).lower(), percent)})
    forms |= _base64_forms(raw)
    forms.update({raw.hex(), raw.hex().upper()})
    return {form for form in forms if form}


@dataclass(frozen=True)
class Redactor:
    """Replaces a fixed set of secrets in text and JSON data."""

    pattern: re.Pattern[str] | None
    names: Mapping[str, str]  # each form → the name of the secret it stands for

    def text(self, text: str) -> str:
        if self.pattern is None or not text:
            return text
        return self.pattern.sub(lambda found: marker(self.names[found.group(0)]), text)

    def data(self, value: Any) -> Any:
        """`value` (JSON data) with every string, keys included, redacted."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.data(item) for item in value]
        if isinstance(value, dict):
            return {self.text(key): self.data(item) for key, item in value.items()}
        return value

    def logs(self, entries: list[dict[str, str]]) -> list[dict[str, str]]:
        """Redact each console line, and also a secret split across consecutive lines: the lines are
        searched joined, and every line's share of a match becomes the marker."""
        if self.pattern is None or not entries:
            return entries
        messages = [entry["message"] for entry in entries]
        joined = "".join(messages)
        starts, position = [], 0
        for message in messages:
            starts.append(position)
            position += len(message)
        # Cut points per line: (start, end, name) in that line's own offsets.
        cuts: list[list[tuple[int, int, str]]] = [[] for _ in messages]
        for found in self.pattern.finditer(joined):
            name = self.names[found.group(0)]
            for index, line_start in enumerate(starts):
                line_end = line_start + len(messages[index])
                low, high = max(found.start(), line_start), min(found.end(), line_end)
                if low < high:
                    cuts[index].append((low - line_start, high - line_start, name))
        redacted = []
        for entry, message, line_cuts in zip(entries, messages, cuts, strict=True):
            pieces, last = [], 0
            for low, high, name in line_cuts:
                pieces += [message[last:low], marker(name)]
                last = high
            pieces.append(message[last:])
            redacted.append({**entry, "message": "".join(pieces)})
        return redacted


@functools.lru_cache(maxsize=256)
def _redactor(secrets: tuple[tuple[str, str], ...]) -> Redactor:
    names: dict[str, str] = {}
    for name, value in secrets:
        if len(value) < MIN_SECRET_CHARS:
            continue
        for form in encoded_forms(value):
            names.setdefault(form, name)
    if not names:
        return Redactor(None, {})
    # Longest first: a secret that contains another is replaced whole, not around the shorter one.
    alternatives = sorted(names, key=lambda form: (-len(form), form))
    return Redactor(re.compile("|".join(re.escape(form) for form in alternatives)), names)


def redactor_for(secrets: Mapping[str, str] | Iterable[tuple[str, str]]) -> Redactor:
    """The redactor of `secrets` (name → value), cached for the same set."""
    items = secrets.items() if isinstance(secrets, Mapping) else secrets
    return _redactor(tuple(sorted(items)))
