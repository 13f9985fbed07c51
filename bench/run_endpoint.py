"""Throughput of POST /api/v1/flows/{slug}/run beside a trivial authenticated JSON endpoint.

Starts gunicorn on 127.0.0.1 against a throw-away database (SQLite, or PostgreSQL when
DATABASE_URL is set), then drives three endpoints in turn with the same client threads:
  baseline  GET /api/v1/whoami (token check + JSON)
  templates POST /api/v1/flows/login/run, login.post-auth with five template bindings
  custom    POST /api/v1/flows/login-custom/run, login.post-auth with one custom action
  secret    POST /api/v1/flows/login-secret/run, the same with one secret it reads and logs (redacted)
Goal: each run endpoint keeps at least half the baseline's throughput.

A run writes one pending record; `manage.py settle_runs` turns those into executions and audit
events, as in production. It runs beside the server for the whole bench, on the same cores, and
the bench prints the largest backlog it left after any round, so the settling keeps up or shows.

It also prints where each request's CPU went (gunicorn, the V8 sandbox workers, PostgreSQL, the
client), read from /proc: on one machine all of them share the cores, so these sums bound the ratio.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
SECONDS = float(os.environ.get("BENCH_SECONDS", "6"))
# Each scenario's time is split into rounds taken in turn (A B C A B C …), so a burst of other
# work on the machine lands on every scenario alike instead of on whichever ran at that moment.
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "6"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
WORKERS = os.environ.get("BENCH_WORKERS", "2")

SETUP = """
import django, os, sys
sys.path.insert(0, {root!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from tenants.acting import Acting
from actions_app.versioning import VersionDraft, create_custom_action, publish_version
from flows_app.models import Flow
from flows_app.services import BindingSpec, save_flow_slots, create_flow
from tenants.models import API_SCOPES
from orchestration.founding import create_tenant
from tenants.services import create_api_token
acting = Acting.platform("bench")
tenant = create_tenant(slug="bench", name="Bench")
_, token = create_api_token(tenant, name="bench", scopes=API_SCOPES, acting=acting)
save_flow_slots(Flow.objects.get(tenant=tenant, slug="login"), {{"login.post-auth": [
    BindingSpec("block-by-risk-score", "1.0.0", {{"threshold": 90}}),
    BindingSpec("demand-mfa-by-risk-score", "1.0.0", {{"threshold": 95}}),
    BindingSpec("redirect-by-group", "1.0.0", {{"rules": [{{"group": "vip", "url": "https://vip.example.com/"}}]}}),
    BindingSpec("block-by-risk-score", "1.0.0", {{"threshold": 99}}),
    BindingSpec("webhook-emit", "1.0.0",
                {{"url": "https://hooks.example.com/in", "secret": "bench-secret-0123456789"}}),
]}}, expected_revision=1, acting=acting)
source = '''export async function execute(input: ActionInput): Promise<ActionResult> {{
  if (input.context.risk.score > 90) return {{ kind: "block", reason: "risky" }};
  return {{ kind: "continue", state: {{ checked: true }} }};
}}'''
version = create_custom_action(tenant, name="Bench custom", slug="bench-custom",
    draft=VersionDraft(source, {{"type": "object", "properties": {{}}}}, ["login.post-auth"]),
    acting=acting).version
publish_version(version, acting=acting)
flow = create_flow(tenant, name="Login custom", slug="login-custom", kind="login", acting=acting)
save_flow_slots(flow, {{"login.post-auth": [BindingSpec("bench-custom", "0.1.0", {{}})]}},
    expected_revision=1, acting=acting)
from actions_app.secrets import set_secret
from actions_app.versioning import save_action_version
secret_action = create_custom_action(tenant, name="Bench secret", slug="bench-secret",
    draft=VersionDraft(source, {{"type": "object", "properties": {{}}}}, ["login.post-auth"]),
    acting=acting).version.action
set_secret(secret_action, "API_KEY", "sk_bench_0123456789abcdef", acting=acting)
reading = source.replace("if (", "console.log('key ' + input.secrets.API_KEY);\\n  if (", 1)
publish_version(save_action_version(secret_action,
    VersionDraft(reading, {{"type": "object", "properties": {{}}}}, ["login.post-auth"]), acting=acting).version,
    acting=acting)
flow = create_flow(tenant, name="Login secret", slug="login-secret", kind="login", acting=acting)
save_flow_slots(flow, {{"login.post-auth": [BindingSpec("bench-secret", "0.1.1", {{}})]}},
    expected_revision=1, acting=acting)
print(token)
"""

RUN_BODY = {
    "trigger": "login.post-auth",
    "user": {"id": "u1", "email": "jane@example.com", "email_verified": True, "groups": ["staff"]},
    "request": {"ip": "203.0.113.9", "user_agent": "bench", "hostname": "login.example.com"},
    "context": {"risk": {"score": 12}},
}


def cpu_seconds_by_part(server_pid: int, database: str) -> dict[str, float]:
    """CPU seconds used so far by the parts of the set-up: the gunicorn processes, their V8 sandbox
    workers, the PostgreSQL backends of the bench database and this client. Read from /proc;
    empty where there is none. Backends that exit take their time with them, but the bench's stay
    connected (persistent connections)."""
    if not os.path.exists("/proc/self/stat"):
        return {}
    tick = os.sysconf("SC_CLK_TCK")
    parts = {"server": 0.0, "sandbox": 0.0, "settler": 0.0, "client": 0.0} | ({"postgres": 0.0} if database else {})
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        used = (int(fields[11]) + int(fields[12])) / tick
        parent = int(fields[1])
        if int(entry) == os.getpid():
            parts["client"] += used
        elif "settle_runs" in command:
            parts["settler"] += used
        elif "worker import main" in command:
            parts["sandbox"] += used
        elif int(entry) == server_pid or (parent == server_pid and "gunicorn" in command):
            parts["server"] += used
        elif "postgres" in parts and command.startswith("postgres:") and f" {database} " in f" {command} ":
            parts["postgres"] += used
    return parts


def pending_runs(database_url: str) -> int:
    """Runs not settled yet (read beside the server, not through it)."""
    query = "SELECT count(*) FROM flows_app_pendingrunrecord"
    if database_url.startswith("sqlite:///"):
        import sqlite3

        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as db:
            return int(db.execute(query).fetchone()[0])
    answer = subprocess.run(["psql", database_url, "-tAc", query], capture_output=True, text=True, check=True)
    return int(answer.stdout.strip())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def drive(
    base: str, token: str, method: str, path: str, body: dict[str, Any] | None, seconds: float
) -> tuple[float, list[float]]:
    stop_at = time.perf_counter() + seconds
    latencies: list[float] = []
    failures: list[int] = []
    lock = threading.Lock()

    def client() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                response = http.request(method, path, content=json.dumps(body) if body else None)
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    latencies.append(elapsed)
                    if response.status_code != 200:
                        failures.append(response.status_code)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{path}: {len(failures)} non-200 answers, e.g. {failures[:3]}")
    return len(latencies) / (time.perf_counter() - began), latencies


def main() -> None:
    scratch = tempfile.TemporaryDirectory()
    env = {**os.environ, "DJANGO_ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "ERROR", "DJANGO_DEBUG": "0"}
    # One token drives every scenario; the per-token limit would answer 429 long before the end.
    env["API_RATE_LIMIT_PER_MINUTE"] = "100000000"
    env.setdefault("DATABASE_URL", f"sqlite:///{scratch.name}/bench.sqlite3")
    admin_url, scratch_db = env["DATABASE_URL"], ""
    if admin_url.startswith("postgres"):
        # A fresh database next to the configured one, so the bench never touches real data.
        base, _, _ = admin_url.rpartition("/")
        scratch_db = f"actions_bench_{os.getpid()}"
        subprocess.run(["psql", admin_url, "-qc", f"CREATE DATABASE {scratch_db}"], check=True)
        env["DATABASE_URL"] = f"{base}/{scratch_db}"
    setup = subprocess.run(
        [sys.executable, "-c", SETUP.format(root=str(ROOT))], env=env, capture_output=True, text=True, check=False
    )
    if setup.returncode != 0:
        raise SystemExit(setup.stderr)
    token = setup.stdout.strip().splitlines()[-1]
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi",
            "-w",
            WORKERS,
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "error",
        ],
        cwd=ROOT,
        env=env,
    )
    settler = subprocess.Popen(
        [sys.executable, "manage.py", "settle_runs"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    backlog: dict[str, int] = {}
    try:
        for _ in range(100):
            try:
                httpx.get(f"{base}/api/v1/openapi.json", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        # Warm every worker: imports, V8 isolates, connections.
        for _ in range(20):
            for warmed in ("login-custom", "login-secret"):
                httpx.post(
                    f"{base}/api/v1/flows/{warmed}/run", json=RUN_BODY, headers={"Authorization": f"Bearer {token}"}
                )
        scenarios = [
            ("baseline: GET /whoami", "GET", "/api/v1/whoami", None),
            ("run, 5 template bindings", "POST", "/api/v1/flows/login/run", RUN_BODY),
            ("run, 1 custom action", "POST", "/api/v1/flows/login-custom/run", RUN_BODY),
            ("run, custom with a secret", "POST", "/api/v1/flows/login-secret/run", RUN_BODY),
        ]
        rounds: dict[str, list[tuple[float, list[float]]]] = {label: [] for label, *_ in scenarios}
        cpu: dict[str, dict[str, float]] = {label: {} for label, *_ in scenarios}
        for _ in range(ROUNDS):
            for label, method, path, body in scenarios:
                before = cpu_seconds_by_part(server.pid, scratch_db)
                rounds[label].append(drive(base, token, method, path, body, SECONDS / ROUNDS))
                after = cpu_seconds_by_part(server.pid, scratch_db)
                backlog[label] = max(backlog.get(label, 0), pending_runs(env["DATABASE_URL"]))
                for part, used in after.items():
                    cpu[label][part] = cpu[label].get(part, 0.0) + used - before.get(part, 0.0)
    finally:
        server.terminate()
        server.wait(timeout=10)
        settler.terminate()
        settler.wait(timeout=10)
        if scratch_db:
            subprocess.run(["psql", admin_url, "-qc", f"DROP DATABASE IF EXISTS {scratch_db}"], check=False)
    database = env["DATABASE_URL"].split(":", 1)[0]
    print(
        f"Run endpoint throughput on {database}, gunicorn -w {WORKERS}, {CLIENTS} client threads, "
        f"{SECONDS:g} s each in {ROUNDS} alternating rounds"
    )
    print(f"{'scenario':<28} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'vs baseline':>12} {'rounds':>14}")
    baseline_label = scenarios[0][0]
    for label, taken in rounds.items():
        ordered = sorted(latency for _, latencies in taken for latency in latencies)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        rate = statistics.mean(r for r, _ in taken)
        # The ratio of each round to the baseline round just before it, then their median.
        per_round = [r / b for (r, _), (b, _) in zip(taken, rounds[baseline_label], strict=True)]
        ratio = statistics.median(per_round)
        spread = f"{min(per_round):.2f}–{max(per_round):.2f}"
        print(f"{label:<28} {rate:8.1f} {statistics.median(ordered):8.2f} {p99:8.2f} {ratio:11.2f}x {spread:>14}")
    print("goal: each run endpoint at least 0.50x the baseline")
    print(
        "runs left pending after a round, at most: "
        + ", ".join(f"{label.split(',')[-1].strip()} {count}" for label, count in backlog.items() if "run" in label)
    )
    if any(cpu.values()):
        # Where each request's CPU went (all rounds together): the ratio is bounded by these sums
        # on a machine where the client, the server and the database share the cores.
        print()
        print(f"{'CPU ms per request':<28} " + " ".join(f"{part:>9}" for part in next(iter(cpu.values()))))
        for label, taken in rounds.items():
            requests = sum(len(latencies) for _, latencies in taken)
            shares = " ".join(f"{used / requests * 1000:9.2f}" for used in cpu[label].values())
            print(f"{label:<28} {shares}")


if __name__ == "__main__":
    main()
