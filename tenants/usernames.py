"""Which username a new operator account may have.

Usernames show in the audit log, the members table and every "who did this" line, so one must
never pass for another. A new username is plain ASCII (letters, digits, `.`, `_`, `-`; 3 to 40):
no letter from another alphabet that looks like a Latin one (Cyrillic с, Greek ο, dotless ı), no
accents, nothing invisible. It is not an email address (the account's email is its own field, and
a username that is someone else's address would be read as theirs). And it is refused when its
skeleton — case folded, the separators . _ - left out, 0 read as o, 1 and i as l, rn as m, vv as w —
is that of an existing username: `a1ice`, `A.lice` and `alice_` all read as `alice`.
"""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model

MIN_LENGTH = 3
MAX_LENGTH = 40
_ALLOWED = re.compile(rf"[A-Za-z0-9._-]{{{MIN_LENGTH},{MAX_LENGTH}}}")
_SEPARATORS = str.maketrans("", "", "._-")
_LOOK_ALIKE_LETTERS = str.maketrans({"0": "o", "1": "l", "i": "l"})

RULE_MESSAGE = (
    f"Use {MIN_LENGTH} to {MAX_LENGTH} characters: ASCII letters, digits and . _ - only "
    "(no spaces, accents or letters of other alphabets)."
)
EMAIL_MESSAGE = "Choose a username that is not an email address; your email is already part of the account."
LOOK_ALIKE_MESSAGE = (
    "This is too much like an existing username (it could be taken for it); choose one that differs "
    "by more than case, separators or look-alike characters."
)


class UsernameNotAllowed(ValueError):
    """A username a new account may not have; the message says why, for the field."""


def username_skeleton(username: str) -> str:
    """What `username` looks like when case, separators and look-alike characters are set aside."""
    skeleton = username.casefold().translate(_SEPARATORS).translate(_LOOK_ALIKE_LETTERS)
    return skeleton.replace("rn", "m").replace("vv", "w")


def check_username_shape(username: str) -> None:
    """Raise UsernameNotAllowed for a username no new account may have, whatever others exist:
    not ASCII letters, digits and . _ -, or an email address."""
    if "@" in username:
        raise UsernameNotAllowed(EMAIL_MESSAGE)
    if not _ALLOWED.fullmatch(username):
        raise UsernameNotAllowed(RULE_MESSAGE)


def check_new_username(username: str) -> None:
    """Raise UsernameNotAllowed unless `username` may be a new account's (see the module docstring).
    An exact or case-only duplicate passes here: the unique check says "already exists" for it.
    It reads every username, so the sign-up service runs it once, inside its transaction."""
    check_username_shape(username)
    skeleton = username_skeleton(username)
    for existing in get_user_model()._default_manager.values_list("username", flat=True).iterator():
        if existing.casefold() != username.casefold() and username_skeleton(existing) == skeleton:
            raise UsernameNotAllowed(LOOK_ALIKE_MESSAGE)
