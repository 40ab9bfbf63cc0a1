"""The network guard: which addresses the crawler may contact, checked in real crawls."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path

import pytest
from scrapy import Request, Spider
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from crawler.middlewares import NetworkGuardMiddleware, RefusedRequest
from crawler.netguard import AddressPolicy, parse_networks
from pipelines.errors import ConfigError
from tests.support.crawl_harness import launch, write_sources
from tests.support.httpserver import NewsServer

ARTICLE = ("<html lang='en'><head><title>Fine</title></head><body><article><p>"
           + "A public story. " * 30 + "</p></article></body></html>")


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("::1", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("fd12:3456::1", "private"),
    ("169.254.10.10", "link-local"),
    ("fe80::1", "link-local"),
    ("224.0.0.251", "multicast"),
    ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("240.0.0.1", "reserved"),
    ("100.64.0.1", "not globally routable"),  # carrier-grade NAT
    ("::ffff:10.0.0.1", "private"),  # IPv4-mapped IPv6 reaches the IPv4 address
])
def test_non_public_addresses_are_refused_by_default(address: str, kind: str) -> None:
    reason = AddressPolicy().refusal(address)
    assert reason is not None and f"a {kind} address" in reason
    assert "--allow-private-network" in reason
    assert AddressPolicy(allow_private=True).refusal(address) is None


@pytest.mark.parametrize("address", ["93.184.215.14", "2a00:1450:4001:82b::200e", "8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert AddressPolicy().refusal(address) is None


@pytest.mark.parametrize("address", ["169.254.169.254", "fd00:ec2::254", "100.100.100.200",
                                     "::ffff:169.254.169.254"])
def test_cloud_metadata_is_refused_whatever_is_allowed(address: str) -> None:
    policy = AddressPolicy(allow_private=True, allowed=parse_networks("0.0.0.0/0,::/0"))
    assert "cloud metadata" in (policy.refusal(address) or "")


@pytest.mark.parametrize("address", [
    "169.254.170.2", "::ffff:169.254.170.2",  # AWS ECS task credentials
    "192.0.0.192", "::ffff:192.0.0.192",  # Oracle Cloud
    "64:ff9b::a9fe:a9fe", "64:ff9b::169.254.170.2", "64:ff9b::c000:c0",  # NAT64 (RFC 6052)
    "64:ff9b:1::a9fe:a9fe",  # local-use NAT64 (RFC 8215)
    "::169.254.169.254",  # IPv4-compatible
])
def test_every_form_of_a_metadata_address_is_refused_even_when_all_is_allowed(
        address: str) -> None:
    policy = AddressPolicy(allow_private=True, allowed=parse_networks("0.0.0.0/0,::/0"))
    assert "cloud metadata address (always refused)" in (policy.refusal(address) or "")
    assert "cloud metadata" in (AddressPolicy().refusal(address) or "")


def test_nat64_of_a_public_address_is_public() -> None:
    assert AddressPolicy().refusal("64:ff9b::808:808") is None  # 8.8.8.8


def test_allowed_networks_let_through_only_themselves() -> None:
    policy = AddressPolicy(allowed=parse_networks(" 127.0.0.1/32 , 10.5.0.0/16,"))
    assert policy.refusal("127.0.0.1") is None
    assert policy.refusal("10.5.200.1") is None
    assert policy.refusal("127.0.0.2") is not None
    assert policy.refusal("10.6.0.1") is not None
    assert policy.refusal("::1") is not None


def test_a_bad_allowed_network_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="DOZOR_ALLOWED_NETWORKS: '10.0.0.0/33'"):
        parse_networks("127.0.0.1/32,10.0.0.0/33")


def _guard(**settings: object) -> NetworkGuardMiddleware:
    return NetworkGuardMiddleware.from_crawler(get_crawler(Spider, settings))


def test_the_address_a_response_came_from_is_checked_after_connecting() -> None:
    """A host that resolved to a public address at check time but answered from a private
    one (DNS rebinding) is refused once the connection shows where it went."""
    guard = _guard(DOZOR_ALLOWED_NETWORKS="127.0.0.1/32")
    request = Request("http://news.example/story.html")
    rebound = HtmlResponse(request.url, body=b"<html></html>", request=request,
                           ip_address=ipaddress.ip_address("10.0.0.5"))
    with pytest.raises(RefusedRequest, match="response came from 10.0.0.5"):
        guard.process_response(request, rebound)
    local = HtmlResponse(request.url, body=b"<html></html>", request=request,
                         ip_address=ipaddress.ip_address("127.0.0.1"))
    assert guard.process_response(request, local) is local
    assert guard.stats.get_value("dozor/refused") == 1


def test_literal_addresses_and_schemes_are_checked_before_connecting() -> None:
    guard = _guard(DOZOR_ALLOW_PRIVATE_NETWORK=True)
    for url, reason in [("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
                        ("http://[fd00:ec2::254]/latest/", "cloud metadata"),
                        ("file:///etc/passwd", "file: URLs are not fetched")]:
        with pytest.raises(RefusedRequest, match=reason):
            asyncio.run(guard.process_request(Request(url)))
    assert asyncio.run(guard.process_request(Request("http://10.0.0.1/"))) is None


def _site(server: NewsServer, tmp_path: Path) -> Path:
    base = server.base
    server.add("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain")
    server.add("/news/fine.html", ARTICLE)
    server.redirect("/go/loopback", f"http://127.0.0.2:{server.port}/news/fine.html", 302)
    server.redirect("/go/private", "http://10.255.255.1/admin", 302)
    server.redirect("/go/metadata", "http://169.254.169.254/latest/meta-data/", 302)
    server.redirect("/go/file", "file:///etc/passwd", 302)
    links = ["/news/fine.html", "/go/loopback", "/go/private", "/go/metadata", "/go/file"]
    items = "".join(f"<item><title>{p}</title><link>{base}{p}</link></item>" for p in links)
    server.add("/rss.xml", f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
               f"{items}</channel></rss>", "application/rss+xml")
    # the redirect targets are in the source's scope: the guard is what must refuse them
    return write_sources(tmp_path / "sources.yaml", [{
        "name": "local", "feeds": [server.url("/rss.xml")],
        "allowed_domains": ["127.0.0.2", "10.255.255.1", "169.254.169.254"]}])


def test_loopback_is_refused_without_an_allowance(news_server: NewsServer,
                                                  tmp_path: Path) -> None:
    _site(news_server, tmp_path)
    # by address, and by a name that resolves to it (the guard resolves before connecting)
    sources = write_sources(tmp_path / "sources.yaml", [{"name": "local", "feeds": [
        news_server.url("/rss.xml"), f"http://localhost:{news_server.port}/rss.xml"]}])
    out = launch("crawl", tmp_path, "--sources", str(sources), "--db", str(tmp_path / "s.db"))
    assert news_server.requests == []  # not even robots.txt: refused before connecting
    assert out.pages == []
    assert out.figures["refused"] >= 2 and out.figures["requests"] == 0
    assert "127.0.0.1 is a loopback address" in out.log
    assert "localhost resolves to 127.0.0.1; 127.0.0.1 is a loopback address" in out.log


def test_allowed_network_lets_the_site_through_but_not_redirects_elsewhere(
        news_server: NewsServer, tmp_path: Path) -> None:
    sources = _site(news_server, tmp_path)
    out = launch("crawl", tmp_path, "--sources", str(sources), "--db", str(tmp_path / "s.db"),
                 env={"DOZOR_ALLOWED_NETWORKS": "127.0.0.1/32"})
    assert [p["final_url"] for p in out.pages] == [news_server.url("/news/fine.html")]
    for hop in ("/go/loopback", "/go/private", "/go/metadata", "/go/file"):
        assert news_server.fetched(hop) == 1, hop  # the redirect was fetched, its target not
    assert "127.0.0.2 is a loopback address" in out.log
    assert "10.255.255.1 is a private address" in out.log
    assert "169.254.169.254 is a cloud metadata address" in out.log
    # each refused host's robots.txt and the page itself; the file: redirect is not followed
    assert out.figures["refused"] == 6
    assert out.figures["pages"] == 1


def test_allow_private_network_still_refuses_cloud_metadata(news_server: NewsServer,
                                                            tmp_path: Path) -> None:
    sources = _site(news_server, tmp_path)
    # 10.255.255.1 would be allowed and tried (and hang until the timeout): leave it out
    news_server.redirect("/go/private", "/news/fine.html", 302)
    out = launch("crawl", tmp_path, "--sources", str(sources), "--db", str(tmp_path / "s.db"),
                 "--allow-private-network")
    assert news_server.fetched("/news/fine.html") >= 1
    assert [p["final_url"] for p in out.pages] == [news_server.url("/news/fine.html")]
    assert "169.254.169.254 is a cloud metadata address (always refused)" in out.log
    assert out.figures["refused"] == 2  # /robots.txt and the page on 169.254.169.254
