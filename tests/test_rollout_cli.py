"""actions-console-rollout against a live test server with three tenants, one of whose tokens is
revoked. The main scenario runs the installed console script as a subprocess."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connection

from actions_app.models import ActionVersion
from actions_console_cli.progress import ProgressBar
from actions_console_cli.rollout import main
from audit_app.models import AuditEvent
from flows_app.models import Binding, Flow, FlowRevision
from flows_app.services import BindingSpec
from orchestration.founding import create_tenant
from tenants.acting import Acting
from tenants.models import ApiToken, Tenant
from tenants.services import create_api_token, revoke_api_token
from tests.factories import BAD, GOOD
from tests.flow_helpers import attach

pytestmark = pytest.mark.django_db(transaction=True)

SCRIPT = Path(sys.executable).with_name("actions-console-rollout")
SCHEMA = {"type": "object", "properties": {"threshold": {"type": "integer"}}, "required": ["threshold"]}
BOUNDED = {
    "type": "object",
    "properties": {"threshold": {"type": "integer", "maximum": 100}},
    "required": ["threshold"],
}
SCOPES = ["actions:write", "actions:publish", "flows:write"]
SYSTEM = Acting.platform("tests")


def token_for(tenant: Tenant, scopes: list[str] = SCOPES) -> tuple[ApiToken, str]:
    return create_api_token(tenant, name="rollout", scopes=scopes, acting=SYSTEM)


@pytest.fixture
def three_tenants(personas: Any, live_server: Any, tmp_path: Path) -> dict[str, Any]:
    """acme and globex with working tokens, initech whose token was revoked; the tenants file."""
    initech = create_tenant(slug="initech", name="Initech")
    _, acme_token = token_for(personas.tenant_a)
    _, globex_token = token_for(personas.tenant_b)
    revoked, initech_token = token_for(initech)
    revoke_api_token(revoked, acting=SYSTEM)
    tenants_file = tmp_path / "tenants.txt"
    tenants_file.write_text(
        "# tenant-url   token\n"
        f"{live_server.url}/ {acme_token}\n"
        "\n"
        f"{live_server.url}/   {globex_token}   # globex\n"
        f"{live_server.url}/ {initech_token}\n"
    )
    return {
        "tenants": {"acme": personas.tenant_a, "globex": personas.tenant_b, "initech": initech},
        "file": tenants_file,
        "url": live_server.url,
        "tokens": {"acme": acme_token, "globex": globex_token, "initech": initech_token},
    }


def action_folder(tmp_path: Path, source: str = GOOD, schema: Any = SCHEMA, name: str = "risk-gate") -> Path:
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    (folder / "action.ts").write_text(source)
    metadata = {
        "name": "Risk gate",
        "slug": "risk-gate",
        "triggers": ["login.post-auth"],
        "config_schema": schema,
        "attach_config": {"threshold": 70},
    }
    (folder / "action.json").write_text(json.dumps(metadata, indent=2))
    return folder


def jobs() -> list[str]:
    # The live server shares one connection among its threads on in-memory SQLite, which cannot
    # serve two transactions at once; on PostgreSQL the CLI's default concurrency is exercised.
    return ["--jobs", "1"] if connection.vendor == "sqlite" else []


def run_script(*args: str | Path) -> subprocess.CompletedProcess[str]:
    if not SCRIPT.exists():
        pytest.fail(f"{SCRIPT} is missing: `make install` installs it (pip install --no-deps -e .)")
    return subprocess.run(
        [str(SCRIPT), *map(str, args), *jobs()], capture_output=True, text=True, timeout=120, check=False
    )


def run_main(*args: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([*map(str, args), *jobs()], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def table_rows(stdout: str) -> dict[str, str]:
    """The table's rows by tenant name ("acme @ host:port" → the whole line)."""
    table = stdout.split("\n\n", 1)[0]
    return {line.split(" ", 1)[0]: line for line in table.splitlines()[2:] if " @ " in line}


def footprint(tenant: Tenant) -> tuple[list[str], int, int]:
    versions = [
        f"{v.version}:{v.status}"
        for v in ActionVersion.objects.filter(action__tenant=tenant, action__slug="risk-gate").order_by("id")
    ]
    audit = AuditEvent.objects.filter(tenant=tenant).exclude(type__startswith="api_token").count()
    return versions, audit, FlowRevision.objects.filter(flow__tenant=tenant).count()


def pinned_versions(tenant: Tenant) -> list[str]:
    flow = Flow.objects.get(tenant=tenant, slug="login")
    return [
        b.pinned_version.version
        for b in Binding.objects.filter(revision=flow.current_revision, action__slug="risk-gate")
    ]


