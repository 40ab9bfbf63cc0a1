"""The network guard against DNS rebinding, and IDN sources, in a network namespace with
only loopback (tests/support/netns_site.py): a real resolver on 127.0.0.1:53 whose answer for
`rebind.test` changes from a public address to 127.0.0.1 after the first lookup."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.support.crawl_harness import REPO

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None,
    reason="needs root, unshare(1) and ip(8) to make a network namespace with only loopback")


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> dict:
    work = tmp_path_factory.mktemp("netns")
    proc = subprocess.run(["unshare", "--net", "--mount", sys.executable, "-m",
                           "tests.support.netns_site", str(work)],
                          cwd=REPO, capture_output=True, text=True, timeout=180)
    if proc.returncode != 0 and "unshare failed" in proc.stderr:
        pytest.skip(f"cannot make a network namespace here: {proc.stderr.strip()[-200:]}")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_name_that_rebinds_to_loopback_never_reaches_it(probe: dict) -> None:
    # the resolver really did change its answer: public first, loopback after
    assert probe["dns"][0] == "93.184.215.14" and "127.0.0.1" in probe["dns"][1:]
    # nothing, not even robots.txt, was asked of the service on loopback
    assert probe["internal"] == []
    assert "network guard refused to connect to rebind.test: it now resolves to 127.0.0.1" \
        in probe["log"]
    assert not any("rebind.test" in url for url in probe["pages"])


def test_a_feed_on_an_internationalised_domain_yields_its_articles(probe: dict) -> None:
    """пример.рф in the sources file, links canonicalised to xn--e1afmkfd.xn--p1ai: the
    source's scope compares one form, so the article is fetched, not 'offsite'."""
    assert [u for u in probe["pages"] if u.startswith("http://xn--e1afmkfd.xn--p1ai:")
            and u.endswith("/news/idn.html")]
    assert "/news/idn.html" in probe["public"]
    assert probe["figures"]["offsite"] == 0
