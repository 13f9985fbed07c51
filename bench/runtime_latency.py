"""Latency and throughput of the action runtime, side by side with plain in-process mini-racer.

Run from the repository root: `python bench/runtime_latency.py` (no Django settings needed).

    warm        one isolate key over and over: the pool, a warm isolate, execute() only
    cold        a new isolate key every time, requests 50 ms apart: the worker has a spare context
                with the sandbox set up, so this is module evaluation plus the first execute()
    cold b2b    the same back to back: the worker also builds the context (the spare is not ready)
    throughput  warm executions from 2 client threads at once
    baseline    the same module in a MiniRacer in this process: no sandbox, no worker, no pipe;
                the same two evals per call (start execute(), read the settled value)

Goals on a 2-core machine: warm p50 <= 1 ms, warm p99 <= 5 ms, cold <= 30 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from py_mini_racer import MiniRacer

from actions_app.runtime import execute_action, shutdown_pool

# What `tsc --module commonjs --target es2022` emits for a trivial action.
TRIVIAL_ACTION_JS = """"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.execute = execute;
async function execute(input) {
    if (input.context.risk.score > 90) {
        return { kind: "block", reason: "Risk too high" };
    }
    return { kind: "continue", state: { checked: true } };
}
"""

ACTION_INPUT = {
    "trigger": "login.post-auth",
    "user": {
        "id": "user-1",
        "email": "ada@example.com",
        "email_verified": True,
        "groups": ["staff"],
        "app_metadata": {"plan": "pro"},
    },
    "request": {"ip": "203.0.113.7", "user_agent": "bench", "hostname": "login.example.com"},
    "state": {},
    "context": {
        "tenant": "acme",
        "flow": "login",
        "transaction_id": "tx-1",
        "action": {"slug": "bench", "version": "1.0.0"},
        "config": {},
        "risk": {"score": 10},
    },
}
EXPECTED_RESULT = {"kind": "continue", "state": {"checked": True}}


def percentile(samples_ms: list[float], fraction: float) -> float:
    ordered = sorted(samples_ms)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def time_calls(call: Callable[[], object], count: int, pause_seconds: float = 0.0) -> list[float]:
    samples_ms = []
    for _ in range(count):
        if pause_seconds:
            time.sleep(pause_seconds)
        started = time.perf_counter()
        call()
        samples_ms.append((time.perf_counter() - started) * 1000)
    return samples_ms


def run_pool(isolate_key: str) -> None:
    execution = execute_action(isolate_key=isolate_key, compiled_js=TRIVIAL_ACTION_JS, action_input=ACTION_INPUT)
    if execution.result != EXPECTED_RESULT:
        raise SystemExit(f"unexpected execution: {execution}")


def measure_throughput(seconds: float, threads: int) -> float:
    done = [0] * threads
    stop_at = time.perf_counter() + seconds

    def client(index: int) -> None:
        while time.perf_counter() < stop_at:
            run_pool(f"bench:throughput:{index % 2}")
            done[index] += 1

    workers = [threading.Thread(target=client, args=(index,)) for index in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(done) / (time.perf_counter() - started)


def baseline_call_factory() -> Callable[[], object]:
    """The same module and input in a plain in-process MiniRacer, read back like the runtime does."""
    racer = MiniRacer()
    racer.eval(f"var exports = {{}}; (function (exports) {{{TRIVIAL_ACTION_JS}\n}})(exports); var settled;")
    input_literal = json.dumps(json.dumps(ACTION_INPUT))

    def call() -> object:
        racer.eval(
            f"settled = undefined; exports.execute(JSON.parse({input_literal}))"
            ".then(v => { settled = JSON.stringify(v); }); 0",
            timeout_sec=1,
        )
        settled = racer.eval("settled", timeout_sec=1)
        if json.loads(str(settled)) != EXPECTED_RESULT:
            raise SystemExit(f"unexpected baseline result: {settled}")
        return settled

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warm", type=int, default=3000, help="warm executions to time")
    parser.add_argument("--cold", type=int, default=200, help="cold executions to time (each way)")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of the throughput run")
    options = parser.parse_args()

    started = time.perf_counter()
    run_pool("bench:warm")  # starts the pool; not timed
    print(f"pool start-up and first execution: {(time.perf_counter() - started) * 1000:.0f} ms")
    time_calls(lambda: run_pool("bench:warm"), 200)
    warm = time_calls(lambda: run_pool("bench:warm"), options.warm)
    cold_keys = iter(range(2 * options.cold))
    cold = time_calls(lambda: run_pool(f"bench:cold:{next(cold_keys)}"), options.cold, pause_seconds=0.05)
    cold_back_to_back = time_calls(lambda: run_pool(f"bench:cold:{next(cold_keys)}"), options.cold)
    pool_throughput = measure_throughput(options.seconds, threads=2)
    shutdown_pool()

    baseline_call = baseline_call_factory()
    time_calls(baseline_call, 200)
    baseline = time_calls(baseline_call, options.warm)
    baseline_throughput = len(baseline) / (sum(baseline) / 1000)

    rows = [
        ("warm (pool)", warm),
        ("cold (pool, new isolate key)", cold),
        ("cold back-to-back (pool)", cold_back_to_back),
        ("baseline (in-process mini-racer)", baseline),
    ]
    print(f"\n{'measurement':<34}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for label, samples in rows:
        print(
            f"{label:<34}{len(samples):>6}{percentile(samples, 0.5):>10.3f}"
            f"{percentile(samples, 0.99):>10.3f}{statistics.fmean(samples):>10.3f}"
        )
    print(f"\n{'throughput':<34}{'executions/s':>16}")
    print(f"{'pool, 2 client threads':<34}{pool_throughput:>16.0f}")
    print(f"{'baseline, 1 thread':<34}{baseline_throughput:>16.0f}")

    print("\nratios against the baseline (p50 / p99):")
    for label, samples in rows[:3]:
        p50_ratio = percentile(samples, 0.5) / percentile(baseline, 0.5)
        p99_ratio = percentile(samples, 0.99) / percentile(baseline, 0.99)
        print(f"  {label:<32}{p50_ratio:>8.1f}x{p99_ratio:>8.1f}x")

    goals = [
        ("warm p50 <= 1 ms", percentile(warm, 0.5) <= 1.0),
        ("warm p99 <= 5 ms", percentile(warm, 0.99) <= 5.0),
        ("cold p50 <= 30 ms", percentile(cold, 0.5) <= 30.0),
        ("cold back-to-back p50 <= 30 ms", percentile(cold_back_to_back, 0.5) <= 30.0),
    ]
    print("\ngoals: " + ", ".join(f"{name}: {'met' if met else 'MISSED'}" for name, met in goals))


if __name__ == "__main__":
    main()