def test_it_rolls_out_to_every_tenant_whose_token_works(three_tenants: dict[str, Any], tmp_path: Path) -> None:
    tenants = three_tenants["tenants"]
    folder = action_folder(tmp_path)

    # Dry run: the plan per tenant, nothing written anywhere.
    before = {slug: footprint(t) for slug, t in tenants.items()}
    dry = run_script(
        folder, "--tenants", three_tenants["file"], "--dry-run", "--publish", "--pin", "login:login.post-auth"
    )
    assert dry.returncode == 1, dry.stderr
    rows = table_rows(dry.stdout)
    assert "would create action (0.1.0)" in rows["acme"] and "would publish" in rows["acme"]
    assert "login:login.post-auth would attach 0.1.0" in rows["globex"]
    assert "line 5 (" in dry.stdout
    assert "failed: the token was rejected (revoked, expired or mistyped)" in dry.stdout
    assert "Dry run, nothing was written. 3 tenant(s): 2 succeeded, 1 failed." in dry.stdout
    assert {slug: footprint(t) for slug, t in tenants.items()} == before

    # The rollout itself: two tenants get the action, published and pinned; initech nothing.
    done = run_script(folder, "--tenants", three_tenants["file"], "--publish", "--pin", "login:login.post-auth")
    assert done.returncode == 1
    rows = table_rows(done.stdout)
    for slug in ("acme", "globex"):
        assert "created action (0.1.0)" in rows[slug] and " yes " in rows[slug]
        assert "login:login.post-auth attached 0.1.0" in rows[slug]
        assert footprint(tenants[slug])[0] == ["0.1.0:published"]
        assert pinned_versions(tenants[slug]) == ["0.1.0"]
    assert footprint(tenants["initech"]) == before["initech"]
    # Progress goes to stderr as plain lines when stderr is not a terminal.
    assert "rolling out [2/2] acme @" in done.stderr or "rolling out [2/2] globex @" in done.stderr

    # Again: no change; and a new source moves both bindings to 0.1.1.
    again = run_script(folder, "--tenants", three_tenants["file"], "--publish", "--pin", "login:login.post-auth")
    rows = table_rows(again.stdout)
    assert "no change (0.1.0)" in rows["acme"] and "login:login.post-auth 0.1.0 (already)" in rows["acme"]
    (folder / "action.ts").write_text(GOOD + "// two\n")
    newer = run_script(folder, "--tenants", three_tenants["file"], "--publish", "--pin", "login:login.post-auth")
    rows = table_rows(newer.stdout)
    assert "new version 0.1.1" in rows["globex"] and "login:login.post-auth 0.1.0→0.1.1" in rows["globex"]
    assert pinned_versions(tenants["globex"]) == ["0.1.1"]


def test_exit_status_is_0_only_when_every_tenant_succeeded(three_tenants: dict[str, Any], tmp_path: Path) -> None:
    working = tmp_path / "working.txt"
    working.write_text("\n".join(three_tenants["file"].read_text().splitlines()[:4]) + "\n")
    result = run_script(action_folder(tmp_path), "--tenants", working)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 tenant(s): 2 succeeded, 0 failed." in result.stdout


def test_a_tenant_whose_binding_config_the_new_schema_refuses_gets_nothing(
    three_tenants: dict[str, Any], tmp_path: Path
) -> None:
    tenants = three_tenants["tenants"]
    folder = action_folder(tmp_path)
    run_main(folder, "--tenants", three_tenants["file"], "--publish", "--pin", "login:login.post-auth")
    # On globex an operator set a threshold the next version will not accept.
    attach(
        tenants["globex"],
        "login.post-auth",
        BindingSpec(action="risk-gate", version="0.1.0", config={"threshold": 150}),
    )
    before = footprint(tenants["globex"])

    newer = action_folder(tmp_path, GOOD + "// bounded\n", BOUNDED)
    code, out, _ = run_main(newer, "--tenants", three_tenants["file"], "--publish", "--pin", "login:login.post-auth")
    assert code == 1
    rows = table_rows(out)
    assert "new version 0.1.1" in rows["acme"]
    assert "failed: The version cannot be pinned where asked; nothing was written." in rows["globex"]
    assert "login:login.post-auth.0.config.threshold:" in out
    # Nothing at all on globex: no 0.1.1, no publish, no audit event, no flow revision.
    assert footprint(tenants["globex"]) == before
    assert footprint(tenants["globex"])[0] == ["0.1.0:published"]
    assert pinned_versions(tenants["globex"]) == ["0.1.0"]
    assert pinned_versions(tenants["acme"]) == ["0.1.1"]


