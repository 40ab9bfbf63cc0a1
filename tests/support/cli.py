"""`dozor` run as a user runs it: a subprocess from the repository root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_dozor(args: list[str], env: dict[str, str], timeout: float = 120, expect: int = 0
              ) -> subprocess.CompletedProcess[str]:
    """`python -m dozor ARGS`, which must exit with `expect`; its output is in the result."""
    result = subprocess.run([sys.executable, "-m", "dozor", *args], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == expect, (
        f"dozor {args[0]} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result
