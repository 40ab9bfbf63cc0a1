"""The README's benchmark commands work as written: every `python -m bench.NAME ...` it
shows names a module of bench/ whose --help exits 0 and knows the options the README
gives it. One subprocess asks every module's --help (argparse exits there, before any
work), so the check stays cheap."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.support.cli import REPO

COMMAND = re.compile(r"python -m (bench\.\w+)([^`#\n]*)")
# asks each module's --help as `python -m` would run it; prints {module: [exit, help]}
DRIVER = """
import contextlib, io, json, runpy, sys
out = {}
for name in sys.argv[1:]:
    sys.argv = [name, "--help"]
    text = io.StringIO()
    try:
        with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
            runpy.run_module(name, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception as exc:
        code, text = 1, io.StringIO(f"{type(exc).__name__}: {exc}")
    out[name] = [code, text.getvalue()]
json.dump(out, sys.__stdout__)
"""


def readme_commands() -> dict[str, set[str]]:
    """Per bench module the README runs, the options its commands give it."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    commands: dict[str, set[str]] = {}
    for module, rest in COMMAND.findall(text):
        commands.setdefault(module, set()).update(re.findall(r"(--[\w-]+)", rest))
    return commands


def test_readme_bench_commands_run_as_written() -> None:
    commands = readme_commands()
    assert {"bench.relevance", "bench.dedup", "bench.soak", "bench.store"} <= set(commands)
    for module in commands:
        assert (REPO / "bench" / f"{module.split('.', 1)[1]}.py").is_file(), module
    result = subprocess.run([sys.executable, "-c", DRIVER, *sorted(commands)], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    answers = json.loads(result.stdout)
    for module, options in commands.items():
        code, shown = answers[module]
        assert code == 0, f"python -m {module} --help exited {code}: {shown[-500:]}"
        assert "usage:" in shown, module
        for option in options:
            assert option in shown, f"the README gives {module} {option}, which it lacks"