def test_type_errors_are_shown_with_line_and_column(three_tenants: dict[str, Any], tmp_path: Path) -> None:
    code, out, _ = run_main(action_folder(tmp_path, BAD), "--tenants", three_tenants["file"])
    assert code == 1
    assert "failed: The TypeScript has 1 error(s); nothing was written." in table_rows(out)["acme"]
    assert "    line 2, column " in out and "blok" in out
    assert footprint(three_tenants["tenants"]["acme"])[0] == []


def test_a_token_without_the_scopes_fails_before_anything_is_written(
    three_tenants: dict[str, Any], tmp_path: Path
) -> None:
    _, read_only = token_for(three_tenants["tenants"]["acme"], ["actions:write"])
    tenants_file = tmp_path / "scopes.txt"
    tenants_file.write_text(f"{three_tenants['url']} {read_only}\n")
    code, out, _ = run_main(
        action_folder(tmp_path), "--tenants", tenants_file, "--publish", "--pin", "login:login.post-auth"
    )
    assert code == 1
    assert "the token lacks the scope(s) actions:publish (for --publish), flows:write (for --pin)" in out
    assert footprint(three_tenants["tenants"]["acme"])[0] == []


def test_two_lines_reaching_one_tenant_roll_out_once(three_tenants: dict[str, Any], tmp_path: Path) -> None:
    _, second = token_for(three_tenants["tenants"]["acme"])
    tenants_file = tmp_path / "twice.txt"
    tenants_file.write_text(
        f"{three_tenants['url']} {three_tenants['tokens']['acme']}\n{three_tenants['url']} {second}\n"
    )
    code, out, _ = run_main(action_folder(tmp_path), "--tenants", tenants_file)
    assert code == 1
    assert "failed: line 1 already reaches tenant acme; skipped" in out


def test_bad_tenant_lines_are_named_and_nothing_is_sent(three_tenants: dict[str, Any], tmp_path: Path) -> None:
    tenants_file = tmp_path / "bad.txt"
    url, token = three_tenants["url"], three_tenants["tokens"]["acme"]
    tenants_file.write_text(
        f"{url} {token}\n# fine\n{url}\nftp://example.com/ {token}\n{token} {url}\n{url} env:NOT_SET_ANYWHERE_42\n"
    )
    code, out, err = run_main(action_folder(tmp_path), "--tenants", tenants_file)
    assert code == 2 and out == ""
    assert "nothing was sent" in err
    assert "line 3: expected `tenant-url token` (2 fields), found 1" in err
    assert "line 4: the tenant URL 'ftp://example.com/' must be an http:// or https:// URL with a host" in err
    assert "line 5: the first field must be the console's URL" in err
    assert "line 5: the second field looks like a URL" in err
    assert "line 6: the environment variable NOT_SET_ANYWHERE_42" in err
    assert token not in err
    assert ApiToken.objects.get(tenant__slug="acme").last_used_at is None


