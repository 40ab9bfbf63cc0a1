"""`dozor serve`: the local analyst UI in a web browser."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from dozor.cli.app import (
    DbOption,
    EsOption,
    app,
    config_of,
    console,
    err_console,
    fail,
    store_from,
)
from dozor.cli.options import AlertsOption
from dozor.cli.rulefiles import alert_rules
from pipelines.config import paths


@app.command()
def serve(
    ctx: typer.Context,
    db: DbOption = None,
    es: EsOption = None,
    host: Annotated[str, typer.Option(
        "--host", help="Address to listen on. Keep the loopback default unless others must "
        "reach the UI: it has no login.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(
        "--port", min=0, max=65535, help="Port to listen on (0: any free port).")] = 8080,
    alerts: AlertsOption = None,
) -> None:
    """Search and read the index in a web browser: a local, read-only UI (Ctrl-C stops it)."""
    # start-up cost: the UI (and the extraction it shows revisions with) loads only to serve
    from dozor.ui.server import access_log, is_loopback, make_ui_server, url_of

    config = config_of(ctx)
    languages = config.settings.languages
    alerts = alerts or paths.default_alerts()
    # a bad file (or a rule naming a source DOZOR_SOURCES or the shipped sources file
    # lacks) fails now, not on a feed reader's first request
    alert_rules(alerts, None)
    if not is_loopback(host):
        err_console.print(
            f"[bold yellow]warning:[/] --host {host} is not a loopback address: anyone who "
            "can reach this machine on that address can read the whole index (the UI has "
            "no login).", highlight=False, soft_wrap=True)
    with store_from(config, db, es, read_only=True) as store:
        try:
            server = make_ui_server(store, host, port, languages, alerts,
                                    labeller=lambda: store_from(config, db, es),
                                    warc_dir=config.paths.warc)
        except OSError as exc:
            raise fail(f"cannot listen on {host} port {port}: {exc.strerror or exc}") from None
        # the access log goes to stderr, one line per request (as JSON with --log-format)
        if not access_log.handlers:
            access_log.addHandler(logging.StreamHandler(sys.stderr))
        access_log.setLevel(logging.INFO)
        access_log.propagate = False
        with server:
            console.print(f"Dozor UI at {url_of(server)} (read-only; Ctrl-C stops it)",
                          highlight=False, soft_wrap=True)
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                pass
