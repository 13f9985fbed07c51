from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from tests.factories import PASSWORD

ROOT = Path(__file__).resolve().parent.parent


def test_pages_carry_a_content_security_policy(client: Any, personas: Any) -> None:
    client.force_login(personas.viewer)
    response = client.get("/t/acme/actions/")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-eval" not in policy
    assert response["X-Frame-Options"] == "DENY"
    assert len(response["X-Request-ID"]) >= 8


def test_the_shell_loads_htmx_from_the_package_and_sends_csrf(client: Any, personas: Any) -> None:
    client.force_login(personas.viewer)
    html = client.get("/t/acme/actions/").content.decode()
    assert "/static/django_htmx/htmx" in html
    assert "X-CSRFToken" in html
    assert "https://" not in html.split("<body")[0], "no third-party asset in <head>"
    for label in ("Authentication", "Actions", "Flows", "Audit"):
        assert label in html


def test_sign_in_and_out(client: Any, personas: Any) -> None:
    response = client.post("/accounts/login/", {"username": "a-viewer", "password": PASSWORD})
    assert response.status_code == 302
    # one tenant → straight to its Actions list
    assert client.get("/").url == "/t/acme/actions/"
    client.post("/accounts/logout/")
    assert client.get("/t/acme/actions/").status_code == 302


def test_repeated_failed_sign_ins_lock_the_account_for_that_address(client: Any, personas: Any) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post("/accounts/login/", {"username": "a-viewer", "password": "wrong"})
        assert response.status_code == 200
        assert "didn" in response.content.decode()
    response = client.post("/accounts/login/", {"username": "a-viewer", "password": "wrong"})
    assert response.status_code == 429
    # Even the right password is refused while locked.
    response = client.post("/accounts/login/", {"username": "a-viewer", "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    # The lock-out is per username+address: another operator still signs in.
    response = client.post("/accounts/login/", {"username": "a-editor", "password": PASSWORD})
    assert response.status_code == 302


def test_session_cookie_is_http_only(client: Any, personas: Any) -> None:
    response = client.post("/accounts/login/", {"username": "a-viewer", "password": PASSWORD})
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"


def test_check_deploy_is_clean_with_production_settings(tmp_path: Path) -> None:
    # The browser fixture's async-safety switch must not leak into a production check.
    inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {
        **inherited,
        "DJANGO_ENV": "production",
        "DJANGO_SECRET_KEY": "k" * 20 + "-Production-Secret-For-Check-9f8e7d6c5b4a",
        "DJANGO_ALLOWED_HOSTS": "console.example.com",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key() -> None:
    env = {**os.environ, "DJANGO_ENV": "production", "DJANGO_SECRET_KEY": ""}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


@pytest.mark.parametrize("path", ["/t/acme/actions/", "/t/acme/flows/", "/t/acme/audit/"])
def test_every_page_has_a_title_and_breadcrumb(client: Any, personas: Any, path: str) -> None:
    client.force_login(personas.viewer)
    html = client.get(path).content.decode()
    assert "<title>" in html and 'aria-label="Breadcrumb"' in html


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "expected"),
    [
        (0, "203.0.113.7", "198.51.100.1", "203.0.113.7"),  # no proxy: the header is the client's own claim
        (1, "10.0.0.2", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # the balancer's entry, not the spoofed one
        (2, "10.0.0.2", "6.6.6.6, 198.51.100.1, 192.0.2.9", "198.51.100.1"),  # CDN then balancer
        (2, "10.0.0.2", "198.51.100.1", "10.0.0.2"),  # did not come through both proxies
        (1, "10.0.0.2", "not-an-address", None),
        (1, "10.0.0.2", "2001:DB8::0001", "2001:db8::1"),
    ],
)
def test_the_client_address_trusts_only_the_configured_proxies(
    settings: Any, trusted: int, remote: str, forwarded: str, expected: str | None
) -> None:
    from django.test import RequestFactory

    from core.http import client_ip

    settings.TRUSTED_PROXY_COUNT = trusted
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_sign_in_lock_out_counts_the_forwarded_client_not_the_balancer(client: Any, settings: Any, db: Any) -> None:
    """Behind a balancer every request has its address; locking that out would lock out everyone."""
    from django.contrib.auth import get_user_model

    settings.TRUSTED_PROXY_COUNT = 1
    get_user_model().objects.create_user("lockme", password="right-pass-123")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            "/accounts/login/",
            {"username": "lockme", "password": "wrong"},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR="198.51.100.1",
        )
    locked = client.post(
        "/accounts/login/",
        {"username": "lockme", "password": "right-pass-123"},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="198.51.100.1",
    )
    assert locked.status_code != 302  # the forwarded client that failed is locked out, right password or not
    from_elsewhere = client.post(
        "/accounts/login/",
        {"username": "lockme", "password": "right-pass-123"},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="203.0.113.50",
    )
    assert from_elsewhere.status_code == 302  # signed in: the attacker's address is locked, not the balancer's
