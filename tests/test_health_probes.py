"""Probes for load balancers and orchestrators: /healthz, /readyz and the background processes' heartbeat."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import OperationalError
from django.test import override_settings

from actions_app.runtime import execute_action, shutdown_pool
from actions_app.runtime import executor as runtime_executor
from config import health
from flows_app.heartbeat import Heartbeat
from flows_app.outbound.worker import run_settle_loop, run_until_signalled

UNREACHABLE_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}


@pytest.fixture(autouse=True)
def fresh_readiness() -> Iterator[None]:
    health.forget_cached_readiness()  # every test sees its own checks, not the last test's
    yield
    health.forget_cached_readiness()


@pytest.fixture
def sandbox_started() -> None:
    # The sandbox counts as ready once a worker has started (a probe that finds no pool starts one).
    runtime_executor.wait_for_idle_workers_for_tests()


def test_healthz_answers_anyone_without_a_session_whatever_the_host(client: Any, db: None) -> None:
    response = client.get("/healthz", headers={"Host": "10.0.0.5"})  # the app server's own address
    assert response.status_code == 200 and response.json() == {"status": "alive"}
    assert response["Cache-Control"] == "no-store" and "Set-Cookie" not in response


@override_settings(SECURE_SSL_REDIRECT=True)
def test_probes_are_not_redirected_to_https(client: Any, db: None) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/accounts/login/").status_code == 301  # everything else still is


def test_readyz_checks_the_database_the_cache_and_the_sandbox(client: Any, db: None, sandbox_started: None) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "cache": "ok", "sandbox": "ok"}}


def test_readyz_is_503_naming_only_what_fails(
    client: Any, db: None, sandbox_started: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def database_gone() -> bool:
        raise OperationalError('connection to server at "10.0.0.9", port 5432 failed: Connection refused')

    monkeypatch.setitem(health.READINESS_CHECKS, "database", database_gone)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "not ready", "checks": {"database": "failing", "cache": "ok", "sandbox": "ok"}}
    assert b"10.0.0.9" not in response.content and b"refused" not in response.content


def test_readyz_without_redis_is_degraded_not_down(client: Any, db: None, sandbox_started: None) -> None:
    with override_settings(CACHES=UNREACHABLE_REDIS):
        started = time.monotonic()
        response = client.get("/readyz")
        elapsed = time.monotonic() - started
    # Sign-ins work without Redis: taking every app server out of the load balancer would not help.
    assert response.status_code == 200 and elapsed < 5
    assert response.json() == {"status": "degraded", "checks": {"database": "ok", "cache": "failing", "sandbox": "ok"}}
    assert b"127.0.0.1" not in response.content and b"Error" not in response.content


def test_readyz_checks_once_per_two_seconds_however_many_probes_come(
    client: Any, db: None, django_assert_num_queries: Any, monkeypatch: pytest.MonkeyPatch, sandbox_started: None
) -> None:
    with django_assert_num_queries(1):
        assert [client.get("/readyz").status_code for _ in range(5)] == [200] * 5

    monkeypatch.setattr(health, "READINESS_CACHE_SECONDS", 0.0)  # as if two seconds had passed
    with django_assert_num_queries(1):
        assert client.get("/readyz").status_code == 200


def test_readyz_does_not_wait_behind_a_busy_sandbox(client: Any, db: None, single_worker: None) -> None:
    busy = threading.Thread(
        target=execute_action,
        kwargs={
            "isolate_key": "test-tenant:health:busy",
            "compiled_js": "exports.execute = async function () { while (true) {} };",
            "action_input": {"trigger": "login.post-login", "user": {}, "request": {}, "state": {}, "context": {}},
            "timeout_ms": 1500,
        },
    )
    busy.start()
    time.sleep(0.2)  # the loop has the only worker

    started = time.monotonic()
    response = client.get("/readyz")
    elapsed = time.monotonic() - started
    busy.join()

    assert response.status_code == 200 and response.json()["checks"]["sandbox"] == "ok"
    assert elapsed < 0.5, elapsed


def test_readyz_starts_the_sandbox_and_counts_it_ready_once_a_worker_has_started(
    client: Any, db: None, single_worker: None
) -> None:
    shutdown_pool()

    assert client.get("/readyz").json()["checks"]["sandbox"] == "failing"  # starting, not serving yet
    runtime_executor.wait_for_idle_workers_for_tests()
    health.forget_cached_readiness()
    assert client.get("/readyz").json()["checks"]["sandbox"] == "ok"


def test_readyz_reports_dead_sandbox_workers_and_they_are_replaced(client: Any, db: None, single_worker: None) -> None:
    (pid,) = runtime_executor.worker_pids_for_tests()
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)  # reaped here, so the pool's look at its workers cannot miss the death

    assert client.get("/readyz").json()["checks"]["sandbox"] == "failing"
    # No request needs to come for the worker to be replaced.
    ready_by = time.monotonic() + 10
    while time.monotonic() < ready_by and runtime_executor.worker_pids_for_tests() == [pid]:
        time.sleep(0.05)
    runtime_executor.wait_for_idle_workers_for_tests()
    health.forget_cached_readiness()
    assert client.get("/readyz").json()["checks"]["sandbox"] == "ok"


def test_probes_take_only_get_and_head(client: Any, db: None) -> None:
    response = client.post("/healthz")
    assert response.status_code == 405 and response["Allow"] == "GET, HEAD"
    assert client.head("/healthz").status_code == 200


def test_a_settler_writes_its_heartbeat_every_round_and_stops_when_asked(tmp_path: Path, db: None) -> None:
    heartbeat_file = tmp_path / "settle_runs.alive"
    stop = threading.Event()
    loop = threading.Thread(
        target=run_settle_loop, args=(stop,), kwargs={"interval_s": 0.05, "heartbeat": Heartbeat(heartbeat_file)}
    )
    loop.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (
        heartbeat_file.exists() and json.loads(heartbeat_file.read_text())["rounds"] >= 3
    ):
        time.sleep(0.05)
    stop.set()
    loop.join(10)
    assert not loop.is_alive()
    state = json.loads(heartbeat_file.read_text())
    assert state["rounds"] >= 3 and state["last_round"] == "ok" and state["pid"] == os.getpid()

    out = StringIO()
    call_command("check_heartbeat", str(heartbeat_file), stdout=out)
    assert out.getvalue().startswith("ALIVE: last heartbeat")


def test_check_heartbeat_fails_for_a_stale_or_missing_file(tmp_path: Path) -> None:
    stale = tmp_path / "stale.alive"
    stale.write_text(json.dumps({"pid": 1, "at": time.time() - 120, "rounds": 9, "last_round": "failed"}))
    for path, expected in ((stale, "NOT ALIVE: last heartbeat 120 s ago"), (tmp_path / "none", "NOT ALIVE: no")):
        out = StringIO()
        with pytest.raises(SystemExit) as exit_info:
            call_command("check_heartbeat", str(path), "--max-age", "30", stdout=out)
        assert exit_info.value.code == 1 and out.getvalue().startswith(expected)


def test_sigterm_lets_the_round_in_progress_finish_then_the_loop_returns() -> None:
    rounds: list[str] = []
    said: list[str] = []

    def loop(stop: threading.Event) -> None:
        while not stop.is_set():
            rounds.append("started")
            if rounds.count("started") == 2:
                os.kill(os.getpid(), signal.SIGTERM)  # arrives in the middle of round 2
            time.sleep(0.01)
            rounds.append("finished")

    previous = signal.getsignal(signal.SIGTERM)
    run_until_signalled(loop, said.append)
    assert rounds == ["started", "finished", "started", "finished"]
    assert said == ["SIGTERM: stopping after the current round."]
    assert signal.getsignal(signal.SIGTERM) is previous  # the handler is put back


@pytest.mark.parametrize(
    ("command", "stopped"), [("settle_runs", "Run settler stopped."), ("run_outbox_worker", "Outbox worker stopped.")]
)
def test_the_background_commands_exit_cleanly_on_sigterm(command: str, stopped: str, tmp_path: Path) -> None:
    # The real process, as systemd or Kubernetes stops it. Its database has no tables: every round
    # fails (as while the database is away) and the process must still stop when asked.
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}", "LOG_LEVEL": "CRITICAL"}
    heartbeat_file = tmp_path / "alive"
    process = subprocess.Popen(
        [sys.executable, "manage.py", command, "--interval", "0.05", "--heartbeat-file", str(heartbeat_file)],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not heartbeat_file.exists():
            time.sleep(0.05)
        assert json.loads(heartbeat_file.read_text())["last_round"] == "failed"
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert out.rstrip().endswith(stopped) and "SIGTERM: stopping after the current round." in err
