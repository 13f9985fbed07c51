"""Actions list page: time and queries with 50 actions beside the same page with 5,000.

Run with `make bench` (or `python bench/actions_list.py`). Uses a throw-away SQLite file unless
DATABASE_URL points at PostgreSQL. Prints the ratio large/small; the goal is a page whose cost
does not grow with the catalogue (constant queries, ratio near 1).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_scratch = tempfile.TemporaryDirectory()
os.environ.setdefault("DATABASE_URL", f"sqlite:///{_scratch.name}/bench.sqlite3")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

from tests.factories import bulk_custom_actions  # noqa: E402

REPEATS = 30


def measure(client: Client, params: dict[str, str]) -> tuple[float, int]:
    client.get("/t/bench/actions/", params)  # warm caches
    timings = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        response = client.get("/t/bench/actions/", params)
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    with CaptureQueriesContext(connection) as captured:
        client.get("/t/bench/actions/", params)
    return statistics.median(timings), len(captured)


def main() -> None:
    setup_test_environment()
    settings.ALLOWED_HOSTS = ["*"]
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from orchestration.founding import create_tenant
    from tenants.acting import Acting
    from tenants.models import Tenant
    from tenants.roles import Role
    from tenants.services import add_member

    tenant = Tenant.objects.filter(slug="bench").first() or create_tenant(slug="bench", name="Bench")
    user = get_user_model().objects.create_user("bench-viewer", password="x-bench-pass-1")
    add_member(tenant, user, Role.VIEWER, acting=Acting.platform("bench"))
    client = Client()
    client.force_login(user)

    scenarios = {
        "first page": {},
        "search": {"q": "0004"},
        "filter": {"kind": "custom", "trigger": "login.post-auth"},
        "sorted, deep page": {"sort": "-attached", "page": "20"},
    }
    bulk_custom_actions(tenant, 40, "small")
    small = {name: measure(client, params) for name, params in scenarios.items()}
    bulk_custom_actions(tenant, 4950, "large")
    large = {name: measure(client, params) for name, params in scenarios.items()}

    print(f"Actions list on {connection.vendor}: median of {REPEATS} requests, 50 vs 5,000 actions")
    print(f"{'scenario':<20} {'50 ms':>8} {'5000 ms':>9} {'ratio':>6} {'queries 50/5000':>16}")
    for name in scenarios:
        (t_small, q_small), (t_large, q_large) = small[name], large[name]
        print(f"{name:<20} {t_small:8.2f} {t_large:9.2f} {t_large / t_small:6.2f} {q_small:>8}/{q_large}")


if __name__ == "__main__":
    main()