def test_a_token_can_come_from_the_environment(three_tenants: dict[str, Any], tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("ACME_ROLLOUT_TOKEN", three_tenants["tokens"]["acme"])
    tenants_file = tmp_path / "env.txt"
    tenants_file.write_text(f"{three_tenants['url']} env:ACME_ROLLOUT_TOKEN\n")
    code, out, _ = run_main(action_folder(tmp_path), "--tenants", tenants_file, "--dry-run")
    assert code == 0, out
    assert "would create action (0.1.0)" in table_rows(out)["acme"]


def test_a_bad_action_folder_is_refused_before_anything_is_sent(three_tenants: dict[str, Any], tmp_path: Path) -> None:
    folder = action_folder(tmp_path)
    (folder / "action.json").write_text('{"name": "Risk gate", "slug": "Risk Gate", "trigger": []\n')
    code, _, err = run_main(folder, "--tenants", three_tenants["file"])
    assert code == 2
    assert "action.json line 2, column 1" in err
    (folder / "action.json").write_text(json.dumps({"name": "Risk gate", "slug": "Risk Gate", "trigger": []}))
    code, _, err = run_main(folder, "--tenants", three_tenants["file"])
    assert code == 2
    assert "unknown key 'trigger' in action.json" in err and "slug: 2–80 lowercase" in err and "triggers:" in err
    assert ApiToken.objects.get(tenant__slug="acme").last_used_at is None


def test_bad_arguments_exit_2(three_tenants: dict[str, Any], tmp_path: Path) -> None:
    result = run_script(action_folder(tmp_path), "--tenants", three_tenants["file"], "--pin", "login")
    assert result.returncode == 2
    assert "'login': use FLOW:TRIGGER" in result.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_console_fails_that_tenant_after_retries(three_tenants: dict[str, Any], tmp_path: Path) -> None:
    tenants_file = tmp_path / "down.txt"
    tenants_file.write_text(
        f"http://127.0.0.1:{free_port()}/ {three_tenants['tokens']['acme']}\n"
        f"{three_tenants['url']} {three_tenants['tokens']['globex']}\n"
    )
    code, out, _ = run_main(action_folder(tmp_path), "--tenants", tenants_file, "--retries", "1", "--json")
    assert code == 1
    results = json.loads(out)
    assert results[0]["ok"] is False and results[0]["error"]["reason"].startswith("cannot reach http://127.0.0.1:")
    assert results[0]["retries"] == 1
    assert results[1]["ok"] is True and results[1]["result"]["change"] == "created"


class _LosesFirstAnswer(BaseHTTPRequestHandler):
    """A proxy in front of the live server that forwards the first rollout POST but drops the
    connection instead of answering: the client cannot know whether the rollout happened."""

    upstream = ""
    dropped = 0

    def do_GET(self) -> None:
        self._forward(None)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._forward(body)

    def _forward(self, body: bytes | None) -> None:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        upstream = httpx.request(self.command, self.upstream + self.path, headers=headers, content=body, timeout=60)
        if body is not None and "/rollout" in self.path and type(self).dropped == 0:
            type(self).dropped += 1
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(upstream.status_code)
        for name in ("Content-Type", "Idempotent-Replayed"):
            if name in upstream.headers:
                self.send_header(name, upstream.headers[name])
        self.send_header("Content-Length", str(len(upstream.content)))
        self.end_headers()
        self.wfile.write(upstream.content)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_retry_after_a_lost_answer_does_not_apply_twice(three_tenants: dict[str, Any], tmp_path: Path) -> None:
    acme = three_tenants["tenants"]["acme"]
    folder = action_folder(tmp_path)
    run_main(folder, "--tenants", three_tenants["file"])
    (folder / "action.ts").write_text(GOOD + "// two\n")
    _LosesFirstAnswer.upstream = three_tenants["url"]
    _LosesFirstAnswer.dropped = 0
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _LosesFirstAnswer)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        tenants_file = tmp_path / "proxied.txt"
        tenants_file.write_text(f"http://127.0.0.1:{proxy.server_address[1]}/ {three_tenants['tokens']['acme']}\n")
        code, out, _ = run_main(folder, "--tenants", tenants_file, "--json")
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert _LosesFirstAnswer.dropped == 1
    result = json.loads(out)[0]
    assert code == 0 and result["retries"] == 1
    # The retry got the first answer back: the version that attempt created, and only that one.
    assert (result["result"]["change"], result["result"]["version"]) == ("new_version", "0.1.1")
    assert footprint(acme)[0] == ["0.1.0:draft", "0.1.1:draft"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_redraws_one_line_on_a_terminal_and_prints_lines_elsewhere() -> None:
    terminal = _Terminal()
    bar = ProgressBar(2, "rolling out", terminal)
    bar.advance("acme @ host", "new version 0.1.1")
    bar.advance("globex @ host", "no change (0.1.1)")
    bar.close()
    drawn = terminal.getvalue()
    assert drawn.count("\r") == 3 and drawn.endswith("\n") and drawn.count("\n") == 1
    assert "[############------------] 1/2 acme @ host: new version 0.1.1" in drawn
    assert "[########################] 2/2 globex @ host" in drawn
    log = io.StringIO()
    bar = ProgressBar(2, "rolling out", log)
    bar.advance("acme @ host", "new version 0.1.1")
    bar.close()
    assert log.getvalue() == "rolling out [1/2] acme @ host: new version 0.1.1\n"


def test_a_rate_limited_request_waits_for_retry_after_and_goes_on(
    three_tenants: dict[str, Any], tmp_path: Path, settings: Any, monkeypatch: Any
) -> None:
    settings.API_RATE_LIMIT_PER_MINUTE = 1
    # whoami uses the minute's one request; the rollout is refused one second before the next
    # minute (Retry-After: 1) and its retry lands in that next minute.
    minute = 30_000_000 * 60
    moments = iter([minute + 58.0, minute + 59.0])
    monkeypatch.setattr("tenants.api_auth.rate_clock", lambda: next(moments, minute + 61.0))
    tenants_file = tmp_path / "limited.txt"
    tenants_file.write_text(f"{three_tenants['url']} {three_tenants['tokens']['acme']}\n")
    code, out, _ = run_main(action_folder(tmp_path), "--tenants", tenants_file, "--json")
    result = json.loads(out)[0]
    assert code == 0, result
    assert result["retries"] == 1 and result["result"]["change"] == "created"
