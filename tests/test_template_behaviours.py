"""Each platform template's behaviour, run through the real engine on a real flow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.core.cache import cache
from django.db import connection

from flows_app.models import WebhookDelivery
from flows_app.services import BindingSpec
from tests.flow_helpers import attach, run

PRE = "login.pre-credential-check"
POST_AUTH = "login.post-auth"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def fresh_counters() -> None:
    cache.clear()


@pytest.mark.parametrize(
    ("email", "include_subdomains", "allowed"),
    [
        ("a@example.com", False, True),
        ("a@EXAMPLE.com", False, True),
        ("a@eu.example.com", False, False),
        ("a@eu.example.com", True, True),
        ("a@badexample.com", True, False),
        ("a@evil.com", False, False),
        ("not-an-email", False, False),
    ],
)
def test_domain_allowlist(personas: Any, email: str, include_subdomains: bool, allowed: bool) -> None:
    config = {"domains": ["example.com"], "include_subdomains": include_subdomains, "message": "Staff only"}
    attach(personas.tenant_a, PRE, BindingSpec("domain-allowlist", "1.0.0", config))
    outcome = run(personas.tenant_a, PRE, email=email).outcome
    assert outcome["kind"] == ("continue" if allowed else "block")
    if not allowed:
        assert outcome["reason"] == "Staff only"


def test_domain_blocklist(personas: Any) -> None:
    attach(personas.tenant_a, PRE, BindingSpec("domain-blocklist", "1.0.0", {"domains": ["spam.test"]}))
    assert run(personas.tenant_a, PRE, email="x@spam.test").outcome["kind"] == "block"
    assert run(personas.tenant_a, PRE, email="x@ok.test").outcome["kind"] == "continue"


def test_rate_limit_by_ip_admits_exactly_the_limit_per_ip(personas: Any) -> None:
    attach(personas.tenant_a, PRE, BindingSpec("rate-limit-by-ip", "1.0.0", {"limit": 3, "window_seconds": 60}))
    kinds = [run(personas.tenant_a, PRE, ip="198.51.100.1").outcome["kind"] for _ in range(5)]
    assert kinds == ["continue"] * 3 + ["block"] * 2
    assert run(personas.tenant_a, PRE, ip="198.51.100.2").outcome["kind"] == "continue"


def test_rate_limit_counters_are_per_tenant(personas: Any) -> None:
    config = {"limit": 1, "window_seconds": 60}
    attach(personas.tenant_a, PRE, BindingSpec("rate-limit-by-ip", "1.0.0", config))
    attach(personas.tenant_b, PRE, BindingSpec("rate-limit-by-ip", "1.0.0", config))
    assert run(personas.tenant_a, PRE, ip="198.51.100.9").outcome["kind"] == "continue"
    assert run(personas.tenant_b, PRE, ip="198.51.100.9").outcome["kind"] == "continue"
    assert run(personas.tenant_a, PRE, ip="198.51.100.9").outcome["kind"] == "block"


def test_rate_limit_by_ip_1_1_skips_allowed_networks_and_1_0_keeps_old_behaviour(personas: Any) -> None:
    tenant = personas.tenant_a
    newer = {"limit": 1, "window_seconds": 60, "allow_cidrs": ["203.0.113.0/24"]}
    attach(tenant, PRE, BindingSpec("rate-limit-by-ip", "1.1.0", newer))
    assert [run(tenant, PRE, ip="203.0.113.5").outcome["kind"] for _ in range(3)] == ["continue"] * 3
    assert [run(tenant, PRE, ip="198.51.100.5").outcome["kind"] for _ in range(2)] == ["continue", "block"]
    cache.clear()
    attach(tenant, PRE, BindingSpec("rate-limit-by-ip", "1.0.0", {"limit": 1, "window_seconds": 60}))
    assert [run(tenant, PRE, ip="203.0.113.5").outcome["kind"] for _ in range(2)] == ["continue", "block"]


def test_allow_cidrs_is_refused_on_1_0_0(personas: Any) -> None:
    from flows_app.services import InvalidBindings

    with pytest.raises(InvalidBindings):
        attach(
            personas.tenant_a,
            PRE,
            BindingSpec("rate-limit-by-ip", "1.0.0", {"limit": 1, "window_seconds": 60, "allow_cidrs": []}),
        )


def test_rate_limit_by_user(personas: Any) -> None:
    attach(
        personas.tenant_a,
        PRE,
        BindingSpec("rate-limit-by-user", "1.0.0", {"max_attempts": 2, "window_seconds": 300, "message": "slow down"}),
    )
    kinds = [run(personas.tenant_a, PRE, user_id="u-1", ip=f"198.51.100.{i}").outcome for i in range(3)]
    assert [k["kind"] for k in kinds] == ["continue", "continue", "block"]
    assert kinds[2]["reason"] == "slow down"
    assert run(personas.tenant_a, PRE, user_id="u-2").outcome["kind"] == "continue"


def test_decorate_token_from_a_missing_path_omits_the_claim(personas: Any) -> None:
    attach(
        personas.tenant_a,
        "login.pre-token",
        BindingSpec("decorate-token", "1.0.0", {"claim": "https://x/tier", "from": "app_metadata.tier"}),
    )
    result = run(personas.tenant_a, "login.pre-token")
    assert result.outcome["claims"] == {}
    assert "not set" in result.executions[0].logs[0]["message"]


@pytest.mark.parametrize(("score", "kind"), [(70, "continue"), (71, "block")])
def test_block_by_risk_score_is_strictly_above(personas: Any, score: int, kind: str) -> None:
    attach(personas.tenant_a, POST_AUTH, BindingSpec("block-by-risk-score", "1.0.0", {"threshold": 70}))
    assert run(personas.tenant_a, POST_AUTH, risk=score).outcome["kind"] == kind


def test_redirect_by_group_first_match_wins(personas: Any) -> None:
    rules = [
        {"group": "contractors", "url": "https://contractors.example.com/"},
        {"group": "staff", "url": "https://staff.example.com/"},
    ]
    attach(personas.tenant_a, "login.post-login", BindingSpec("redirect-by-group", "1.0.0", {"rules": rules}))
    outcome = run(personas.tenant_a, "login.post-login", groups=["staff", "contractors"]).outcome
    assert outcome["url"] == "https://contractors.example.com/"
    assert run(personas.tenant_a, "login.post-login", groups=["others"]).outcome["kind"] == "continue"


def test_webhook_and_slack_continue_at_once_and_queue_deliveries(personas: Any) -> None:
    from core.secret_box import decrypt_secret

    attach(
        personas.tenant_a,
        POST_AUTH,
        BindingSpec(
            "webhook-emit",
            "1.0.0",
            {"url": "https://hooks.example.com/in", "secret": "a-signing-secret-123", "include": ["user"]},
        ),
        BindingSpec(
            "slack-notify",
            "1.0.0",
            {"webhook_url": "https://hooks.slack.com/services/T/B/X", "text": "{user.email} signed in ({nothing})"},
        ),
    )
    result = run(personas.tenant_a, POST_AUTH, email="jane@example.com", transaction_id="tx-w")
    assert result.outcome["kind"] == "continue"
    deliveries = {d.action_slug: d for d in WebhookDelivery.objects.all()}
    assert deliveries["webhook-emit"].body["user"]["email"] == "jane@example.com"
    assert "request" not in deliveries["webhook-emit"].body
    assert deliveries["webhook-emit"].transaction_id == "tx-w"
    assert decrypt_secret(deliveries["webhook-emit"].encrypted_signing_secret) == "a-signing-secret-123"
    assert deliveries["slack-notify"].body == {"text": "jane@example.com signed in ({nothing})"}
    assert "hooks.slack.com/services" not in deliveries["slack-notify"].url_display


@pytest.mark.parametrize(
    "url",
    ["https://127.0.0.1/hook", "https://localhost/hook", "https://169.254.169.254/latest", "https://[::1]/"],
)
def test_webhook_urls_to_private_addresses_are_refused_at_save(personas: Any, url: str) -> None:
    from flows_app.services import InvalidBindings

    with pytest.raises(InvalidBindings) as invalid:
        attach(personas.tenant_a, POST_AUTH, BindingSpec("webhook-emit", "1.0.0", {"url": url, "secret": "x" * 20}))
    assert "login.post-auth.0.config.url" in invalid.value.errors
    with pytest.raises(InvalidBindings) as invalid:
        attach(personas.tenant_a, POST_AUTH, BindingSpec("slack-notify", "1.0.0", {"webhook_url": url, "text": "hi"}))
    assert "login.post-auth.0.config.webhook_url" in invalid.value.errors


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="shared counters across processes need Redis")
def test_exactly_limit_requests_pass_across_processes_on_redis(personas: Any, tmp_path: Path) -> None:
    """Four processes hammer one counter window at once; exactly `limit` hits are admitted. (With
    any database; the test below goes through the run endpoint and needs PostgreSQL.)"""
    script = tmp_path / "hammer.py"
    script.write_text(
        "import os, sys, django\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings')\n"
        "django.setup()\n"
        "from core.rate_limits import count_hit\n"
        "print(sum(1 for _ in range(50) if count_hit(sys.argv[1], 60, now=1000.0) <= 37))\n"
    )
    scope = f"concurrency-{os.getpid()}"
    processes = [
        subprocess.Popen([sys.executable, str(script), scope], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
        for _ in range(4)
    ]
    admitted = sum(int(p.communicate(timeout=120)[0].strip()) for p in processes)
    assert admitted == 37


SIGN_IN_PROCESS = """
import json, os, sys, time
sys.path.insert(0, {root!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django
django.setup()
from django.test import Client
client = Client(HTTP_AUTHORIZATION="Bearer " + sys.argv[1])
body = json.dumps({{"trigger": "login.pre-credential-check", "user": {{"id": "u1", "email": "jane@example.com"}},
                   "request": {{"ip": "198.51.100.77"}}, "context": {{"risk": {{"score": 1}}}}}})
client.get("/api/v1/whoami")  # connections and imports warm before the start line
print("ready", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.001)
answers = [client.post("/api/v1/flows/login/run", body, content_type="application/json") for _ in range(20)]
print(json.dumps([a.json()["outcome"]["kind"] if a.status_code == 200 else a.status_code for a in answers]))
"""


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="shared counters across processes need Redis")
@pytest.mark.django_db(transaction=True)
def test_parallel_sign_ins_in_four_processes_admit_exactly_the_limit(
    personas: Any, api_token: Any, tmp_path: Path
) -> None:
    """Four processes, started together, send 80 sign-ins from one IP through the run endpoint
    against one rate-limit-by-ip binding: exactly `limit` continue, the rest are blocked."""
    database = connection.settings_dict
    if connection.vendor != "postgresql":
        pytest.skip("the sign-in processes need the test database on a server")
    window = 86400
    if window - time.time() % window < 60:
        time.sleep(window - time.time() % window + 1)  # never straddle two counting windows
    attach(personas.tenant_a, PRE, BindingSpec("rate-limit-by-ip", "1.0.0", {"limit": 37, "window_seconds": window}))
    token = api_token("runtime:execute")
    # The configured server and credentials, with the test database pytest-django made there.
    configured = urlsplit(os.environ["DATABASE_URL"])
    env = {
        **os.environ,
        "DATABASE_URL": urlunsplit(configured._replace(path=f"/{database['NAME']}")),
        "API_RATE_LIMIT_PER_MINUTE": "100000",
    }
    start_line = tmp_path / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", SIGN_IN_PROCESS.format(root=str(ROOT)), token, str(start_line)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(4)
    ]

    # A process stuck starting up would leave readline() waiting for ever: end them all instead.
    def kill_all() -> None:
        for process in processes:
            process.kill()

    watchdog = threading.Timer(120, kill_all)
    watchdog.start()
    try:
        for process in processes:
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        start_line.touch()
        kinds = [kind for process in processes for kind in json.loads(process.communicate(timeout=120)[0])]
    finally:
        watchdog.cancel()
        kill_all()
    assert len(kinds) == 80
    assert kinds.count("continue") == 37
    assert kinds.count("block") == 43
