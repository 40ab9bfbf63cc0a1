"""What the official client sends to the loopback Elasticsearch, and what the fake answers,
type-checked against Elastic's specification (`../shared/es-spec/types-9.3.ts`) with
`tsc --noEmit --strict`: an unknown field or a wrong shape in either direction fails.

When the suite runs the ES test modules in this process, this test runs after them
(tests/conftest.py orders it last) and checks what they exchanged; run on its own, it
runs those modules in a subprocess with the capture plugin on. TypeScript comes from
npm, pinned in tests/tsc/package-lock.json (`make test-install` installs it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.fakes.elasticsearch import FakeElasticsearch
from tests.support.es_spec_capture import ENV, Capture, typed_constants, typescript

SPEC = REPO.parent / "shared" / "es-spec" / "types-9.3.ts"
TSC_DIR = REPO / "tests" / "tsc"
TSC = TSC_DIR / "node_modules" / ".bin" / "tsc"
# every module whose tests talk to the loopback Elasticsearch (relative to tests/)
ES_MODULES = ("test_es_setup.py", "test_es_store.py", "test_es_percolator.py",
              "test_es_spool.py", "test_es_cli.py", "test_alert_crash.py",
              "test_alert_recovery.py", "test_ui.py", "test_es_cluster.py",
              "test_es_delivery_lock.py", "test_revisit_es.py", "contracts/test_history.py")

# started when the suite imports this module, before any test runs
IN_PROCESS = Capture().start()


def _tsc() -> Path:
    if TSC.exists():
        return TSC
    npm = shutil.which("npm")
    if npm is None:
        print("npm is not installed: the specification check needs TypeScript from npm")
        pytest.skip("npm is not installed: cannot install TypeScript for the spec check")
    subprocess.run([npm, "ci", "--prefix", str(TSC_DIR), "--no-audit", "--no-fund"],
                   check=True, capture_output=True, timeout=300)
    return TSC


def _exchanges(session: pytest.Session, tmp_path: Path) -> tuple[list, list[str]]:
    """What the ES tests exchanged with the fake, and every protocol problem it saw."""
    ran = {Path(str(item.fspath)).relative_to(REPO / "tests").as_posix()
           for item in session.items}
    if ran >= set(ES_MODULES):
        return list(IN_PROCESS.exchanges.values()), list(FakeElasticsearch.all_problems)
    out = tmp_path / "exchanges.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.support.es_spec_capture",
         "-p", "no:cacheprovider", *(str(REPO / "tests" / m) for m in ES_MODULES)],
        cwd=REPO, env={**os.environ, ENV: str(out)}, capture_output=True, text=True,
        timeout=600,
    )
    # a failing ES test is reported by its own module; what it exchanged is checked here
    assert out.exists(), result.stdout[-3000:] + result.stderr[-2000:]
    return Capture.read(out)


def test_requests_and_answers_match_the_specification(request: pytest.FixtureRequest,
                                                      tmp_path: Path) -> None:
    if not SPEC.exists():
        pytest.skip(f"{SPEC} is missing")
    tsc = _tsc()
    exchanges, problems = _exchanges(request.session, tmp_path)
    assert len(exchanges) > 50, "the ES tests exchanged almost nothing with the fake"
    assert problems == [], "the fake Elasticsearch saw protocol problems"
    constants, unknown = typed_constants(exchanges)
    assert unknown == [], "endpoints the check does not know: " + "\n".join(unknown)
    text, origins = typescript(constants, SPEC)
    source = tmp_path / "exchanges.ts"
    source.write_text(text, encoding="utf-8")
    result = subprocess.run(
        [str(tsc), "--noEmit", "--strict", "--target", "es2022", "--module", "esnext",
         "--moduleResolution", "bundler", "--types", "", str(source)],
        capture_output=True, text=True, timeout=300,
    )
    report = []
    for line in result.stdout.splitlines():
        m = re.match(r".*?\.ts\((\d+),\d+\): (.*)", line)
        if m and int(m.group(1)) <= len(origins):
            report.append(f"{origins[int(m.group(1)) - 1]}:\n    {m.group(2)[:600]}")
        else:
            report.append(line[:600])
    assert result.returncode == 0, "\n".join(report[:40]) + result.stderr
    # the check is real: a body with a field the specification lacks is refused
    bogus = source.with_name("bogus.ts")
    first = next(c for c in constants if c.type == "T.SearchResponse")
    first.value = first.value.replace("{", '{"dozor_not_a_field": 1,', 1)
    bogus.write_text(typescript([first], SPEC)[0], encoding="utf-8")
    refused = subprocess.run([str(tsc), "--noEmit", "--strict", "--target", "es2022",
                              "--module", "esnext", "--moduleResolution", "bundler",
                              "--types", "", str(bogus)], capture_output=True, text=True)
    assert refused.returncode != 0 and "dozor_not_a_field" in refused.stdout
