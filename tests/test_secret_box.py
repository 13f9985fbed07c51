"""core.secret_box: Fernet encryption of stored secrets, key rotation, and the SECRET_KEY fallback."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from pytest_django.fixtures import Settings

from core.secret_box import (
    SecretDecryptError,
    decrypt_secret,
    derived_fernet_key,
    encrypt_repeated_secret,
    encrypt_secret,
    rotate_secret,
)

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def test_it_round_trips_text_without_leaving_it_readable() -> None:
    token = encrypt_secret("https://hooks.slack.com/services/T000/B000/XXX — ünïcode")
    assert "hooks.slack.com" not in token
    assert token.isascii()
    assert decrypt_secret(token) == "https://hooks.slack.com/services/T000/B000/XXX — ünïcode"


def test_it_encrypts_the_same_text_differently_each_time() -> None:
    assert encrypt_secret("s3cret") != encrypt_secret("s3cret")


def test_it_round_trips_the_empty_string() -> None:
    assert decrypt_secret(encrypt_secret("")) == ""


@pytest.mark.parametrize("bad_token", ["", "not-a-token", "gAAAAA" + "A" * 80, "ünïcode"])
def test_it_refuses_tokens_that_are_not_ours(bad_token: str) -> None:
    with pytest.raises(SecretDecryptError):
        decrypt_secret(bad_token)


def test_it_refuses_a_tampered_token() -> None:
    token = encrypt_secret("s3cret")
    tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    with pytest.raises(SecretDecryptError):
        decrypt_secret(tampered)


def test_it_uses_a_key_derived_from_secret_key_by_default(settings: Settings) -> None:
    settings.SECRETS_ENCRYPTION_KEYS = []
    token = encrypt_secret("s3cret")
    assert Fernet(derived_fernet_key(settings.SECRET_KEY)).decrypt(token.encode()) == b"s3cret"

    settings.SECRET_KEY = "another-secret-key-" + "y" * 40
    with pytest.raises(SecretDecryptError):
        decrypt_secret(token)


def test_it_encrypts_with_the_first_configured_key_and_decrypts_with_all(settings: Settings) -> None:
    settings.SECRETS_ENCRYPTION_KEYS = [OLD_KEY]
    old_token = encrypt_secret("rotate me")

    settings.SECRETS_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    new_token = encrypt_secret("fresh")
    assert decrypt_secret(old_token) == "rotate me"
    assert Fernet(NEW_KEY.encode()).decrypt(new_token.encode()) == b"fresh"

    rotated = rotate_secret(old_token)
    settings.SECRETS_ENCRYPTION_KEYS = [NEW_KEY]
    assert decrypt_secret(rotated) == "rotate me"
    with pytest.raises(SecretDecryptError):
        decrypt_secret(old_token)


def test_it_does_not_fall_back_to_secret_key_once_keys_are_configured(settings: Settings) -> None:
    settings.SECRETS_ENCRYPTION_KEYS = []
    derived_token = encrypt_secret("s3cret")
    settings.SECRETS_ENCRYPTION_KEYS = [NEW_KEY]
    with pytest.raises(SecretDecryptError):
        decrypt_secret(derived_token)
    # The documented migration: list the derived key after the new one.
    settings.SECRETS_ENCRYPTION_KEYS = [NEW_KEY, derived_fernet_key(settings.SECRET_KEY)]
    assert decrypt_secret(derived_token) == "s3cret"


def test_it_names_a_malformed_configured_key(settings: Settings) -> None:
    settings.SECRETS_ENCRYPTION_KEYS = [NEW_KEY, "too-short"]
    with pytest.raises(ImproperlyConfigured, match=r"SECRETS_ENCRYPTION_KEYS\[1\]"):
        encrypt_secret("s3cret")


def test_a_repeated_secret_reuses_its_token_until_the_key_changes(settings: Settings) -> None:
    settings.SECRETS_ENCRYPTION_KEYS = [OLD_KEY]
    first = encrypt_repeated_secret("https://hooks.example.com/in", scope=1)
    assert encrypt_repeated_secret("https://hooks.example.com/in", scope=1) == first
    assert encrypt_repeated_secret("https://hooks.example.com/other", scope=1) != first
    # Another tenant's equal secret does not show as equal.
    assert encrypt_repeated_secret("https://hooks.example.com/in", scope=2) != first
    assert decrypt_secret(first) == "https://hooks.example.com/in"

    # After a rotation the next delivery is sealed under the new key, not the cached old token.
    settings.SECRETS_ENCRYPTION_KEYS = [NEW_KEY]
    rotated = encrypt_repeated_secret("https://hooks.example.com/in", scope=1)
    assert rotated != first
    assert Fernet(NEW_KEY.encode()).decrypt(rotated.encode()) == b"https://hooks.example.com/in"
