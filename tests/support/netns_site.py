"""A crawl inside a network namespace that has only loopback, run by the guard tests:

    unshare -n -m python -m tests.support.netns_site WORKDIR

Inside, 93.184.215.14 (a public address) is put on `lo`, so it is reachable and the
network guard lets it through; 127.0.0.1 stands for the internal service an attacker
wants to reach. A DNS server on 127.0.0.1:53 (the namespace's /etc/resolv.conf is
bind-mounted over) answers `rebind.test` with the public address the first time and
127.0.0.1 every time after: DNS rebinding. /etc/hosts maps the IDN host пример.рф
(xn--e1afmkfd.xn--p1ai) to the public address. The same site is served on both
addresses; every request the loopback copy gets is a request the guard let through to
loopback. Prints one JSON line: both servers' request logs and the crawl's pages and
figures.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

from dozor.demo.loopback import LoopbackServer, Response
from tests.support.crawl_harness import launch, write_sources

PUBLIC = "93.184.215.14"
IDN_HOST = "пример.рф"
ARTICLE = ("<html lang='en'><head><title>{0}</title></head><body><article><p>{0}. "
           + "A public story about the town council. " * 20 + "</p></article></body></html>")


class Site(LoopbackServer):
    """The same pages on whichever address it is bound to; each request logged."""

    def __init__(self, host: str, port: int = 0, feeds: dict[str, str] | None = None) -> None:
        super().__init__(host, port)
        self.feeds = feeds or {}
        self.requests: list[str] = []

    def respond(self, path: str) -> Response:
        self.requests.append(path)
        if path == "/robots.txt":
            return 200, {"Content-Type": "text/plain"}, b"User-agent: *\nAllow: /\n"
        if path in self.feeds:
            return 200, {"Content-Type": "application/rss+xml"}, self.feeds[path].encode()
        if path.startswith("/news/"):
            return 200, {"Content-Type": "text/html; charset=utf-8"}, \
                ARTICLE.format(path).encode()
        return 404, {"Content-Type": "text/plain"}, b"not found"


class RebindingDNS:
    """Answers A queries for `name`: `first` once, then `then`; AAAA with no records
    (so only the A answer counts); any other name NXDOMAIN. TTL 0: nothing caches."""

    def __init__(self, name: str, first: str, then: str) -> None:
        self.name, self.first, self.then = name, first, then
        self.answers: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 53))
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            query, peer = self.sock.recvfrom(512)
            self.sock.sendto(self._answer(query), peer)

    def _answer(self, query: bytes) -> bytes:
        ident, _flags = struct.unpack(">HH", query[:4])
        labels, pos = [], 12
        while query[pos]:
            labels.append(query[pos + 1:pos + 1 + query[pos]].decode("ascii").lower())
            pos += 1 + query[pos]
        qtype = struct.unpack(">H", query[pos + 1:pos + 3])[0]
        question = query[12:pos + 5]
        if ".".join(labels) != self.name:
            return struct.pack(">HHHHHH", ident, 0x8183, 1, 0, 0, 0) + question  # NXDOMAIN
        if qtype != 1:  # AAAA and the rest: the name exists, no such records
            return struct.pack(">HHHHHH", ident, 0x8180, 1, 0, 0, 0) + question
        address = self.first if not self.answers else self.then
        self.answers.append(address)
        record = struct.pack(">HHHLH", 0xC00C, 1, 1, 0, 4) + socket.inet_aton(address)
        return struct.pack(">HHHHHH", ident, 0x8180, 1, 1, 0, 0) + question + record


def isolate(work: Path) -> None:
    """Loopback up with the public address on it; our resolver and hosts file."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "add", f"{PUBLIC}/32", "dev", "lo"], check=True)
    resolv, hosts = work / "resolv.conf", work / "hosts"
    resolv.write_text("nameserver 127.0.0.1\noptions attempts:1 timeout:1\n")
    hosts.write_text(f"127.0.0.1 localhost\n{PUBLIC} {IDN_HOST.encode('idna').decode()}\n")
    for mine, system in ((resolv, "/etc/resolv.conf"), (hosts, "/etc/hosts")):
        subprocess.run(["mount", "--bind", str(mine), system], check=True)


def main(work: Path) -> int:
    isolate(work)
    dns = RebindingDNS("rebind.test", first=PUBLIC, then="127.0.0.1")
    public = Site(PUBLIC).start()
    port = public.port
    internal = Site("127.0.0.1", port).start()
    def rss(link: str) -> str:
        return ('<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
                f"<item><link>{link}</link></item></channel></rss>")

    public.feeds = internal.feeds = {
        "/rss.xml": rss(f"http://rebind.test:{port}/news/rebound.html"),
        "/idn.xml": rss(f"http://{IDN_HOST}:{port}/news/idn.html"),
    }
    sources = write_sources(work / "sources.yaml", [
        {"name": "rebinding", "feeds": [f"http://{PUBLIC}:{port}/rss.xml"],
         "allowed_domains": ["rebind.test"]},
        {"name": "idn", "feeds": [f"http://{IDN_HOST}:{port}/idn.xml"]},
    ])
    out = launch("crawl", work / "crawl", "--sources", str(sources), "--db", str(work / "s.db"))
    print(json.dumps({"internal": internal.requests, "public": public.requests,
                      "dns": dns.answers, "figures": out.figures, "log": out.log[-6000:],
                      "pages": [p["final_url"] for p in out.pages]}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
