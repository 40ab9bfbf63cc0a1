"""`dozor` run as a user runs it: a subprocess from the repository root."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

REPO = Path(__file__).resolve().parents[2]


def run_dozor(args: list[str], env: dict[str, str], timeout: float = 120, expect: int = 0
              ) -> subprocess.CompletedProcess[str]:
    """`python -m dozor ARGS`, which must exit with `expect`; its output is in the result."""
    result = subprocess.run([sys.executable, "-m", "dozor", *args], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == expect, (
        f"dozor {args[0]} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def wait_until_serving(url: str, server: subprocess.Popen, timeout: float = 60) -> None:
    """Poll `url` until the server started as `server` answers it; fails, with the server's
    exit status, when it died or stayed silent (a busy CI machine can take 10 s or more)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, f"the server exited {server.returncode}"
        try:
            with urlopen(url, timeout=5):
                return
        except URLError:
            time.sleep(0.1)
    raise AssertionError(f"nothing answered {url} within {timeout:g} s")
