"""Serve the analyst UI with waitress (a maintained WSGI server), one access-log line
per request."""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from waitress import wasyncore
from waitress.server import create_server

from dozor.ui.app import AnalystUI, Labeller, UIStore

# one line per request, as web servers write them (common log format)
access_log = logging.getLogger("dozor.ui.access")

WSGIApp = Any
THREADS = 4


def with_access_log(app: WSGIApp) -> WSGIApp:
    """`app`, logging each request: client, time, request line, status and size."""
    def logged(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        seen: dict[str, str] = {}

        def start(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            seen["status"] = status.split(" ", 1)[0]
            seen["size"] = next((v for k, v in headers if k.lower() == "content-length"), "-")
            return start_response(status, headers, *exc)

        body = app(environ, start)
        query = environ.get("QUERY_STRING")
        target = environ.get("PATH_INFO", "/") + (f"?{query}" if query else "")
        access_log.info('%s - - [%s] "%s %s %s" %s %s', environ.get("REMOTE_ADDR", "-"),
                        time.strftime("%d/%b/%Y:%H:%M:%S %z"), environ.get("REQUEST_METHOD"),
                        target, environ.get("SERVER_PROTOCOL"), seen.get("status", "-"),
                        seen.get("size", "-"))
        return body
    return logged


class UIServer:
    """A bound waitress server: `serve_forever` until `shutdown` (from another thread)
    or Ctrl-C."""

    def __init__(self, app: WSGIApp, host: str, port: int) -> None:
        # the UI reads one store: a few threads answer a browser's parallel requests
        self._server = create_server(with_access_log(app), host=host, port=port,
                                     threads=THREADS, ident="dozor", expose_tracebacks=False)
        self.server_address = (self._server.effective_host, self._server.effective_port)
        self._stop, self._serving, self._stopped = (threading.Event(), threading.Event(),
                                                    threading.Event())

    def serve_forever(self) -> None:
        # waitress's own run() stops only on a signal; this loop also stops on shutdown()
        self._serving.set()
        try:
            while not self._stop.is_set():
                wasyncore.loop(timeout=0.2, map=self._server._map, use_poll=True, count=1)
        finally:
            self._server.task_dispatcher.shutdown()
            wasyncore.close_all(self._server._map)
            self._serving.clear()
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop serving (from another thread: waits for the loop to close its sockets)."""
        self._stop.set()
        if self._serving.is_set():
            self._stopped.wait(10)
        else:
            wasyncore.close_all(self._server._map)

    def __enter__(self) -> UIServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.shutdown()


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


def url_of(server: UIServer) -> str:
    host, port = server.server_address[:2]
    return f"http://[{host}]:{port}/" if ":" in str(host) else f"http://{host}:{port}/"


def make_ui_server(store: UIStore, host: str, port: int,
                   languages: Sequence[str], alerts: Path | None = None,
                   labeller: Labeller | None = None, warc_dir: Path | None = None
                   ) -> UIServer:
    """A server for the UI over `store`, bound (port 0: any free port) but not yet
    serving; raises OSError when the address cannot be bound. `alerts`: the rules file
    whose rules get Atom feeds; `warc_dir`: the WARC archive the archived copies are
    served from (none without it)."""
    return UIServer(AnalystUI(store, languages, alerts, labeller, warc_dir), host, port)
