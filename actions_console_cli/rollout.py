"""`actions-console-rollout`: push one custom action to many tenants.

    actions-console-rollout ./risk-gate --tenants tenants.txt --dry-run
    actions-console-rollout ./risk-gate --tenants tenants.txt --publish --pin login:login.post-auth

First every tenant is checked (token valid, scopes enough) before anything is written anywhere;
then each tenant gets one `POST /api/v1/actions/{slug}/rollout`, which creates or versions the
action, publishes and pins it in one transaction on the server: a tenant either gets the whole
rollout or is left exactly as it was. Exit status: 0 when every tenant succeeded, 1 when any
failed, 2 for bad arguments or files (nothing sent).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO

import httpx

from actions_console_cli.bundle import ActionBundle, BundleError, load_bundle
from actions_console_cli.client import ApiFailure, ConsoleClient
from actions_console_cli.progress import ProgressBar
from actions_console_cli.report import TenantOutcome, outcomes_as_json, render_table, result_words
from actions_console_cli.tenants_file import TenantsFileError, parse_tenants_file

EXIT_OK, EXIT_TENANT_FAILED, EXIT_USAGE = 0, 1, 2
PIN_RE = re.compile(r"^([a-z0-9][a-z0-9-]*[a-z0-9]):([a-z-]+\.[a-z-]+)$")
SEMVER_RE = re.compile(r"^\d+\.\d+\.\d+$")


def _pin(value: str) -> dict[str, str]:
    match = PIN_RE.match(value)
    if not match:
        raise argparse.ArgumentTypeError(f"{value!r}: use FLOW:TRIGGER, e.g. login:login.post-auth")
    return {"flow": match[1], "trigger": match[2]}


def _semver(value: str) -> str:
    if not SEMVER_RE.match(value):
        raise argparse.ArgumentTypeError(f"{value!r}: use MAJOR.MINOR.PATCH, e.g. 2.0.0")
    return value


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: a whole number of at least 1")
    return number


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{value!r}: a number of seconds above 0")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="actions-console-rollout",
        description="Push a custom action (a folder with action.json and its .ts source) to many tenants.",
        epilog="Tenants file: one `tenant-url token` pair per line; # starts a comment; a token may be "
        "env:VARIABLE to read it from the environment. Exit status 0: every tenant succeeded; 1: some "
        "tenant failed; 2: bad arguments or files (nothing sent).",
    )
    parser.add_argument("action_dir", type=Path, help="folder with action.json and the TypeScript source")
    parser.add_argument("--tenants", type=Path, required=True, metavar="FILE", help="the tenants file")
    parser.add_argument("--dry-run", action="store_true", help="show what would change on each tenant; write nothing")
    parser.add_argument("--publish", action="store_true", help="publish the version (scope actions:publish)")
    parser.add_argument(
        "--pin",
        type=_pin,
        action="append",
        default=[],
        metavar="FLOW:TRIGGER",
        help="pin the version in this flow slot (repeatable; scope flows:write): the action's bindings there move "
        "to it, or it is attached at the end with action.json's attach_config",
    )
    parser.add_argument("--bump", choices=["patch", "minor", "major"], default="patch", help="default: patch")
    parser.add_argument("--new-version", type=_semver, metavar="X.Y.Z", help="an explicit version instead of --bump")
    parser.add_argument("--jobs", type=_positive, default=4, help="tenants handled at once (default 4)")
    parser.add_argument("--timeout", type=_seconds, default=60.0, help="seconds per request (default 60)")
    parser.add_argument("--retries", type=int, choices=range(0, 11), default=3, metavar="N",
                        help="retries on connection errors and timeouts (default 3)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser


def rollout_payload(bundle: ActionBundle, args: argparse.Namespace) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "name": bundle.name,
        "compatible_triggers": bundle.triggers,
        "config_schema": bundle.config_schema,
        "source": bundle.source,
        "publish": args.publish,
        "pin": args.pin,
        "attach_config": bundle.attach_config,
        "bump": args.bump,
        "dry_run": args.dry_run,
    }
    if args.new_version:
        payload["version"] = args.new_version
    return payload


def idempotency_key(run_id: str, outcome: TenantOutcome, slug: str, payload: dict[str, Any]) -> str:
    """Same for every retry of one tenant's rollout in this run, different for anything else. The
    run id keeps a later run from being answered with this run's result: a second run of the
    same content must say "no change", not replay "new version"."""
    canonical = json.dumps(
        [run_id, outcome.line.base_url, outcome.tenant, slug, payload], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def required_scopes(args: argparse.Namespace) -> dict[str, str]:
    scopes = {"actions:write": "to save the action"}
    if args.publish:
        scopes["actions:publish"] = "for --publish"
    if args.pin:
        scopes["flows:write"] = "for --pin"
    return scopes


def _for_each(
    jobs: int, outcomes: Iterable[TenantOutcome], work: Callable[[TenantOutcome], None], bar: ProgressBar
) -> None:
    def run(outcome: TenantOutcome) -> None:
        work(outcome)
        bar.advance(outcome.label, outcome.failure.reason if outcome.failure else _short(outcome))

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(run, outcomes))
    bar.close()


def _short(outcome: TenantOutcome) -> str:
    return result_words(outcome) if outcome.document is not None else "ok"


def preflight(outcome: TenantOutcome, client: ConsoleClient, scopes: dict[str, str]) -> None:
    """Check the token and its scopes before anything is written on any tenant."""
    try:
        who = client.whoami()
    except ApiFailure as failure:
        outcome.failure = failure
        return
    finally:
        outcome.retried += client.retried
        client.retried = 0
    outcome.tenant = str(who.get("tenant", "?"))
    missing = [scope for scope in scopes if scope not in who.get("scopes", [])]
    if missing:
        why = ", ".join(f"{scope} ({scopes[scope]})" for scope in missing)
        outcome.fail(f"the token lacks the scope(s) {why}")


def mark_duplicates(outcomes: list[TenantOutcome]) -> None:
    """Two lines reaching the same tenant of the same console would roll out twice: keep the first."""
    first: dict[tuple[str, str], TenantOutcome] = {}
    for outcome in outcomes:
        if outcome.failure is not None or outcome.tenant is None:
            continue
        key = (outcome.line.base_url.lower(), outcome.tenant)
        if key in first:
            outcome.fail(f"line {first[key].line.line_no} already reaches tenant {outcome.tenant}; skipped")
        else:
            first[key] = outcome


def run_rollout(args: argparse.Namespace, bundle: ActionBundle, outcomes: list[TenantOutcome], stderr: TextIO) -> None:
    payload = rollout_payload(bundle, args)
    scopes = required_scopes(args)
    run_id = uuid.uuid4().hex
    progress = not args.no_progress
    timeout = httpx.Timeout(args.timeout, connect=min(10.0, args.timeout))
    with httpx.Client(timeout=timeout, follow_redirects=False) as http:
        clients = {id(o): ConsoleClient(http, o.line.base_url, o.line.token, retries=args.retries) for o in outcomes}
        bar = ProgressBar(len(outcomes), "checking tokens", stderr, enabled=progress)
        _for_each(args.jobs, outcomes, lambda o: preflight(o, clients[id(o)], scopes), bar)
        mark_duplicates(outcomes)

        def roll_out(outcome: TenantOutcome) -> None:
            client = clients[id(outcome)]
            key = idempotency_key(run_id, outcome, bundle.slug, payload)
            try:
                outcome.document = client.roll_out(bundle.slug, payload, key)
            except ApiFailure as failure:
                outcome.failure = failure
            finally:
                outcome.retried += client.retried

        ready = [o for o in outcomes if o.failure is None]
        bar = ProgressBar(len(ready), "dry run" if args.dry_run else "rolling out", stderr, enabled=progress)
        _for_each(args.jobs, ready, roll_out, bar)


def main(argv: list[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        bundle = load_bundle(args.action_dir)
        tenants = parse_tenants_file(args.tenants)
    except (BundleError, TenantsFileError) as error:
        where = error.folder if isinstance(error, BundleError) else error.path
        stderr.write(f"actions-console-rollout: {where}: nothing was sent.\n")
        stderr.writelines(f"  {problem}\n" for problem in error.problems)
        return EXIT_USAGE
    outcomes = [TenantOutcome(line) for line in tenants]
    try:
        run_rollout(args, bundle, outcomes, stderr)
    except KeyboardInterrupt:
        stderr.write("\nInterrupted. Tenants whose request had reached the server got all of the rollout or none.\n")
        return 130
    if args.json:
        stdout.write(json.dumps(outcomes_as_json(outcomes), indent=2) + "\n")
    else:
        stdout.write(render_table(outcomes, dry_run=args.dry_run) + "\n")
    return EXIT_OK if all(o.succeeded for o in outcomes) else EXIT_TENANT_FAILED


if __name__ == "__main__":
    sys.exit(main())
