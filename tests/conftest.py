"""Shared fixtures: personas in two tenants, API tokens, a browser. Fixtures only: builders and
constants live in tests/factories.py (and helper modules), which test modules import instead.

Personas (STYLE.md, tests/factories.py): owner, admin, editor and viewer of tenant A ("acme"), and
an outsider who owns tenant B ("globex") and is no member of A.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db.backends.signals import connection_created
from django.test.utils import override_settings

from tenants.acting import Acting
from tenants.models import Tenant
from tenants.services import create_api_token
from tests.accessibility import AccessibilityAudit
from tests.factories import Personas, found_personas, remove_personas, stored_personas


def _allow_test_flush(sender: Any, connection: Any, **kwargs: Any) -> None:
    # The audit table's TRUNCATE guard (migration audit_app 0003) lets the test runner empty
    # tables between transactional tests only when the session says it is the test runner.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET actions_console.test_flush = 'on'")


connection_created.connect(_allow_test_flush, dispatch_uid="tests.allow_test_flush")

# Password hashing is deliberately slow; tests create many operators, so use a fast hasher.
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _own_redis_database_per_worker() -> None:
    """Under pytest-xdist each worker uses its own Redis database: the configured one plus the
    worker's number. Tests start from an empty cache with cache.clear(), which is FLUSHDB, and
    would otherwise wipe counters that a test in the other worker is counting with. Processes a
    test starts inherit the worker's database through REDIS_URL."""
    configured = urlsplit(os.environ.get("REDIS_URL", ""))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if configured.scheme not in ("redis", "rediss") or not worker.startswith("gw"):
        return
    number = int(configured.path.strip("/") or 0) + int(worker.removeprefix("gw"))
    if number >= 16:  # Redis has 16 databases unless configured otherwise; sharing one would flake
        raise pytest.UsageError(f"REDIS_URL's database plus {worker} is {number}; Redis has 0-15.")
    own = urlunsplit(configured._replace(path=f"/{number}"))
    os.environ["REDIS_URL"] = own
    override_settings(CACHES={"default": {**settings.CACHES["default"], "LOCATION": own}}).enable()


_own_redis_database_per_worker()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> None:
    """The test database (one per xdist worker) with the personas founded once, committed: each
    test's transaction rolls back to them instead of founding two tenants and five operators."""
    with django_db_blocker.unblock():
        if stored_personas() is None:  # absent unless --reuse-db kept them from an earlier run
            found_personas()


@pytest.fixture
def personas(db: None) -> Personas:
    """The personas, read afresh for this test (no test sees another's in-memory changes). A
    transactional test (transaction=True, live_server) ends by flushing every table; the next test
    that asks for the personas founds them again, as the suite did for every test before."""
    return stored_personas() or found_personas()


@pytest.fixture
def without_personas(db: None) -> None:
    """The database as migrations leave it, for tests that found acme and globex themselves
    (seed_demo): the session's personas are deleted in the test's transaction, which rolls back."""
    remove_personas()


@pytest.fixture
def api_token(personas: Personas) -> Any:
    """Factory: a bearer token string of tenant A (or `tenant`) with the given scopes."""

    def make(*scopes: str, tenant: Tenant | None = None) -> str:
        _, secret = create_api_token(
            tenant or personas.tenant_a, name="test token", scopes=list(scopes), acting=Acting.platform("tests")
        )
        return secret

    return make


@pytest.fixture
def single_worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A sandbox pool of one worker process, started fresh and shut down after the test."""
    from actions_app.runtime import executor as runtime_executor
    from actions_app.runtime import shutdown_pool

    shutdown_pool()
    monkeypatch.setenv("ACTIONS_RUNTIME_WORKERS", "1")
    runtime_executor.wait_for_idle_workers_for_tests()
    yield
    shutdown_pool()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser() -> Any:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("CI must have Debian's chromium at /usr/bin/chromium (tests/ensure_chromium.sh)")
        pytest.skip("Debian's chromium is not installed; see tests/ensure_chromium.sh")
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls from the test
    # body are still synchronous, so tell Django not to refuse them.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def accessibility_audit(browser: Any) -> Any:
    """axe-core checks every page of every context the test opens (tests/accessibility.py);
    the test fails on a serious or critical violation."""
    audit = AccessibilityAudit()
    new_context = browser.new_context
    browser.new_context = lambda *args, **kwargs: audit.watch_context(new_context(*args, **kwargs))
    yield audit
    del browser.new_context
    if audit.violations:
        pytest.fail("axe-core found serious or critical violations:\n" + "\n".join(audit.violations))


@pytest.fixture
def page(browser: Any, accessibility_audit: AccessibilityAudit) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def console_errors(page: Any) -> list[str]:
    """Errors the page logs to its console (CSP violations, failed scripts); tests expect none."""
    errors: list[str] = []

    def keep(message: Any) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", keep)
    return errors
