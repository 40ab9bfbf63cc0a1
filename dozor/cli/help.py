"""`dozor help query`: the query language, with examples in Russian, Ukrainian and
English (search, export --query, the UI's search box, topic and alert rules)."""

from __future__ import annotations

from typing import Annotated

import typer

from dozor.cli.app import app, fail

QUERY_HELP = """\
Dozor queries (dozor search, dozor export --query, the UI, topic and alert rules)

Words        Every inflected form: колония finds колонии, колонію finds колонія,
             prisoner finds prisoners. Russian and Ukrainian spellings are different
             words: колония / колонія. ё and е are the same letter.
AND OR NOT   Also && || ! and -word. Words side by side are joined by AND.
             Lower-case and/or/not are refused: write AND, or quote "and".
"phrase"     Words in this order: "частная военная компания"; "a b"~2 allows two
             words between or around them.
Wildcards    * and ?: вербов* (вербовка, вербовать), mobiliz* (mobilization).
( )          Grouping: (ЧВК OR ПВК) AND Вагнер.

Fields
  title:word        only in the title (original or English): title:Вагнер
  text:word         only in the text (original or English): text:"колонія"
  lang:ru|uk|en|other                    source:meduza   (wildcards: source:kyiv*)
  relevant:true|false   possible:true|false   translation_status:done|pending|failed|skipped
  cluster_id:ID     the copies of one story
  published:RANGE   fetched:RANGE   dates in UTC:
      published:2026-01-31                    that whole day
      published:[2026-01-01 TO 2026-02-01]    both days included
      published:{2026-01-01 TO 2026-02-01}    both days excluded
      published:>now-7d   fetched:>=now-12h   (m minutes, h hours, d days, w weeks)
      published:<2026-01-01   published:[2026-01-01 TO *]
      published:>="2026-01-31T08:00:00Z"      a time: quote it

Examples
  ru  колония AND (Вагнер OR "ЧВК Вагнер") AND published:>now-7d
  ru  title:вербовка AND lang:ru NOT source:meduza
  uk  колонія AND (вербування OR вербувальник*) AND published:[2026-01-01 TO 2026-01-31]
  uk  text:"ув'язнені" AND relevant:true
  en  prison* AND (recruit* OR "private military company") AND fetched:>now-1d
  en  title:Wagner AND lang:en AND possible:true

Not supported: boosts (^), fuzzy terms (word~), regular expressions, ranges on text.
"""

TOPICS = {"query": QUERY_HELP}


@app.command("help")
def help_topic(
    topic: Annotated[str, typer.Argument(help=f"One of: {', '.join(TOPICS)}.")],
) -> None:
    """Help on a topic: dozor help query (the full query syntax, with examples)."""
    if topic not in TOPICS:
        raise fail(f"no help on {topic!r} (topics: {', '.join(TOPICS)})")
    typer.echo(TOPICS[topic], nl=False)
