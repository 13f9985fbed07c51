"""Audit log pages on PostgreSQL with 1,000,000 events in one tenant and 1,000 in each of 100 others.

Run with `make bench` (or `python bench/audit_pages.py`). Needs PostgreSQL: it drops and creates
the scratch database BENCH_AUDIT_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/actions_console_bench_audit), migrates it, loads the events and
drops it again at the end (BENCH_KEEP_DB=1 keeps it; BENCH_AUDIT_REUSE=1 keeps it and, on the next
run, measures the kept data without loading again). Without a reachable server it says so and
exits with run_all's "skipped" code.

Loading: the events are built with the product's own EventDraft and hash-chained with
audit_app.chain in Python, per tenant in time order, then streamed with one COPY; each tenant's
chain head is set to the last link, so `manage.py verify_audit` holds on the result.

Measured, through the real audit log page (Django test client, a signed-in viewer) and through
GET /api/v1/audit (a bearer token with audit:read), median of REPEATS requests each:
  first page       no filter, no cursor
  second page      the cursor after the 50th event
  filtered page    type=flow.action_updated&actor=carol: 500 of the 1,000,000 events
  10,000 deep      the cursor after the 10,000th event. Reached by following the API's own `next`
                   cursor (20 pages of 500), and checked against the row OFFSET 9,999 finds, so the
                   cursor is exactly one a user paging through would hold (200 "Older" clicks on
                   the page, which shows 50 a page).
Goals: filtered and deep pages within 1.5x the first page's time, and query counts that do not
grow with depth (the deep page makes as many queries as the second page). Each audit query's
plan (EXPLAIN ANALYZE) is printed in short, so a counting or scanning plan shows.
"""

from __future__ import annotations

import heapq
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SKIPPED = 77  # bench/run_all.py reports this exit status as "skipped", not as a failure
DATABASE_URL = os.environ.get(
    "BENCH_AUDIT_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/actions_console_bench_audit"
)
BIG_TENANT_EVENTS = int(os.environ.get("BENCH_AUDIT_EVENTS", "1000000"))
OTHER_TENANTS = 100
OTHER_TENANT_EVENTS = 1000
HISTORY = timedelta(days=30)
REUSE = os.environ.get("BENCH_AUDIT_REUSE") == "1"
REPEATS = int(os.environ.get("BENCH_REPEATS", "30"))
DEPTH = 10_000
GOAL_RATIO = 1.5
OPERATORS = [
    "alice", "bruno", "carol", "dmitri", "elena", "farid", "grace", "hiro", "ines", "jonas",
    "kemal", "lena", "mateo", "nadia", "oskar", "priya", "quinn", "rosa", "samir", "tomas",
]  # fmt: skip
RARE_FILTER = {"type": "flow.action_updated", "actor": "carol"}
ACTIONS = ["block-by-risk-score", "rate-limit-by-ip", "geo-fence", "decorate-token", "webhook-emit"]


def server_and_database(url: str) -> tuple[str, str]:
    base, _, name = url.rpartition("/")
    return f"{base}/postgres", name


