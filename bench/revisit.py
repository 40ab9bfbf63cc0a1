"""A revisit of N unchanged pages: conditional requests (304, no extraction) against a
full refetch of the same pages (200, extracted and compared), side by side in one run.

    .venv/bin/python -m bench.revisit [--pages 1000] [PAGES_DIR]

The shared corpus's pages, repeated under distinct URLs, are served from memory on
127.0.0.1 with an ETag, and stored by one `dozor run`. The first `dozor revisit --all`
has no validators yet: every page answers 200 and is extracted again (a full refetch).
The second sends back the ETags the first one kept: every page answers 304. Wall time
and CPU are the child process's; bytes are the response bodies the server sent.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import threading
from email.message import Message
from pathlib import Path

from bench.corpus import DEFAULT_PAGES, load_pages
from bench.crawl import ROOT, BenchSite, measure
from dozor.demo.loopback import Response


class ConditionalSite(BenchSite):
    """The bench site with an ETag per page, answering a matching If-None-Match with 304,
    counting the body bytes it sends."""

    def __init__(self, bodies: list[bytes], count: int) -> None:
        super().__init__(bodies, count)
        self.sent = 0
        self._lock = threading.Lock()

    def respond_to(self, path: str, request_headers: Message) -> Response:
        status, headers, body = self.respond(path)
        if status == 200 and path.startswith("/news/"):
            etag = f'"{path}"'
            headers = {**headers, "ETag": etag}
            if request_headers.get("If-None-Match") == etag:
                status, body = 304, b""
        with self._lock:
            self.sent += len(body)
        return status, headers, body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="?", type=Path, default=DEFAULT_PAGES)
    parser.add_argument("--pages", dest="count", type=int, default=1000)
    args = parser.parse_args()
    if not (args.pages / "manifest.json").exists():
        sys.exit(f"no corpus at {args.pages} (manifest.json missing)")
    bodies = [page.body for _, page in load_pages(args.pages)]
    python = str(ROOT / ".venv" / "bin" / "python")
    with ConditionalSite(bodies, args.count) as site, tempfile.TemporaryDirectory() as tmp:
        settings = Path(tmp, "dozor.yaml")
        settings.write_text("crawl:\n  autothrottle: false\n  concurrent_requests_per_domain: 8"
                            "\ntranslation:\n  mode: none\n", encoding="utf-8")
        sources = Path(tmp, "sources.yaml")
        sources.write_text(f"sources:\n  - name: bench\n    lang: ru\n"
                           f"    feeds: [{site.base}/feed.xml]\n", encoding="utf-8")
        alerts = Path(tmp, "alerts.yaml")
        alerts.write_text("rules: []\n", encoding="utf-8")
        env = {**os.environ, "DOZOR_DATA_DIR": str(Path(tmp, "data")),
               "DOZOR_CONFIG": str(settings), "COLUMNS": "200"}
        common = ["--alerts", str(alerts), "--allow-private-network"]
        stored = measure([python, "-m", "dozor", "run", "--sources", str(sources), *common], env)
        new = re.search(r"(\d+) new", stored[3])
        runs = {}
        for name in ("full refetch", "conditional"):
            before = site.sent
            runs[name] = (*measure([python, "-m", "dozor", "revisit", "--all", *common], env),
                          site.sent - before)
    print(f"{args.count} pages served, {new[1] if new else '?'} stored by dozor run; "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    print(f"{'':14}{'wall s':>9}{'CPU s':>9}{'body MB':>10}")
    for name, (wall, cpu, _, _, sent) in runs.items():
        print(f"{name:14}{wall:9.1f}{cpu:9.1f}{sent / 1e6:10.2f}")
    full, cond = runs["full refetch"], runs["conditional"]
    print(f"ratio conditional / full: wall {cond[0] / full[0]:.2f}x, CPU {cond[1] / full[1]:.2f}x,"
          f" bytes {cond[4] / max(1, full[4]):.4f}x")
    for name, run in runs.items():
        line = next((x for x in run[3].splitlines() if x.startswith("revisits:")), "?")
        print(f"  {name} | {line}")


if __name__ == "__main__":
    main()
