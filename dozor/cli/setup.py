"""`dozor setup`: Elasticsearch templates, ILM, alias and percolator index; Kibana objects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from dozor.cli.app import EsOption, app, config_of, console, fail
from index_config import DEFAULT_PREFIX, IndexNames

if TYPE_CHECKING:
    from index_config.install import Change

ANALYZER_CHOICES = {"auto": None, "plugin": True, "fallback": False}


@app.command("setup")
def setup(
    ctx: typer.Context,
    es: EsOption = None,
    kibana: Annotated[
        str | None,
        typer.Option("--kibana", help="Kibana URL (default: $KIBANA_URL); imports the "
                                      "data view, saved searches and dashboard."),
    ] = None,
    prefix: Annotated[
        str, typer.Option(help="Prefix of every index, template and policy name.")
    ] = DEFAULT_PREFIX,
    ukrainian: Annotated[
        str,
        typer.Option("--ukrainian-analyzer",
                     help="auto: the analysis-ukrainian plugin when every node has it, "
                          "else the fallback; plugin | fallback force one."),
    ] = "auto",
) -> None:
    """Set Elasticsearch (and Kibana) up for Dozor; safe to run again: it reports what
    it created or updated and leaves the rest alone. Credentials come from
    ELASTIC_API_KEY or ELASTIC_USERNAME/ELASTIC_PASSWORD, a private CA from
    ELASTIC_CA_CERTS (Kibana: KIBANA_CA_CERTS, else the same)."""
    # the Elasticsearch client loads only for this command: every other one starts
    # without it on SQLite
    from elasticsearch import ApiError, TransportError

    from index_config.install import SetupError, import_kibana, install_elasticsearch
    from pipelines.store.elastic import Credentials, connect, describe, safe_url

    if ukrainian not in ANALYZER_CHOICES:
        raise fail(f"--ukrainian-analyzer takes auto, plugin or fallback, not {ukrainian!r}")
    config = config_of(ctx)
    kibana = kibana or config.get("KIBANA_URL")
    names = IndexNames(prefix)
    credentials = Credentials.from_environ(config.env)
    es = es or config.get("ELASTICSEARCH_URL")
    client = connect(es, credentials=credentials)
    try:
        changes = install_elasticsearch(client, names, ANALYZER_CHOICES[ukrainian])
    except (ApiError, TransportError) as exc:
        where = safe_url(es or "")
        raise fail(f"cannot set up Elasticsearch at {where}: {describe(exc)}") from None
    finally:
        client.close()
    if kibana:
        try:
            changes.append(import_kibana(
                kibana, names, headers=credentials.http_headers(),
                ca_certs=config.get("KIBANA_CA_CERTS") or credentials.ca_certs,
            ))
        except SetupError as exc:
            _report(changes)
            raise fail(str(exc)) from None
    _report(changes)
    if not kibana:
        console.print("Kibana: skipped (give --kibana URL or set KIBANA_URL to import the "
                      "data view, saved searches and dashboard).")


def _report(changes: list[Change]) -> None:
    table = Table(title="dozor setup", show_lines=False)
    for column in ("what", "name", "action", "detail"):
        table.add_column(column)
    styles = {"unchanged": "dim", "created": "green", "updated": "yellow",
              "recreated": "yellow", "imported": "green"}
    for change in changes:
        style = styles.get(change.action, "")
        table.add_row(change.kind, change.name, f"[{style}]{change.action}[/]" if style
                      else change.action, change.detail)
    console.print(table)
    changed = sum(1 for c in changes if c.action != "unchanged")
    console.print(f"{changed} changed, {len(changes) - changed} unchanged.")