def recreate_database() -> None:
    """Drop and create the scratch database; SystemExit(SKIPPED) when PostgreSQL is not there."""
    server, name = server_and_database(DATABASE_URL)
    try:
        admin = psycopg.connect(server, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        print(f"skipped: PostgreSQL is not reachable at {server} ({str(error).strip().splitlines()[0]})")
        raise SystemExit(SKIPPED) from None
    with admin:
        if REUSE and admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def drop_database() -> None:
    server, name = server_and_database(DATABASE_URL)
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


recreate_database()
os.environ["DATABASE_URL"] = DATABASE_URL
os.environ.pop("REDIS_URL", None)
# Production-like rendering: no debug template engine, no debug toolbar-ish overhead.
os.environ["DJANGO_DEBUG"] = "0"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

from audit_app.chain import GENESIS_HASH, link  # noqa: E402
from audit_app.models import AuditChainHead, AuditEvent  # noqa: E402
from audit_app.queries import Cursor  # noqa: E402
from audit_app.services import EventDraft  # noqa: E402
from orchestration.founding import create_tenant  # noqa: E402
from tenants.acting import Acting, Actor, RequestMeta  # noqa: E402
from tenants.models import Tenant  # noqa: E402
from tenants.roles import Role  # noqa: E402
from tenants.services import add_member, create_api_token  # noqa: E402

LOGIN_SERVICE = Actor("token", "k7login", "login service")
OPERATOR_ACTORS = [Actor("user", str(1000 + n), name) for n, name in enumerate(OPERATORS)]


def draft_for(tenant: Tenant, i: int, count: int, when: datetime, rng: random.Random) -> EventDraft:
    """The i-th of `count` events of a tenant: mostly action runs, with a sprinkle of operator
    changes (1 % flow.action_updated, spread over 20 operators)."""
    revision = 1 + i * 40 // count
    roll = rng.random()
    if roll < 0.95:
        outcome = "block" if rng.random() < 0.03 else "continue"
        return EventDraft(
            tenant=tenant,
            event_type="flow.action_executed",
            actor=LOGIN_SERVICE,
            meta=RequestMeta(f"203.0.113.{i % 250}", "login-service/2.1", f"req-{i:012d}"),
            action_slug=ACTIONS[i % len(ACTIONS)],
            action_version="1.0.0",
            flow_slug="login",
            flow_revision=revision,
            trigger="login.post-auth",
            transaction_id=f"tx-{i // 2:012d}",
            after={"outcome": outcome, "duration_ms": round(rng.random() * 4, 3), "error": None},
            occurred_at=when,
        )
    operator = OPERATOR_ACTORS[rng.randrange(len(OPERATOR_ACTORS))]
    meta = RequestMeta("198.51.100.20", "Mozilla/5.0 (X11; Linux x86_64)", f"web-{i:012d}")
    if roll < 0.99:
        return EventDraft(
            tenant=tenant,
            event_type="action.version_saved",
            actor=operator,
            meta=meta,
            action_slug="geo-fence",
            action_version=f"0.{i % 97}.{i % 13}",
            after={"source_checksum": f"{i:064x}"[:64]},
            occurred_at=when,
        )
    return EventDraft(
        tenant=tenant,
        event_type="flow.action_updated",
        actor=operator,
        meta=meta,
        action_slug=ACTIONS[i % len(ACTIONS)],
        action_version="1.0.0",
        flow_slug="login",
        flow_revision=revision,
        trigger="login.post-auth",
        before={"config": {"threshold": 70}, "enabled": True},
        after={"config": {"threshold": 60 + i % 10}, "enabled": True},
        occurred_at=when,
    )


def chained_rows(
    tenant: Tenant, count: int, end: datetime, seed: int, heads: dict[int, tuple[int, str]]
) -> Iterator[tuple[datetime, AuditEvent]]:
    """`count` events of `tenant` spread evenly over HISTORY up to `end`, oldest first, linked
    onto the chain from `heads[tenant.pk]`, which is left at the last link. (The generator runs
    inside the COPY, so it must not query: the heads are read before and written after.)"""
    rng = random.Random(seed)
    seq, last_hash = heads[tenant.pk]
    start = end - HISTORY
    # Two events (the two bindings of one run) share each instant, as in real runs, so the
    # keyset's id tie-breaker is exercised.
    step = HISTORY / max(1, count // 2)
    for i in range(count):
        row = draft_for(tenant, i, count, start + step * (i // 2), rng).as_row()
        seq += 1
        last_hash = link(row, seq, last_hash)
        yield row.occurred_at, row
    heads[tenant.pk] = (seq, last_hash)


def copy_events(streams: list[Iterator[tuple[datetime, AuditEvent]]]) -> int:
    """COPY the merged streams (oldest first, so ids follow time as they do in production)."""
    fields = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]
    json_fields = {f.attname for f in fields if f.get_internal_type() == "JSONField"}
    columns = ", ".join(f'"{f.column}"' for f in fields)
    written = 0
    connection.ensure_connection()
    raw = connection.connection
    with raw.cursor() as cursor, cursor.copy(f"COPY audit_app_auditevent ({columns}) FROM STDIN") as copy:
        for _, row in heapq.merge(*streams, key=lambda pair: pair[0]):
            values = []
            for f in fields:
                value = getattr(row, f.attname)
                if f.attname in json_fields and value is not None:
                    value = json.dumps(value)
                values.append(value)
            copy.write_row(values)
            written += 1
    return written


def load(big: Tenant, others: list[Tenant]) -> None:
    end = datetime.now(UTC) - timedelta(hours=1)
    heads = {}
    for tenant in [big, *others]:
        head, _ = AuditChainHead.objects.get_or_create(tenant=tenant, defaults={"last_hash": GENESIS_HASH})
        heads[tenant.pk] = (head.last_seq, head.last_hash or GENESIS_HASH)
    streams = [chained_rows(big, BIG_TENANT_EVENTS, end, 1, heads)]
    streams += [chained_rows(t, OTHER_TENANT_EVENTS, end, 100 + n, heads) for n, t in enumerate(others)]
    started = time.perf_counter()
    written = copy_events(streams)
    copied = time.perf_counter() - started
    for tenant_id, (seq, last_hash) in heads.items():
        AuditChainHead.objects.filter(tenant_id=tenant_id).update(last_seq=seq, last_hash=last_hash)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_app_auditevent")
    print(
        f"loaded {written:,} events (COPY, hashes chained in Python) in {copied:.1f} s, "
        f"ANALYZE {time.perf_counter() - started - copied:.1f} s",
        flush=True,
    )


def check_chain_tail(tenant: Tenant) -> None:
    """The loaded chain reads back as written: the head's hash is the last event's stored hash,
    and recomputing that hash from the stored row gives the same value."""
    from audit_app.chain import event_hash

    head = AuditChainHead.objects.get(tenant=tenant)
    last = AuditEvent.objects.filter(tenant=tenant).order_by("-seq").first()
    assert last is not None and last.seq == head.last_seq and last.hash == head.last_hash, "chain head mismatch"
    assert event_hash(last.prev_hash, last) == last.hash, "stored event does not hash back to its link"


def plan_summary(sql: str) -> str:
    """One line per plan node: the node, its index, rows returned and rows thrown away."""
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        (document,) = cursor.fetchone()
    plan = (json.loads(document) if isinstance(document, str) else document)[0]
    parts: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        text = node["Node Type"]
        if node.get("Index Name"):
            text += f" {node['Index Name']}"
        text += f" rows={node.get('Actual Rows')}"
        removed = node.get("Rows Removed by Filter")
        if removed:
            text += f" filtered-out={removed}"
        parts.append(text)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    return f"{plan['Execution Time']:.2f} ms: " + " > ".join(parts)


def measure(client: Client, requests: dict[Any, tuple[str, dict[str, str], dict[str, str]]]) -> dict[Any, Any]:
    """Per request: median milliseconds over REPEATS rounds, and the SQL one request runs. The
    requests take turns within each round, so a burst of load elsewhere on the machine lands on
    all of them alike instead of on whichever scenario happened to run then."""
    timings: dict[str, list[float]] = {name: [] for name in requests}
    for name, (url, params, headers) in requests.items():
        assert client.get(url, params, headers=headers).status_code == 200, name  # warm
    for _ in range(REPEATS):
        for name, (url, params, headers) in requests.items():
            started = time.perf_counter()
            response = client.get(url, params, headers=headers)
            timings[name].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (name, response.status_code)
    measured = {}
    for name, (url, params, headers) in requests.items():
        with CaptureQueriesContext(connection) as captured:
            client.get(url, params, headers=headers)
        measured[name] = (statistics.median(timings[name]), [q["sql"] for q in captured.captured_queries])
    return measured


def deep_cursor(client: Client, token: str) -> str:
    """The cursor after the DEPTH-th event, by following the API's `next` like a client would."""
    cursor = ""
    for _ in range(DEPTH // 500):
        response = client.get("/api/v1/audit", {"limit": "500", "cursor": cursor}, headers=token_header(token))
        assert response.status_code == 200, response.content
        cursor = response.json()["next"]
    expected = AuditEvent.objects.filter(tenant__slug="bench").order_by("-occurred_at", "-id")[DEPTH - 1]
    assert Cursor.decode(cursor).event_id == expected.pk, "the followed cursor is not at the expected depth"
    return cursor


def token_header(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def main() -> None:
    setup_test_environment()
    settings.ALLOWED_HOSTS = ["*"]
    started = time.perf_counter()
    call_command("migrate", verbosity=0)

    if REUSE and Tenant.objects.filter(slug="bench").exists():
        big = Tenant.objects.get(slug="bench")
        viewer = get_user_model().objects.get(username="bench-viewer")
        print("measuring the data kept from an earlier run (BENCH_AUDIT_REUSE=1)")
    else:
        big = create_tenant(slug="bench", name="Bench")
        others = [create_tenant(slug=f"other-{n:03d}", name=f"Other {n}") for n in range(OTHER_TENANTS)]
        viewer = get_user_model().objects.create_user("bench-viewer", password="x-bench-pass-1")
        add_member(big, viewer, Role.VIEWER, acting=Acting.platform("bench"))
        print(f"migrated and created {OTHER_TENANTS + 1} tenants in {time.perf_counter() - started:.1f} s", flush=True)
        load(big, others)
        check_chain_tail(big)
        check_chain_tail(others[-1])
    _, token = create_api_token(big, name="bench", scopes=["audit:read"], acting=Acting.platform("bench"))

    client = Client()
    client.force_login(viewer)
    rare = AuditEvent.objects.filter(tenant=big, type=RARE_FILTER["type"], actor_name=RARE_FILTER["actor"]).count()
    deep = deep_cursor(client, token)
    first_rows = AuditEvent.objects.filter(tenant=big).order_by("-occurred_at", "-id")
    second = Cursor.after(first_rows[49], "older").encode()
    scenarios = {
        "first page": {},
        "second page (50 deep)": {"cursor": second},
        f"filtered ({rare} matches)": RARE_FILTER,
        f"{DEPTH:,} events deep": {"cursor": deep},
    }
    surfaces = {
        "page /t/bench/audit/ (50 rows)": ("/t/bench/audit/", {}),
        "API /api/v1/audit (100 rows)": ("/api/v1/audit", token_header(token)),
    }
    requests = {
        (surface, name): (url, params, headers)
        for surface, (url, headers) in surfaces.items()
        for name, params in scenarios.items()
    }
    by_request = measure(client, requests)
    results = {surface: {name: by_request[(surface, name)] for name in scenarios} for surface in surfaces}

    total = AuditEvent.objects.count()
    print(
        f"\nAudit log on PostgreSQL: {BIG_TENANT_EVENTS:,} events in the measured tenant, {total:,} in all; "
        f"median of {REPEATS} requests"
    )
    met = True
    for surface, measured in results.items():
        base_ms, base_sql = measured["first page"]
        print(f"\n{surface}")
        print(f"  {'scenario':<26} {'ms':>8} {'vs first':>9} {'queries':>8}")
        for name, (ms, sql) in measured.items():
            print(f"  {name:<26} {ms:8.2f} {ms / base_ms:8.2f}x {len(sql):>8}")
        names = list(measured)
        for name in (names[2], names[3]):
            ratio = measured[name][0] / base_ms
            ok = ratio <= GOAL_RATIO
            met &= ok
            print(f"  goal {name}: {ratio:.2f}x <= {GOAL_RATIO}x  {'met' if ok else 'NOT MET'}")
        same_count = len(measured[names[3]][1]) == len(measured[names[1]][1]) and len(measured[names[2]][1]) == len(
            base_sql
        )
        counting = [q for _, sql in measured.values() for q in sql if "COUNT(" in q.upper() and "auditevent" in q]
        met &= same_count and not counting
        print(f"  goal constant queries (deep = second page, filtered = first): {'met' if same_count else 'NOT MET'}")
        print(f"  goal no COUNT over audit events: {'met' if not counting else 'NOT MET'}")
        print("  plans of the audit queries (EXPLAIN ANALYZE):")
        for name, (_, sql) in measured.items():
            for query in sql:
                if "audit_app_auditevent" in query and query.lstrip().upper().startswith("SELECT"):
                    print(f"    {name}: {plan_summary(query)}")
    print(f"\nall goals {'met' if met else 'NOT MET'}")


if __name__ == "__main__":
    try:
        main()
    finally:
        connections.close_all()
        if os.environ.get("BENCH_KEEP_DB") != "1" and not REUSE:
            drop_database()
