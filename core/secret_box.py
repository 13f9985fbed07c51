"""Encryption at rest for stored secrets (write-only config fields, webhook URLs and signing secrets).

Tokens are Fernet (AES-128-CBC + HMAC-SHA256, with a timestamp), so a tampered or foreign token is
refused rather than decrypted to garbage.

Keys come from the setting `SECRETS_ENCRYPTION_KEYS`: a list of Fernet keys (urlsafe base64 of 32
bytes, e.g. from `python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`).
The first key encrypts; every key decrypts, so a key can be rotated by putting the new key first,
re-encrypting with `rotate_secret` and later dropping the old key.

Without that setting the key is derived from `SECRET_KEY` with HKDF-SHA256. That keeps `make run`
working with no set-up, but it ties stored secrets to `SECRET_KEY`: rotating `SECRET_KEY` would make
them unreadable. Production should set `SECRETS_ENCRYPTION_KEYS` explicitly. To move from the derived
key to explicit keys without losing stored secrets, list the new key first and the derived key
(`derived_fernet_key(settings.SECRET_KEY)`) second, then re-encrypt.
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# Changing either constant changes the derived key and makes existing tokens unreadable.
_HKDF_SALT = b"actions-console/secret-box"
_HKDF_INFO = b"fernet-key-v1"


class SecretDecryptError(Exception):
    """The token is not one of ours: tampered with, truncated, or encrypted under a key we no longer have."""


def derived_fernet_key(secret_key: str) -> str:
    """The Fernet key used when `SECRETS_ENCRYPTION_KEYS` is not set, derived from `secret_key`."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO).derive(
        secret_key.encode("utf-8")
    )
    return base64.urlsafe_b64encode(derived).decode("ascii")


def encrypt_secret(plain: str) -> str:
    """Encrypt `plain` under the current (first) key; the result is ASCII, safe for a TextField."""
    return _secret_box().encrypt(plain.encode("utf-8")).decode("ascii")


def encrypt_repeated_secret(plain: str, *, scope: object) -> str:
    """`encrypt_secret` for a value stored over and over (a webhook's URL and signing secret, once per
    flow run): within one `scope` (a tenant) the same token is reused while the keys stay the same.
    Equal tokens show only that the value repeats, which the rows' binding already says; another
    scope gets its own token, so equal secrets of two tenants do not show as equal."""
    return _encrypt_cached(_secret_box(), scope, plain)


@functools.lru_cache(maxsize=1024)
def _encrypt_cached(box: MultiFernet, scope: object, plain: str) -> str:
    # Keyed by the box too, so a key rotation (a new box) starts encrypting under the new key at once.
    return box.encrypt(plain.encode("utf-8")).decode("ascii")


def decrypt_secret(token: str) -> str:
    """Decrypt a token made by `encrypt_secret` with any configured key; `SecretDecryptError` otherwise."""
    try:
        return _secret_box().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError, AttributeError) as error:
        raise SecretDecryptError("The stored secret could not be decrypted with the configured keys.") from error


def rotate_secret(token: str) -> str:
    """Re-encrypt a stored token under the current key (for key rotation)."""
    try:
        return _secret_box().rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError, AttributeError) as error:
        raise SecretDecryptError("The stored secret could not be decrypted with the configured keys.") from error


def _secret_box() -> MultiFernet:
    configured = getattr(settings, "SECRETS_ENCRYPTION_KEYS", None) or []
    if isinstance(configured, str):
        # A single key given as a string is an easy mistake (e.g. straight from an environment variable).
        configured = [configured]
    return _build_secret_box(tuple(configured), settings.SECRET_KEY)


@functools.lru_cache(maxsize=8)
def _build_secret_box(configured_keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    keys = configured_keys or (derived_fernet_key(secret_key),)
    fernets = []
    for position, key in enumerate(keys):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError) as error:
            raise ImproperlyConfigured(
                f"SECRETS_ENCRYPTION_KEYS[{position}] is not a Fernet key (urlsafe base64 of 32 bytes)."
            ) from error
    return MultiFernet(fernets)
