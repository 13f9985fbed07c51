"""Faults a sign-in platform meets, measured under a steady stream of sign-ins.

Starts its own PostgreSQL and Redis on free ports from a temporary directory (restarting them
disturbs nothing else on the machine), an HTTPS webhook receiver on 127.0.0.1, then the
production processes: gunicorn app servers, `settle_runs` and `run_outbox_worker`, restarted
like systemd's Restart=always one second after they die. Client threads send sign-ins at a fixed
rate, round-robin over the app servers, each with its own transaction id. Two tenants run the
same slot (login.pre-credential-check):
  1. rate-limit-by-ip: tenant "open" fails open (on_error continue), tenant "closed" fails closed;
  2. a custom action that computes for a few milliseconds in the V8 sandbox, on_error block;
  3. webhook-emit to the receiver, on_error continue.
During the stream, one fault at a time: a sandbox worker killed -9 mid-execution, the run
settler killed -9 mid-batch, the outbox worker killed -9 mid-delivery, Redis restarted, Redis
stalled (SIGSTOP), PostgreSQL restarted. First with one app server, settler and outbox worker,
then with two of each on the one database.

Per fault it prints: sign-ins sent and answered, answered as their bindings' on_error says,
refused with 503 (database away: the caller retries or applies its own rule), runs lost
(answered 200 but never recorded), executions recorded twice, webhook deliveries lost and
delivered twice (by X-Actions-Delivery), the slowest answer beside the slot's budget, and whether
`verify_audit` passes afterwards. Goals: 0 lost, 0 twice, 0 deliveries lost, every answer per
on_error and within the budget, verify_audit OK.

`--soak SECONDS` (e.g. 600) runs the two-server set-up without faults and prints the slope of
each process's RSS and open files (goal: flat).

Needs PostgreSQL's initdb/pg_ctl and redis-server; without them it exits SKIPPED (77).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import pwd
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
SKIPPED = 77
RATE = float(os.environ.get("FAULTS_RATE", "40"))  # sign-ins per second, all clients together
CLIENTS = int(os.environ.get("FAULTS_CLIENTS", "8"))
PHASE_SECONDS = float(os.environ.get("FAULTS_PHASE_SECONDS", "9"))
RESTART_DELAY_SECONDS = 1.0  # as systemd's RestartSec
TRIGGER = "login.pre-credential-check"
# The slot's budget: the sum of its bindings' timeouts (set up below).
TIMEOUTS_MS = {"rate-limit-by-ip": 200, "fault-check": 500, "webhook-emit": 200}
SLOT_BUDGET_MS = sum(TIMEOUTS_MS.values())
# The outbox worker's batch and HTTP timeout, so a killed worker's lease runs out in ~40 s.
OUTBOX_LIMIT, WEBHOOK_TIMEOUT_SECONDS = 2, 2

SETUP = """
import django, os, sys
sys.path.insert(0, {root!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from tenants.acting import Acting
from actions_app.versioning import VersionDraft, create_custom_action, publish_version
from flows_app.models import Flow
from flows_app.services import BindingSpec, save_flow_slots
from tenants.models import API_SCOPES
from orchestration.founding import create_tenant
from tenants.services import create_api_token
acting = Acting.platform("bench")
source = '''export async function execute(input: ActionInput): Promise<ActionResult> {{
  let sum = 0;
  for (let i = 0; i < 200000; i++) sum += i % 7;
  return {{ kind: "continue", state: {{ checked: sum > 0 }} }};
}}'''
timeouts = {timeouts!r}
for slug, limit_on_error in (("open", "continue"), ("closed", "block")):
    tenant = create_tenant(slug=slug, name=f"Fails {{slug}}")
    _, token = create_api_token(tenant, name="bench", scopes=API_SCOPES, acting=acting)
    version = create_custom_action(tenant, name="Fault check", slug="fault-check",
        draft=VersionDraft(source, {{"type": "object", "properties": {{}}}}, [{trigger!r}]),
        acting=acting).version
    publish_version(version, acting=acting)
    save_flow_slots(Flow.objects.get(tenant=tenant, slug="login"), {{{trigger!r}: [
        BindingSpec("rate-limit-by-ip", "1.1.0", {{"limit": 100000000, "window_seconds": 60}},
                    on_error=limit_on_error, timeout_ms=timeouts["rate-limit-by-ip"]),
        BindingSpec("fault-check", "0.1.0", {{}}, on_error="block", timeout_ms=timeouts["fault-check"]),
        BindingSpec("webhook-emit", "1.0.0", {{"url": {hook!r}, "secret": "bench-secret-0123456789"}},
                    on_error="continue", timeout_ms=timeouts["webhook-emit"]),
    ]}}, expected_revision=1, acting=acting)
    print(slug, limit_on_error, token)
"""

# What each tenant's bindings do when their execution fails, in slot order.
ON_ERROR = {
    "open": {"rate-limit-by-ip": "continue", "fault-check": "block", "webhook-emit": "continue"},
    "closed": {"rate-limit-by-ip": "block", "fault-check": "block", "webhook-emit": "continue"},
}


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ---------------------------------------------------------------------------------------------
# PostgreSQL and Redis of the bench's own


class OwnServices:
    """A PostgreSQL cluster and a Redis server in a temporary directory, on free ports."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.pg_data = scratch / "pgdata"
        self.pg_port, self.redis_port = free_port(), free_port()
        self.redis: subprocess.Popen[bytes] | None = None
        # initdb refuses to run as root: then the cluster belongs to the postgres account.
        self.as_owner: list[str] = []
        if os.geteuid() == 0:
            pwd.getpwnam("postgres")
            self.as_owner = ["runuser", "-u", "postgres", "--"]
            shutil.chown(scratch, "postgres")

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.pg_port}/faults"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def _pg_ctl(self, *args: str) -> None:
        options = f"-p {self.pg_port} -c listen_addresses=127.0.0.1 -k {self.scratch} -c max_connections=300"
        command = [*self.as_owner, "pg_ctl", "-D", str(self.pg_data), "-l", str(self.scratch / "pg.log")]
        subprocess.run([*command, "-o", options, "-w", *args], check=True, stdout=subprocess.DEVNULL)

    def start(self) -> None:
        subprocess.run(
            [*self.as_owner, "initdb", "-D", str(self.pg_data), "-U", "postgres", "-A", "trust", "--no-sync"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self._pg_ctl("start")
        subprocess.run(
            ["psql", f"postgres://postgres@127.0.0.1:{self.pg_port}/postgres", "-qc", "CREATE DATABASE faults"],
            check=True,
        )
        self.start_redis()

    def start_redis(self) -> None:
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.scratch,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(100):
            with contextlib.suppress(subprocess.CalledProcessError):
                subprocess.run(["redis-cli", "-p", str(self.redis_port), "ping"], check=True, capture_output=True)
                return
            time.sleep(0.05)

    def restart_redis(self, down_seconds: float) -> None:
        assert self.redis is not None
        self.redis.terminate()
        self.redis.wait()
        time.sleep(down_seconds)
        self.start_redis()

    def stall_redis(self, seconds: float) -> None:
        assert self.redis is not None
        self.redis.send_signal(signal.SIGSTOP)
        time.sleep(seconds)
        self.redis.send_signal(signal.SIGCONT)

    def restart_postgres(self, mode: str) -> None:
        self._pg_ctl("-m", mode, "restart")

    def stop(self) -> None:
        if self.redis is not None:
            self.redis.terminate()
            self.redis.wait()
        with contextlib.suppress(subprocess.CalledProcessError):
            self._pg_ctl("-m", "fast", "stop")


# ---------------------------------------------------------------------------------------------
# The HTTPS webhook receiver


class Receiver:
    """Records each delivery's X-Actions-Delivery id and transaction id. `slow_seconds` holds
    every answer back, so that a killed outbox worker dies mid-delivery."""

    def __init__(self, scratch: Path) -> None:
        self.cert, key = scratch / "receiver.pem", scratch / "receiver.key"
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"),
                *("-keyout", str(key), "-out", str(self.cert), "-days", "1", "-subj", "/CN=127.0.0.1"),
                *("-addext", "subjectAltName=IP:127.0.0.1"),
            ],
            check=True,
            capture_output=True,
        )
        self.lock = threading.Lock()
        self.seen: Counter[str] = Counter()
        self.slow_seconds = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.seen[self.headers.get("X-Actions-Delivery", "")] += 1
                time.sleep(receiver.slow_seconds)
                self.send_response(200 if body else 400)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


# ---------------------------------------------------------------------------------------------
# The production processes, kept running like systemd's Restart=always


@dataclass
class Role:
    name: str
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0


class Supervisor:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.roles: list[Role] = []
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        threading.Thread(target=self._watch, daemon=True).start()

    def add(self, name: str, command: list[str]) -> Role:
        role = Role(name, command)
        self._start(role)
        with self.lock:
            self.roles.append(role)
        return role

    def _start(self, role: Role) -> None:
        role.process = subprocess.Popen(
            role.command, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def _watch(self) -> None:
        while not self.stopping.wait(0.2):
            with self.lock:
                dead = [role for role in self.roles if role.process and role.process.poll() is not None]
            for role in dead:
                time.sleep(RESTART_DELAY_SECONDS)
                if not self.stopping.is_set():
                    role.restarts += 1
                    self._start(role)

    def pids(self, prefix: str) -> list[int]:
        with self.lock:
            return [r.process.pid for r in self.roles if r.name.startswith(prefix) and r.process]

    def stop_all(self, timeout_s: float = 30) -> dict[str, tuple[float, int | None]]:
        """SIGTERM every process; how long each took to exit and its exit status (None: killed)."""
        self.stopping.set()
        with self.lock:
            roles = list(self.roles)
            self.roles = []
        started = time.monotonic()
        for role in roles:
            if role.process and role.process.poll() is None:
                role.process.send_signal(signal.SIGTERM)
        stopped = {}
        for role in roles:
            assert role.process is not None
            try:
                status: int | None = role.process.wait(max(0.1, timeout_s - (time.monotonic() - started)))
            except subprocess.TimeoutExpired:
                role.process.kill()
                role.process.wait()
                status = None
            stopped[role.name] = (time.monotonic() - started, status)
        return stopped


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                children.setdefault(int(stat.read().rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def command_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def sandbox_workers(supervisor: Supervisor) -> list[int]:
    return [
        pid
        for server in supervisor.pids("app")
        for pid in descendants(server)
        if "actions_app.runtime.worker import main" in command_of(pid)
    ]


# ---------------------------------------------------------------------------------------------
# The stream of sign-ins


@dataclass
class Sample:
    phase: str
    tenant: str
    transaction_id: str
    status: int  # 0: no answer (connection error or timeout)
    elapsed_ms: float
    body: dict[str, Any] | None


@dataclass
class Stream:
    servers: list[str]
    tokens: dict[str, str]
    phase: str = "warm-up"
    samples: list[Sample] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> list[threading.Thread]:
        sequence = itertools.count()
        interval = CLIENTS / RATE

        def client(number: int) -> None:
            with httpx.Client(timeout=10) as http:
                next_at = time.monotonic() + number * interval / CLIENTS
                while not self.stop.is_set():
                    time.sleep(max(0.0, next_at - time.monotonic()))
                    next_at += interval
                    seq = next(sequence)
                    tenant = ("open", "closed")[seq % 2]
                    server = self.servers[(seq // 2) % len(self.servers)]
                    phase, transaction_id = self.phase, uuid.uuid4().hex
                    body = {
                        "trigger": TRIGGER,
                        "transaction_id": transaction_id,
                        "user": {"id": f"user-{seq % 500}", "email": f"user{seq % 500}@example.com"},
                        "request": {"ip": f"203.0.113.{seq % 200}", "user_agent": "faults bench"},
                    }
                    started = time.monotonic()
                    try:
                        response = http.post(
                            f"{server}/api/v1/flows/login/run",
                            json=body,
                            headers={"Authorization": f"Bearer {self.tokens[tenant]}"},
                        )
                        status, answer = response.status_code, response.json() if response.status_code == 200 else None
                    except (httpx.HTTPError, ValueError):
                        status, answer = 0, None
                    sample = Sample(phase, tenant, transaction_id, status, (time.monotonic() - started) * 1000, answer)
                    with self.lock:
                        self.samples.append(sample)

        threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        return threads


def answered_per_on_error(sample: Sample) -> bool:
    """Whether the answer is what the tenant's bindings' on_error make of the executions' errors."""
    assert sample.body is not None
    expected = "continue"
    for execution in sample.body["executions"]:
        if execution["error"] and ON_ERROR[sample.tenant][execution["action"]] == "block":
            expected = "block"
            break
        if execution["outcome"] in ("block", "redirect"):
            expected = execution["outcome"]
            break
    return bool(sample.body["outcome"]["kind"] == expected)


# ---------------------------------------------------------------------------------------------
# Faults


def running(pid: int) -> bool:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] == "R"
    return False


def kill_sandbox_workers(supervisor: Supervisor, services: OwnServices, receiver: Receiver) -> str:
    # Each time, the first sandbox worker seen on a CPU (executing an action) is the one killed.
    killed = 0
    for _ in range(3):
        workers = sandbox_workers(supervisor)
        give_up = time.monotonic() + 2
        while workers and time.monotonic() < give_up:
            busy = next((pid for pid in workers if running(pid)), None)
            if busy is not None:
                os.kill(busy, signal.SIGKILL)
                killed += 1
                break
            time.sleep(0.0005)
        time.sleep(0.7)
    return f"{killed} sandbox workers killed while running"


def kill_settlers(supervisor: Supervisor, services: OwnServices, receiver: Receiver) -> str:
    # Held still for 2 s so a backlog builds, then killed 50 ms into settling it.
    settlers = supervisor.pids("settler")
    for pid in settlers:
        os.kill(pid, signal.SIGSTOP)
    time.sleep(2)
    [(backlog,)] = query(services.database_url, "SELECT count(*) FROM flows_app_pendingrunrecord")
    for pid in settlers:
        os.kill(pid, signal.SIGCONT)
    time.sleep(0.05)
    for pid in settlers:
        os.kill(pid, signal.SIGKILL)
    return f"{len(settlers)} settlers killed 50 ms into a backlog of {backlog} runs"


def kill_outbox_workers(supervisor: Supervisor, services: OwnServices, receiver: Receiver) -> str:
    receiver.slow_seconds = 0.5
    time.sleep(1.0)
    workers = supervisor.pids("outbox")
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    time.sleep(1.0)
    receiver.slow_seconds = 0.0
    return f"{len(workers)} outbox workers killed mid-delivery"


def restart_redis(supervisor: Supervisor, services: OwnServices, receiver: Receiver) -> str:
    services.restart_redis(down_seconds=2)
    return "Redis down 2 s, restarted empty"


def stall_redis(supervisor: Supervisor, services: OwnServices, receiver: Receiver) -> str:
    services.stall_redis(3)
    return "Redis stalled 3 s (SIGSTOP)"


def restart_postgres(supervisor: Supervisor, services: OwnServices, receiver: Receiver) -> str:
    started = time.monotonic()
    services.restart_postgres("fast")
    return f"PostgreSQL restarted (fast) in {time.monotonic() - started:.1f} s"


def crash_postgres(supervisor: Supervisor, services: OwnServices, receiver: Receiver) -> str:
    # "immediate" is a crash: no checkpoint, recovery from the WAL at start (as after a failover).
    started = time.monotonic()
    services.restart_postgres("immediate")
    return f"PostgreSQL crashed (immediate) and recovered in {time.monotonic() - started:.1f} s"


FAULTS = [
    ("none", None),
    ("sandbox worker -9", kill_sandbox_workers),
    ("settler -9", kill_settlers),
    ("outbox worker -9", kill_outbox_workers),
    ("Redis restart", restart_redis),
    ("Redis stall", stall_redis),
    ("PostgreSQL restart", restart_postgres),
    ("PostgreSQL crash", crash_postgres),
]


# ---------------------------------------------------------------------------------------------
# Reading back what was recorded and delivered


def query(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    for attempt in range(20):
        try:
            with psycopg.connect(database_url, connect_timeout=2) as connection:
                return list(connection.execute(sql).fetchall())
        except psycopg.OperationalError:
            if attempt == 19:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def wait_until_drained(database_url: str, receiver: Receiver, deadline_s: float) -> tuple[int, int]:
    """Wait for the settlers and outbox workers to finish; (runs still pending, deliveries still pending)."""
    give_up = time.monotonic() + deadline_s
    while True:
        [(pending_runs,)] = query(database_url, "SELECT count(*) FROM flows_app_pendingrunrecord")
        [(pending_deliveries,)] = query(
            database_url, "SELECT count(*) FROM flows_app_webhookdelivery WHERE status = 'pending'"
        )
        if (pending_runs == 0 and pending_deliveries == 0) or time.monotonic() > give_up:
            return pending_runs, pending_deliveries
        time.sleep(1)


@dataclass
class PhaseFigures:
    fault: str
    what_happened: str
    sent: int = 0
    answered: int = 0
    per_on_error: int = 0
    refused_503: int = 0
    other: Counter[int] = field(default_factory=Counter)
    lost: int = 0
    twice: int = 0
    deliveries_lost: int = 0
    deliveries_twice: int = 0
    worst_ms: float = 0.0
    p99_ms: float = 0.0
    verify_audit: str = ""
    # Failed executions inside the answered runs: (action, error code) → how many.
    failed: Counter[tuple[str, str]] = field(default_factory=Counter)
    # What the answers were, by tenant: (tenant, outcome kind) → how many.
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)


def figures_for(
    phases: list[tuple[str, str, str]], samples: list[Sample], database_url: str, receiver: Receiver
) -> list[PhaseFigures]:
    executions = dict(
        query(database_url, "SELECT transaction_id, count(*) FROM flows_app_actionexecution GROUP BY transaction_id")
    )
    deliveries: dict[str, list[tuple[int, str]]] = {}
    for delivery_id, transaction_id, status in query(
        database_url, "SELECT id, transaction_id, status FROM flows_app_webhookdelivery"
    ):
        deliveries.setdefault(transaction_id, []).append((delivery_id, status))
    figures = []
    for label, fault, what in phases:
        row = PhaseFigures(fault, what, verify_audit=label)
        latencies = []
        for sample in (s for s in samples if s.phase == label):
            row.sent += 1
            if sample.status == 503:
                row.refused_503 += 1
                continue
            if sample.status != 200 or sample.body is None:
                row.other[sample.status] += 1
                continue
            row.answered += 1
            latencies.append(sample.elapsed_ms)
            row.per_on_error += answered_per_on_error(sample)
            row.outcomes[(sample.tenant, sample.body["outcome"]["kind"])] += 1
            row.failed.update((e["action"], e["error"]["code"]) for e in sample.body["executions"] if e["error"])
            reported = len(sample.body["executions"])
            recorded = executions.get(sample.transaction_id, 0)
            row.lost += recorded < reported
            row.twice += recorded > reported
            queued = any(e["action"] == "webhook-emit" and not e["error"] for e in sample.body["executions"])
            made = deliveries.get(sample.transaction_id, [])
            if queued and not made:
                row.deliveries_lost += 1
            for delivery_id, _ in made:
                arrived = receiver.seen.get(str(delivery_id), 0)
                row.deliveries_lost += arrived == 0
                row.deliveries_twice += arrived > 1
        if latencies:
            latencies.sort()
            row.worst_ms, row.p99_ms = latencies[-1], latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        figures.append(row)
    return figures


def verify_audit(env: dict[str, str]) -> str:
    checked = subprocess.run(
        [sys.executable, "manage.py", "verify_audit"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    return "OK" if checked.returncode == 0 else "BROKEN"


def print_figures(title: str, figures: list[PhaseFigures], notes: list[str]) -> bool:
    print(f"\n{title}")
    header = (
        f"{'fault':<20} {'sent':>5} {'200':>5} {'per on_error':>12} {'503':>4} {'other':>6} {'lost':>5} "
        f"{'twice':>5} {'dlv lost':>8} {'dlv twice':>9} {'p99 ms':>7} {'worst ms':>8} {'verify_audit':>12}"
    )
    print(header)
    met = True
    for row in figures:
        other = sum(row.other.values())
        print(
            f"{row.fault:<20} {row.sent:5d} {row.answered:5d} {row.per_on_error:12d} {row.refused_503:4d} {other:6d} "
            f"{row.lost:5d} {row.twice:5d} {row.deliveries_lost:8d} {row.deliveries_twice:9d} "
            f"{row.p99_ms:7.0f} {row.worst_ms:8.0f} {row.verify_audit:>12}"
        )
        redis_fault = row.fault.startswith("Redis")
        met &= row.lost == 0 and row.twice == 0 and row.deliveries_lost == 0 and row.per_on_error == row.answered
        met &= row.verify_audit == "OK" and (not redis_fault or (row.worst_ms <= SLOT_BUDGET_MS and other == 0))
        met &= other == 0 and (row.refused_503 == 0 or row.fault.startswith("PostgreSQL"))
    for row in figures:
        failed = ", ".join(f"{count} {action} {code}" for (action, code), count in sorted(row.failed.items()))
        answers = ", ".join(f"{tenant} {kind} {count}" for (tenant, kind), count in sorted(row.outcomes.items()))
        print(
            f"  {row.fault}: {row.what_happened}"
            + (f"; failed executions: {failed}; answers: {answers}" if failed else "")
            + (f"; other answers {dict(row.other)}" if row.other else "")
        )
    for note in notes:
        print(f"  {note}")
    return met


# ---------------------------------------------------------------------------------------------
# Set-ups


def bench_env(services: OwnServices, receiver: Receiver) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": services.database_url,
        "REDIS_URL": services.redis_url,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_DEBUG": "0",
        "LOG_LEVEL": "CRITICAL",
        "API_RATE_LIMIT_PER_MINUTE": "100000000",
        "ACTIONS_RUNTIME_WORKERS": "2",
        "WEBHOOK_ALLOWED_PRIVATE_NETWORKS": "127.0.0.0/8",
        "WEBHOOK_TIMEOUT_SECONDS": str(WEBHOOK_TIMEOUT_SECONDS),
        # The outbox worker trusts the receiver's self-signed certificate (OpenSSL reads this).
        "SSL_CERT_FILE": str(receiver.cert),
    }


def start_processes(supervisor: Supervisor, count: int) -> list[str]:
    servers = []
    for number in range(1, count + 1):
        port = free_port()
        supervisor.add(
            f"app-{number}",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                "-w",
                "2",
                "-b",
                f"127.0.0.1:{port}",
                "--log-level",
                "error",
            ],
        )
        supervisor.add(f"settler-{number}", [sys.executable, "manage.py", "settle_runs"])
        supervisor.add(
            f"outbox-{number}", [sys.executable, "manage.py", "run_outbox_worker", "--limit", str(OUTBOX_LIMIT)]
        )
        servers.append(f"http://127.0.0.1:{port}")
    for server in servers:
        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{server}/readyz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
    return servers


def run_topology(
    count: int, services: OwnServices, receiver: Receiver, env: dict[str, str], tokens: dict[str, str]
) -> bool:
    supervisor = Supervisor(env)
    servers = start_processes(supervisor, count)
    stream = Stream(servers, tokens)
    threads = stream.run()
    time.sleep(2)  # warm-up: imports, isolates, connections (its runs are not counted)
    phases: list[tuple[str, str, str]] = []
    for fault, inject in FAULTS:
        label = f"{count}:{fault}"
        stream.phase = label
        time.sleep(PHASE_SECONDS / 3)
        what = inject(supervisor, services, receiver) if inject else "steady stream, no fault"
        time.sleep(PHASE_SECONDS * 2 / 3)
        phases.append((label, fault, what))
    stream.stop.set()
    for thread in threads:
        thread.join()
    pending_runs, pending_deliveries = wait_until_drained(services.database_url, receiver, deadline_s=120)
    verdict = verify_audit(env)
    restarts = {role.name: role.restarts for role in supervisor.roles if role.restarts}
    stopped = supervisor.stop_all()
    figures = figures_for(phases, stream.samples, services.database_url, receiver)
    for row in figures:
        row.verify_audit = verdict
    unclean = {name: status for name, (_, status) in stopped.items() if status != 0}
    slowest_stop = max(seconds for seconds, _ in stopped.values())
    notes = [
        f"left undrained after 120 s: {pending_runs} runs, {pending_deliveries} deliveries",
        f"restarted by the supervisor: {restarts or 'none'}",
        f"SIGTERM at the end: every process exited in {slowest_stop:.1f} s"
        + (f"; not cleanly: {unclean}" if unclean else ", status 0"),
    ]
    noun = (
        "app server, settler and outbox worker" if count == 1 else f"{count} app servers, settlers and outbox workers"
    )
    title = (
        f"{noun} on one PostgreSQL; {RATE:g} sign-ins/s from {CLIENTS} clients, {PHASE_SECONDS:g} s per fault; "
        f"slot budget {SLOT_BUDGET_MS} ms"
    )
    return print_figures(title, figures, notes) and not unclean and pending_runs == 0 and pending_deliveries == 0


# ---------------------------------------------------------------------------------------------
# Soak


def process_readings(supervisor: Supervisor) -> dict[str, tuple[float, int]]:
    """RSS (MiB) and open files of every process of the set-up, by role and pid."""
    readings = {}
    with supervisor.lock:
        roots = [(role.name, role.process.pid) for role in supervisor.roles if role.process]
    for name, root in roots:
        for pid in [root, *descendants(root)]:
            kind = "sandbox" if "runtime.worker" in command_of(pid) else ("worker" if pid != root else "main")
            with contextlib.suppress(OSError):
                with open(f"/proc/{pid}/status", encoding="ascii") as status:
                    rss_kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
                readings[f"{name} {kind} {pid}"] = (rss_kib / 1024, len(os.listdir(f"/proc/{pid}/fd")))
    return readings


def soak(
    seconds: float, services: OwnServices, receiver: Receiver, env: dict[str, str], tokens: dict[str, str]
) -> bool:
    supervisor = Supervisor(env)
    stream = Stream(start_processes(supervisor, 2), tokens)
    threads = stream.run()
    time.sleep(min(120, seconds / 5))  # warm-up: caches, isolates and heaps fill; then the curve should be flat
    series: dict[str, list[tuple[float, float, int]]] = {}
    began, step = time.monotonic(), max(1.0, seconds / 60)
    stream.phase = "soak"
    while time.monotonic() - began < seconds:
        now = time.monotonic() - began
        for key, (rss, files) in process_readings(supervisor).items():
            series.setdefault(key, []).append((now, rss, files))
        time.sleep(step)
    stream.stop.set()
    for thread in threads:
        thread.join()
    supervisor.stop_all()
    answered = sum(sample.status == 200 for sample in stream.samples if sample.phase == "soak")
    print(f"\nSoak: {seconds:g} s, two app servers, {answered} sign-ins answered; slope per 10 minutes (goal: flat)")
    print(f"{'process':<36} {'RSS MiB start → end':>20} {'RSS slope':>10} {'open files':>11} {'files change':>12}")
    flat = True
    for key, points in sorted(series.items()):
        if len(points) < 6:
            continue  # a process that came and went (a replaced sandbox worker)
        times = [t / 600 for t, _, _ in points]
        rss_slope = statistics.linear_regression(times, [rss for _, rss, _ in points]).slope
        # Open files step up and down as connections are used; compare the medians of the first
        # and last thirds instead of fitting a line through the steps.
        third = len(points) // 3
        first, last = (statistics.median(f for _, _, f in part) for part in (points[:third], points[-third:]))
        start, end = points[0], points[-1]
        rss_text, files_text = f"{start[1]:9.0f} → {end[1]:<8.0f}", f"{start[2]:4d} → {end[2]:<4d}"
        print(f"{key:<36} {rss_text} {rss_slope:+9.1f}  {files_text} {last - first:+12.1f}")
        # Flat: under 5 MiB per 10 minutes (allocator churn stays below that) and no file kept open.
        flat &= rss_slope < 5 and last <= first
    print(
        "goal: RSS slope < 5 MiB per 10 minutes, no more open files, every process: " + ("met" if flat else "NOT met")
    )
    return flat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--soak", type=float, metavar="SECONDS", help="Run without faults and print RSS/open-file slopes."
    )
    parser.add_argument(
        "--servers", type=int, nargs="*", default=[1, 2], help="App-server counts to run (default 1 2)."
    )
    options = parser.parse_args()
    missing = [
        tool for tool in ("initdb", "pg_ctl", "redis-server", "redis-cli", "psql", "openssl") if not shutil.which(tool)
    ]
    if missing:
        print(f"SKIPPED: needs {', '.join(missing)} on PATH")
        sys.exit(SKIPPED)
    with tempfile.TemporaryDirectory(prefix="actions-faults-") as scratch_name:
        scratch = Path(scratch_name)
        services = OwnServices(scratch)
        receiver = Receiver(scratch)
        env = bench_env(services, receiver)
        try:
            services.start()
            subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
            )
            setup = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    SETUP.format(root=str(ROOT), trigger=TRIGGER, hook=receiver.url, timeouts=TIMEOUTS_MS),
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if setup.returncode != 0:
                raise SystemExit(setup.stderr)
            tokens = {line.split()[0]: line.split()[2] for line in setup.stdout.strip().splitlines()[-2:]}
            if options.soak:
                met = soak(options.soak, services, receiver, env, tokens)
            else:
                met = all([run_topology(count, services, receiver, env, tokens) for count in options.servers])  # noqa: C419 (run every set-up)
                print(
                    "\ngoals: 0 lost, 0 recorded twice, 0 deliveries lost; every 200 answered per its bindings' "
                    f"on_error; no answer but 200 except 503 while PostgreSQL restarts; while Redis is away every "
                    f"answer within the slot's budget ({SLOT_BUDGET_MS} ms); verify_audit OK: "
                    + ("met" if met else "NOT met")
                )
        finally:
            services.stop()
    sys.exit(0 if met else 1)


if __name__ == "__main__":
    main()
