"""Bind the analyst UI to an address: a threaded `wsgiref` server."""

from __future__ import annotations

import ipaddress
import logging
import socket
import sys
from collections.abc import Sequence
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from dozor.ui.app import AnalystUI
from pipelines.store import ArticlesReader

log = logging.getLogger(__name__)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a browser's idle keep-alive never holds up Ctrl-C

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a browser that closes a tab mid-response is not an error worth a traceback
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


def is_loopback(host: str) -> bool:
    """Whether every address `host` stands for is on this machine only."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError):
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def url_of(server: WSGIServer) -> str:
    host, port = server.server_address[:2]
    return f"http://[{host}]:{port}/" if ":" in str(host) else f"http://{host}:{port}/"


def make_ui_server(store: ArticlesReader, host: str, port: int,
                   languages: Sequence[str]) -> WSGIServer:
    """A server for the UI over `store`, bound (port 0: any free port) but not yet
    serving; raises OSError when the address cannot be bound."""
    server_class = _Server6 if ":" in host else _Server
    return make_server(host, port, AnalystUI(store, languages), server_class=server_class,
                       handler_class=_Handler)
