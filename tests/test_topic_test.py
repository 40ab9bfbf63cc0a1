"""`dozor topic test` on a real SQLite file: what a topic profile would change, never
changing it, with precision and recall against the analysts' labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dozor.cli import app
from pipelines.config.config import DEFAULTS_DIR
from pipelines.store.sqlite import SQLiteStore
from tests.fakes.elasticsearch import FakeElasticsearch, fast_store
from tests.support.alerts import OFF_TOPIC, RELEVANT, store_articles
from tests.support.articles import corpus
from tests.support.httpserver import NewsServer
from tests.test_archive import LOCAL, _articles, _dozor, _site

runner = CliRunner()


def _strict_topic(tmp_path: Path) -> Path:
    """The shipped topic with a threshold no article reaches."""
    spec = yaml.safe_load((DEFAULTS_DIR / "topic.yaml").read_text(encoding="utf-8"))
    spec["threshold"] = 1000
    spec.pop("possible_threshold", None)
    path = tmp_path / "strict.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return path


def test_topic_test_counts_changes_samples_and_scores_labels(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "dozor.db"
    docs = corpus()
    with SQLiteStore(db) as store:
        store_articles(store, list(docs.values()))
        store.set_label(docs["ru_wire"].id, True)
        store.set_label(docs["uk"].id, True)
        store.set_label(docs["ru_composer"].id, False)
        before = {a.id: (a.relevant, a.possible, a.score) for a in store.iter_articles()}
    stored_relevant = sum(r for r, _, _ in before.values())
    assert stored_relevant == len(RELEVANT)

    strict = _strict_topic(tmp_path)
    result = runner.invoke(app, ["topic", "test", "--topic", str(strict), "--db", str(db),
                                 "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["articles"] == len(docs) and report["relevant"] == 0
    assert report["stops_relevant"] == stored_relevant and report["becomes_relevant"] == 0
    sample = report["samples"]["stops_relevant"][0]
    assert sample["id"] in {docs[n].id for n in RELEVANT} and sample["rules"]
    # the two labelled relevant are missed, the one labelled off-topic rightly left out
    assert report["labelled"] == 3 and report["recall"] == 0.0
    assert report["precision"] is None  # nothing predicted relevant

    # DOZOR_TOPIC names the profile when --topic does not; the text report says the same
    monkeypatch.setenv("DOZOR_TOPIC", str(strict))
    result = runner.invoke(app, ["topic", "test", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert f"{stored_relevant} stops relevant" in result.output
    assert "Against 3 analysts' label(s): precision None, recall 0.0." in result.output
    with SQLiteStore(db) as store:  # nothing was changed
        assert {a.id: (a.relevant, a.possible, a.score)
                for a in store.iter_articles()} == before
    assert all(docs[n].id in before for n in OFF_TOPIC)


def test_topic_test_with_the_shipped_topic_and_a_bad_file(tmp_path: Path) -> None:
    db = tmp_path / "dozor.db"
    with SQLiteStore(db) as store:
        store_articles(store, list(corpus().values()))
    result = runner.invoke(app, ["topic", "test", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["topic"] == "prisoner-recruitment" and report["labelled"] == 0
    assert report["precision"] is None and report["recall"] is None
    assert report["relevant"] + report["stops_relevant"] - report["becomes_relevant"] == \
        len(RELEVANT)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nrules: [{name: a, query: 'колония AND (', weight: 1}]\n")
    result = runner.invoke(app, ["topic", "test", "--topic", str(bad), "--db", str(db)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert str(bad) in result.output


def test_run_and_reprocess_take_topic_as_dozor_topic(news_server: NewsServer,
                                                     tmp_path: Path) -> None:
    """`--topic FILE` on run and reprocess, and DOZOR_TOPIC, decide what is relevant."""
    sources, strict = _site(news_server, tmp_path), _strict_topic(tmp_path)
    dbs = {name: tmp_path / f"{name}.db" for name in ("strict", "shipped", "env")}
    run = _dozor("run", "--sources", str(sources), "--topic", str(strict), "--db",
                 str(dbs["strict"]), tmp_path=tmp_path, env=LOCAL)
    assert run.returncode == 0, run.stderr[-3000:]
    again = _dozor("reprocess", "--sources", str(sources), "--db", str(dbs["shipped"]),
                   tmp_path=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    env = _dozor("reprocess", "--sources", str(sources), "--db", str(dbs["env"]),
                 tmp_path=tmp_path, env={"DOZOR_TOPIC": str(strict)})
    assert env.returncode == 0, env.stderr[-3000:]
    relevant = {name: sum(a[6] for a in _articles(db).values()) for name, db in dbs.items()}
    assert len(_articles(dbs["strict"])) == 3
    assert relevant["shipped"] > 0 and relevant["strict"] == relevant["env"] == 0


def test_dozor_sources_names_the_sources_of_run(news_server: NewsServer,
                                                tmp_path: Path) -> None:
    """DOZOR_SOURCES stands for --sources, as DOZOR_TOPIC for --topic."""
    sources, db = _site(news_server, tmp_path), tmp_path / "env.db"
    run = _dozor("run", "--db", str(db), tmp_path=tmp_path,
                 env={**LOCAL, "DOZOR_SOURCES": str(sources)})
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(_articles(db)) == 3


def test_topic_test_on_elasticsearch(tmp_path: Path) -> None:
    docs = corpus()
    with FakeElasticsearch() as fake:
        with fast_store(fake.url, tmp_path / "spool") as store:
            store_articles(store, list(docs.values()))
            store.set_label(docs["ru_wire"].id, True)
            store.set_label(docs["ru_composer"].id, False)
        result = runner.invoke(app, ["topic", "test", "--topic", str(_strict_topic(tmp_path)),
                                     "--es", fake.url, "--json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["articles"] == len(docs) and report["stops_relevant"] == len(RELEVANT)
        assert report["labelled"] == 2 and report["recall"] == 0.0
        assert fake.problems == []
