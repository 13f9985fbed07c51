"""Running the TypeScript 7 compiler (the native `tsc` from npm) and reading what it prints."""

from __future__ import annotations

import os
import platform
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = PROJECT_ROOT / "node_modules"
TSC_LAUNCHER = NODE_MODULES / ".bin" / "tsc"

# File names are relative to the work dir, and that is where tsc runs.
TSC_FLAGS: tuple[str, ...] = (
    "--strict",
    "--target", "es2022",
    "--module", "commonjs",
    # es2022 alone, no DOM: fetch, window, document, setTimeout… do not exist in the sandbox either.
    "--lib", "es2022",
    # No @types packages: the sandbox has no Node.js, so `process` and `require` must be errors.
    "--types", "",
    # The operator's file is a module even without exports, so its declarations never merge into the SDK's globals.
    "--moduleDetection", "force",
    # Imports and `/// <reference path>` may not pull other files of the server into the program.
    "--noResolve",
    # Still checks our generated sdk.d.ts; only TypeScript's own lib files are skipped (about half the time).
    "--skipDefaultLibCheck",
    # Emit even with type errors: an editor may "save anyway".
    "--noEmitOnError", "false",
    "--pretty", "false",
    # A map back to the operator's lines and columns, for where an exception came from (source_map.py).
    "--sourceMap",
    "--newLine", "lf",
    "--rootDir", ".",
    "--outDir", "out",
)  # fmt: skip

# tsc prints `action.ts(3,7): error TS2322: Type 'number' is not assignable to type 'string'.` and, for messages
# about no file (bad option, missing root file), `error TS6053: File 'x.ts' not found.` Lines that start with
# whitespace continue the previous message (elaboration chains such as "Types of property 'a' are incompatible.").
_LOCATED_MESSAGE = re.compile(
    r"^(?P<file>.+?)\((?P<line>\d+),(?P<column>\d+)\): (?P<category>error|warning|message|suggestion) "
    r"(?P<code>TS\d+): (?P<text>.*)$"
)
_UNLOCATED_MESSAGE = re.compile(r"^(?P<category>error|warning|message|suggestion) (?P<code>TS\d+): (?P<text>.*)$")

# Node.js names of the platform packages that `typescript` installs next to itself (@typescript/typescript-linux-x64).
_NODE_PLATFORMS = {"linux": "linux", "darwin": "darwin", "win32": "win32"}
_NODE_ARCHES = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}

# tsc's exit statuses: 0 success, 1 diagnostics and nothing emitted, 2 diagnostics and output emitted.
_EXPECTED_EXIT_CODES = {0, 1, 2}


@dataclass(frozen=True)
class TscMessage:
    """One diagnostic as tsc printed it; `file` is None for messages about no particular file."""

    file: str | None
    line: int
    column: int
    category: str
    code: str
    text: str


class TscTimeoutError(Exception):
    """tsc ran past its time limit and was killed."""


def tsc_command() -> list[str]:
    """The command that starts tsc.

    `node_modules/.bin/tsc` is a Node.js launcher that only starts the native binary from the matching
    platform package; starting that binary directly saves about 0.15 s per compile (Node's start-up) and
    leaves one process to kill on timeout. The launcher is the fallback for platforms we do not map.
    """
    node_platform = _NODE_PLATFORMS.get(sys.platform)
    node_arch = _NODE_ARCHES.get(platform.machine().lower())
    if node_platform and node_arch:
        executable = "tsc.exe" if node_platform == "win32" else "tsc"
        native_tsc = NODE_MODULES / "@typescript" / f"typescript-{node_platform}-{node_arch}" / "lib" / executable
        if native_tsc.is_file() and os.access(native_tsc, os.X_OK):
            return [str(native_tsc)]
    if TSC_LAUNCHER.exists():
        return [str(TSC_LAUNCHER)]
    raise RuntimeError(
        f"The TypeScript compiler is not installed ({TSC_LAUNCHER} is missing). Run `npm ci` in {PROJECT_ROOT}."
    )


def run_tsc(work_dir: Path, file_names: Sequence[str], *, timeout_s: float) -> list[TscMessage]:
    """Compile `file_names` (relative to `work_dir`) into `work_dir/out` and return tsc's diagnostics.

    Raises TscTimeoutError when tsc takes longer than `timeout_s`, RuntimeError when tsc fails in a way
    that is not a diagnostic (a crash, an unexpected exit status without messages).
    """
    command = [*tsc_command(), *TSC_FLAGS, *file_names]
    # A session of its own, so a timeout kills tsc together with anything it started (the Node launcher
    # runs the native compiler as a child that a plain kill of the launcher would leave running).
    with subprocess.Popen(  # noqa: S603  (fixed executable, argument list, no shell)
        command,
        cwd=work_dir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_session(process)
            process.communicate()
            raise TscTimeoutError(f"tsc took longer than {timeout_s:g} s") from None
    messages = parse_tsc_output(stdout)
    if process.returncode not in _EXPECTED_EXIT_CODES or (process.returncode != 0 and not messages):
        details = (stderr or stdout).strip()[:2000]
        raise RuntimeError(f"The TypeScript compiler failed (exit status {process.returncode}): {details}")
    return messages


def parse_tsc_output(output: str) -> list[TscMessage]:
    """The diagnostics in tsc's `--pretty false` output, each with its continuation lines joined by newlines."""
    messages: list[TscMessage] = []
    # Only "\n" ends a line: str.splitlines would also split on characters quoted from the source (U+2028…).
    for raw_line in output.split("\n"):
        line = raw_line.rstrip("\r")
        located = _LOCATED_MESSAGE.match(line)
        if located:
            messages.append(
                TscMessage(
                    file=located["file"],
                    line=int(located["line"]),
                    column=int(located["column"]),
                    category=located["category"],
                    code=located["code"],
                    text=located["text"],
                )
            )
            continue
        unlocated = _UNLOCATED_MESSAGE.match(line)
        if unlocated:
            messages.append(TscMessage(None, 1, 1, unlocated["category"], unlocated["code"], unlocated["text"]))
            continue
        if line[:1].isspace() and line.strip() and messages:
            messages[-1] = replace(messages[-1], text=f"{messages[-1].text}\n{line}")
    return messages


def _kill_session(process: subprocess.Popen[str]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
