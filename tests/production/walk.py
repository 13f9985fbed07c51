"""Production walk: deploy as the README says and use every page in Debian chromium.

    .venv/bin/python -m tests.production.walk      (or `make prod-walk`; CI runs it after the tests)

A fresh PostgreSQL database (actions_console_prod_walk) and Redis database (9), `migrate`,
`seed_demo`, `collectstatic` with production settings into a temporary STATIC_ROOT, then gunicorn
(config.wsgi, WhiteNoise, the manifest storage) and `settle_runs` on a free 127.0.0.1 port, over
plain HTTP the way the README tells a laptop to (DJANGO_SECURE_SSL_REDIRECT=0). In chromium it
opens every page route of the URLconf (acme's as alice, the platform's as a staff operator, an
invitation's without signing in) and fails on any other answer than 200 (405 for POST-only
routes), any console error (CSP violations are console errors), any serious or critical
axe-core violation, a static file served under its plain name, or the TypeScript worker
uncompressed. In the custom-action editor it types a type error and waits for the TypeScript
worker to mark it, types a fix and saves, for a new action from a starter and for a seeded one,
and sees the saved version. It prints what it measured. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.accessibility import severe_violations

BASE_DIR = Path(__file__).resolve().parents[2]
DATABASE_NAME = "actions_console_prod_walk"
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432"
DEFAULT_REDIS = "redis://127.0.0.1:6379/9"
TENANT = "acme"
OPERATOR, PASSWORD = "alice", "demo-pass-123"
STAFF_OPERATOR = "walk-staff"
# Routes opened without signing in (an invitee has no account yet) and as staff only.
ANONYMOUS_PREFIXES = ("invitations/",)
STAFF_PREFIXES = ("platform/",)
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
# Django's hashed names: name.<12 hex digits>.ext
HASHED_NAME = re.compile(r"\.[0-9a-f]{12}\.(js|css)$")
# Text files below this size are not worth compressing (WhiteNoise skips what does not shrink).
COMPRESS_FROM_BYTES = 1024


class WalkFailed(Exception):
    pass


@dataclass
class Measurements:
    timings: dict[str, float] = field(default_factory=dict)
    static_root_mb: float = 0.0
    static_files: int = 0
    pages: int = 0

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        print(f"== {name}", flush=True)
        started = time.monotonic()
        yield
        self.timings[name] = time.monotonic() - started
        print(f"   {self.timings[name]:.1f} s", flush=True)


def production_env(database_url: str, redis_url: str, static_root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_DEBUG", "OUTBOX_IN_PROCESS"}}
    env.update(
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        DJANGO_STATIC_ROOT=str(static_root),
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        # Plain HTTP on 127.0.0.1, as the README's laptop recipe: no redirect to https. The cookies
        # stay Secure; chromium keeps Secure cookies for http://127.0.0.1 (a trustworthy origin).
        DJANGO_SECURE_SSL_REDIRECT="0",
        ACTIONS_RUNTIME_WORKERS="1",
    )
    return env


def fresh_database(postgres_url: str) -> str:
    import psycopg

    with psycopg.connect(f"{postgres_url}/postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE_NAME} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {DATABASE_NAME}")
    return f"{postgres_url}/{DATABASE_NAME}"


def drop_database(postgres_url: str) -> None:
    import psycopg

    with psycopg.connect(f"{postgres_url}/postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE_NAME} WITH (FORCE)")


def fresh_redis(redis_url: str) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushdb()


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, check=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_up(url: str, server: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise WalkFailed(f"gunicorn exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise WalkFailed(f"gunicorn did not answer {url} within {timeout_s:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def console_routes() -> list[str]:
    """Every page route of the URLconf (the management API has its own tests)."""
    from django.urls import URLPattern, URLResolver, get_resolver

    def walk(patterns: list[Any], prefix: str) -> list[str]:
        routes = []
        for entry in patterns:
            if isinstance(entry, URLResolver):
                routes += walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                routes.append(prefix + str(entry.pattern))
        return routes

    return [route for route in walk(get_resolver().url_patterns, "") if not route.startswith("api/")]


def sample_values() -> dict[str, str]:
    """Real objects of the seeded tenant for every URL parameter, so each page shows something."""
    from audit_app.models import AuditEvent
    from flows_app.models import ActionExecution, WebhookDelivery
    from tenants.models import ApiToken, Tenant

    tenant = Tenant.objects.get(slug=TENANT)
    execution = (
        ActionExecution.objects.filter(tenant=tenant, action__kind="custom").select_related("action", "flow").last()
    )
    if execution is None:
        raise WalkFailed("seed_demo left acme without runs of a custom action")
    # The delivery log of a webhook binding shows deliveries; any other binding's, an empty state.
    delivery = (
        WebhookDelivery.objects.filter(tenant=tenant, binding__revision__flow=execution.flow)
        .select_related("binding")
        .last()
    )
    token = ApiToken.objects.filter(tenant=tenant).last()
    event = AuditEvent.objects.filter(tenant=tenant).order_by("-id").first()
    return {
        "tenant_slug": TENANT,
        "action_slug": execution.action.slug,
        "version_label": execution.action_version,
        "execution_id": str(execution.pk),
        "flow_slug": execution.flow.slug,
        "transaction_id": execution.transaction_id,
        "binding_key": (delivery.binding.key if delivery and delivery.binding else execution.binding_key).hex,
        "token_key_id": token.key_id if token else "no-token",
        "member_username": "eddie",
        "event_id": str(event.pk if event else 0),
        # The restore preview of the flow's first revision, and a promote preview into a second
        # flow of the same kind (the demo has one flow per kind, so the walk makes one).
        "revision_number": "1",
        "target_slug": promote_target(tenant, execution.flow).slug,
        # The delete confirmation of a secret of the custom action (the demo sets none).
        "secret_name": walk_secret(execution.action),
    }


def walk_secret(action: Any) -> str:
    from actions_app.secrets import set_secret
    from tenants.acting import Acting

    set_secret(action, "WALK_SECRET", "walk-secret-value", acting=Acting.platform("production walk"))
    return "WALK_SECRET"


def promote_target(tenant: Any, source: Any) -> Any:
    from flows_app.models import Flow
    from flows_app.services import create_flow
    from tenants.acting import Acting

    existing = Flow.objects.filter(tenant=tenant, kind=source.kind).exclude(pk=source.pk).first()
    if existing is not None:
        return existing
    name, slug = f"Walk {source.kind} staging", f"walk-{source.kind}-staging"
    return create_flow(tenant, name=name, slug=slug, kind=source.kind, acting=Acting.platform("production walk"))


def fill(route: str, values: dict[str, str]) -> str:
    url = "/" + route
    for name, value in values.items():
        url = re.sub(rf"<(?:slug|str|int|path):{name}>", value, url)
    if "<" in url:
        raise WalkFailed(f"{route}: the walk has no sample value for its parameters")
    return url


def invite_someone() -> dict[str, str]:
    """A pending invitation of acme, for the invitation pages (its link is shown once)."""
    from tenants.acting import Acting
    from tenants.invitations import invite_member
    from tenants.models import Tenant
    from tenants.roles import Role

    tenant = Tenant.objects.get(slug=TENANT)
    invitation, token = invite_member(
        tenant,
        "walk-invitee@example.com",
        Role.VIEWER,
        link_for=lambda secret: secret,
        acting=Acting.platform("production walk"),
    )
    return {"invitation_id": str(invitation.pk), "invitation_token": token}


def create_staff_operator(password: str) -> None:
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    user_model.objects.filter(username=STAFF_OPERATOR).delete()
    user_model.objects.create_user(STAFF_OPERATOR, f"{STAFF_OPERATOR}@example.com", password, is_staff=True)


class Browser:
    """One signed-in chromium context that records every problem it sees."""

    def __init__(self, playwright: Any, base_url: str) -> None:
        self.base_url = base_url
        self.browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        self.problems: list[str] = []
        self.static_responses: list[tuple[str, int, str, int]] = []

    def new_page(self) -> Any:
        context = self.browser.new_context(viewport={"width": 1280, "height": 900})
        context.on("response", self._check_response)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.on("console", lambda message: self._check_console(message, page.url))
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error} ({page.url})"))
        page.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.url} {r.failure} ({page.url})"))
        return page

    def _check_console(self, message: Any, url: str) -> None:
        # CSP violations, failed scripts and 4xx/5xx fetches are all console errors.
        if message.type == "error":
            self.problems.append(f"console: {message.text} ({url})")

    def _check_response(self, response: Any) -> None:
        if response.status >= 500:
            self.problems.append(f"{response.status} {response.request.method} {response.url}")
        path = response.url.removeprefix(self.base_url)
        if path.startswith("/static/"):
            headers = response.headers
            size = int(headers.get("content-length", "0") or 0)
            self.static_responses.append((path, response.status, headers.get("content-encoding", ""), size))

    def sign_in(self, page: Any, username: str, password: str) -> None:
        page.goto(f"{self.base_url}/accounts/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        if "/accounts/login/" in page.url:
            raise WalkFailed(f"{username} could not sign in over plain HTTP (Secure cookies refused?)")

    def close(self) -> None:
        self.browser.close()


def walk_pages(browser: Browser, page: Any, routes: list[str], values: dict[str, str]) -> int:
    """GET every route as the owner: 200 (pages, downloads) or 405 (POST-only), never anything else.
    HTML pages are opened in the page too, so their scripts run under the CSP."""
    visited = 0
    for route in routes:
        url = browser.base_url + fill(route, values)
        answer = page.request.get(url)
        if answer.status not in (200, 405):
            browser.problems.append(f"GET {url}: {answer.status}")
        if answer.status == 200 and answer.headers.get("content-type", "").startswith("text/html"):
            if "worker-src" not in answer.headers.get("content-security-policy", ""):
                browser.problems.append(f"GET {url}: no Content-Security-Policy")
            page.goto(url)
            page.wait_for_load_state("networkidle")
            browser.problems += [f"axe-core {url}: {violation}" for violation in severe_violations(page)]
            visited += 1
    return visited


def walk_starters(browser: Browser, page: Any) -> None:
    from actions_app.starters import STARTERS

    for starter in STARTERS:
        url = f"{browser.base_url}/t/{TENANT}/actions/new/?starter={starter.key}"
        answer = page.request.get(url)
        if answer.status != 200:
            browser.problems.append(f"GET {url}: {answer.status}")


def wait_for_monaco(page: Any, measurements: Measurements, label: str) -> None:
    """Wait for the editor (SDK types loaded) and for an answer from its TypeScript worker, and
    note both times in milliseconds from navigation start."""
    page.wait_for_selector("#monaco-container[data-ready=true]")
    measurements.timings[f"{label}: editor ready (ms after navigation)"] = page.evaluate("performance.now()")
    measurements.timings[f"{label}: TypeScript worker answered (ms after navigation)"] = page.evaluate(
        """async () => {
            const worker = await (await monaco.typescript.getTypeScriptWorker())(monaco.Uri.parse("file:///action.ts"));
            await worker.getSemanticDiagnostics("file:///action.ts");
            return performance.now();
        }"""
    )


def type_and_save(page: Any, measurements: Measurements, label: str) -> None:
    """Type a type error, wait for the TypeScript worker to mark it, replace it with a comment and
    save with the button."""
    wait_for_monaco(page, measurements, label)
    page.locator("#monaco-container .view-lines").click()
    page.keyboard.press("Control+End")
    page.keyboard.type("\nconst walkCheck: number = 'typed in production';")
    started = time.monotonic()
    page.wait_for_function(
        "() => monaco.editor.getModelMarkers({}).some("
        "m => m.severity === monaco.MarkerSeverity.Error && m.message.includes('not assignable to type'))"
    )
    measurements.timings[f"{label}: type error marked (ms after typing)"] = (time.monotonic() - started) * 1000
    page.keyboard.press("Control+Shift+K")  # delete the line
    page.keyboard.type("// checked by the production walk")
    page.wait_for_function("() => !monaco.editor.getModelMarkers({}).some(m => m.severity === 8)")
    if "checked by the production walk" not in page.evaluate("window.actionEditor.getValue()"):
        raise WalkFailed(f"{label}: typing did not reach the editor")
    page.locator("#save-button").click()
    page.wait_for_load_state()


def walk_editor(browser: Browser, page: Any, measurements: Measurements, existing_action: str) -> None:
    # A new action from a starter.
    page.goto(f"{browser.base_url}/t/{TENANT}/actions/new/?starter=domain-allowlist")
    page.get_by_label("Name").fill("Walk allowlist")
    type_and_save(page, measurements, "new action")
    page.wait_for_url(f"**/t/{TENANT}/actions/walk-allowlist/")
    page.get_by_text("Saved walk-allowlist 0.1.0 as a draft.").wait_for()
    wait_for_monaco(page, measurements, "new action, saved (Monaco from the browser cache)")
    # A seeded custom action: a new version of it.
    page.goto(f"{browser.base_url}/t/{TENANT}/actions/{existing_action}/")
    latest_before = page.locator("#history tbody tr").first.inner_text()
    type_and_save(page, measurements, "existing action")
    page.locator("#history tbody tr").first.wait_for()
    latest_after = page.locator("#history tbody tr").first.inner_text()
    if latest_after == latest_before or "checked by the production walk" not in page.content():
        raise WalkFailed(f"saving {existing_action} showed no new version")
    wait_for_monaco(page, measurements, "existing action, saved (Monaco from the browser cache)")


def check_static_responses(browser: Browser) -> None:
    ts_worker = [r for r in browser.static_responses if r[0].startswith("/static/monaco/vs/assets/ts.worker-")]
    if not any(encoding in ("gzip", "br") for _, _, encoding, _ in ts_worker):
        browser.problems.append(f"the TypeScript worker never came compressed: {ts_worker}")
    for path, status, encoding, size in browser.static_responses:
        if status == 304:
            continue
        if not HASHED_NAME.search(path):
            browser.problems.append(f"static file under its plain name: {path}")
        if size >= COMPRESS_FROM_BYTES and encoding not in ("gzip", "br"):
            browser.problems.append(f"static file not compressed: {path} ({size} bytes)")


def run_walk(args: argparse.Namespace, measurements: Measurements) -> None:
    static_root = Path(tempfile.mkdtemp(prefix="prod-walk-static-"))
    processes: list[subprocess.Popen[bytes]] = []
    log_path = static_root.with_suffix(".log")
    try:
        with measurements.timed("fresh PostgreSQL and Redis databases"):
            database_url = fresh_database(args.postgres)
            fresh_redis(args.redis)
        env = production_env(database_url, args.redis, static_root)
        with measurements.timed("manage.py migrate"):
            manage(env, "migrate", "--noinput", "-v", "0")
        with measurements.timed("manage.py seed_demo"):
            manage(env, "seed_demo")
        with measurements.timed("manage.py collectstatic"):
            manage(env, "collectstatic", "--noinput", "-v", "1")
        files = [p for p in static_root.rglob("*") if p.is_file()]
        measurements.static_files = len(files)
        measurements.static_root_mb = sum(p.stat().st_size for p in files) / 2**20

        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        with open(log_path, "wb") as log:
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "config.wsgi",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "2",
                    "--no-control-socket",
                ],
                cwd=BASE_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            processes.append(server)
            processes.append(
                subprocess.Popen(
                    [sys.executable, "manage.py", "settle_runs"], cwd=BASE_DIR, env=env, stdout=log, stderr=log
                )
            )
        with measurements.timed("gunicorn up"):
            wait_until_up(f"{base_url}/accounts/login/", server)

        os.environ.update(env)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        import django

        django.setup()
        values = sample_values() | invite_someone()
        staff_password = secrets.token_urlsafe(16)
        create_staff_operator(staff_password)
        routes = console_routes()

        from playwright.sync_api import sync_playwright

        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's loop; the ORM work is done
        with sync_playwright() as playwright:
            browser = Browser(playwright, base_url)
            try:
                # Who opens which pages: whoever holds an invitation link (no account yet), staff
                # (the platform pages) and acme's owner (everything else).
                anonymous_routes = [r for r in routes if r.startswith(ANONYMOUS_PREFIXES)]
                staff_routes = [r for r in routes if r.startswith(STAFF_PREFIXES)]
                owner_routes = [r for r in routes if r not in anonymous_routes and r not in staff_routes]
                with measurements.timed("invitation pages, not signed in"):
                    measurements.pages += walk_pages(browser, browser.new_page(), anonymous_routes, values)
                page = browser.new_page()
                with measurements.timed(f"every page as {OPERATOR}"):
                    browser.sign_in(page, OPERATOR, PASSWORD)
                    measurements.pages += walk_pages(browser, page, owner_routes, values)
                    walk_starters(browser, page)
                with measurements.timed("custom-action editor: type, check, save"):
                    walk_editor(browser, page, measurements, values["action_slug"])
                with measurements.timed("staff pages"):
                    staff_page = browser.new_page()
                    browser.sign_in(staff_page, STAFF_OPERATOR, staff_password)
                    measurements.pages += walk_pages(browser, staff_page, staff_routes, values)
                check_static_responses(browser)
            except Exception as error:  # a step that could not go on: say what led to it
                browser.problems.append(f"stopped: {type(error).__name__}: {error}")
            finally:
                browser.close()
        if browser.problems:
            raise WalkFailed("\n".join(["problems seen:", *(f"  - {p}" for p in browser.problems)]))
    except Exception:
        if log_path.exists():
            print("---- gunicorn and settle_runs log (last 80 lines) ----", file=sys.stderr)
            print("\n".join(log_path.read_text(errors="replace").splitlines()[-80:]), file=sys.stderr)
        raise
    finally:
        for process in processes:
            stop(process)
        if not args.keep:
            shutil.rmtree(static_root, ignore_errors=True)
            log_path.unlink(missing_ok=True)
            drop_database(args.postgres)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="server URL without a database name")
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="Redis URL with the database the walk may empty")
    parser.add_argument("--keep", action="store_true", help="keep the database, static files and server log")
    args = parser.parse_args()
    measurements = Measurements()
    started = time.monotonic()
    try:
        run_walk(args, measurements)
    except (WalkFailed, subprocess.CalledProcessError) as failure:
        print(f"PRODUCTION WALK FAILED: {failure}", file=sys.stderr)
        return 1
    print("== measurements")
    print(f"   collectstatic: {measurements.static_files} files, {measurements.static_root_mb:.0f} MiB")
    for name, value in measurements.timings.items():
        print(f"   {name}: {value:.1f}" + ("" if "ms" in name else " s"))
    print(f"   {measurements.pages} pages opened in chromium; walk took {time.monotonic() - started:.0f} s")
    print("PRODUCTION WALK PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
