"""Probes for load balancers and orchestrators: /healthz, /readyz and the background processes' heartbeat."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings

from flows_app.heartbeat import Heartbeat
from flows_app.outbound.worker import run_settle_loop, run_until_signalled

UNREACHABLE_REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens on port 1
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}


def test_healthz_answers_anyone_without_a_session_whatever_the_host(client: Any, db: None) -> None:
    response = client.get("/healthz", headers={"Host": "10.0.0.5"})  # the app server's own address
    assert response.status_code == 200 and response.json() == {"status": "alive"}
    assert response["Cache-Control"] == "no-store" and "Set-Cookie" not in response


@override_settings(SECURE_SSL_REDIRECT=True)
def test_probes_are_not_redirected_to_https(client: Any, db: None) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/accounts/login/").status_code == 301  # everything else still is


def test_readyz_checks_the_database_the_cache_and_the_sandbox(client: Any, db: None) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "cache": "ok", "sandbox": "ok"}}


def test_readyz_is_503_naming_only_what_fails(client: Any, db: None) -> None:
    with override_settings(CACHES=UNREACHABLE_REDIS):
        started = time.monotonic()
        response = client.get("/readyz")
        elapsed = time.monotonic() - started
    assert response.status_code == 503 and elapsed < 5
    assert response.json() == {"status": "not ready", "checks": {"database": "ok", "cache": "failing", "sandbox": "ok"}}
    assert b"127.0.0.1" not in response.content and b"Error" not in response.content


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
