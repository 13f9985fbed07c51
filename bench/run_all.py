"""Run every benchmark in this folder, one after another, each in its own process.

A benchmark whose prerequisite is missing (audit_pages.py needs PostgreSQL) prints why and exits
with SKIPPED; that is reported, not counted as a failure."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SKIPPED = 77

if __name__ == "__main__":
    failed, skipped = [], []
    for script in sorted(HERE.glob("*.py")):
        if script.name in {"run_all.py", "__init__.py"}:
            continue
        print(f"\n== {script.name}", flush=True)
        status = subprocess.run([sys.executable, str(script)], check=False).returncode
        if status == SKIPPED:
            skipped.append(script.name)
        elif status != 0:
            failed.append(script.name)
    if skipped:
        print(f"\nskipped: {', '.join(skipped)}")
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    sys.exit(1 if failed else 0)
