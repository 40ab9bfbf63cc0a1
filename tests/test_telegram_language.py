"""A channel's usual language, learned from the posts on its page, is the prior of a short
post whose letters do not tell Russian from Ukrainian; clear letters still win."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dozor.demo.telegram import DemoPost, channel_pages
from pipelines.extract import extract
from pipelines.language import classify, detect
from pipelines.telegram import channel_language, parse_channel_page, post_page

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
LANGS = ("ru", "uk", "en")
AMBIGUOUS_UK = "Суд продовжив арешт правозахисника"  # no і/ї/є/ґ: langdetect says Macedonian
CLEAR_RU = "Это уже третье дело за неделю."
UK_POSTS = ["Їхні родини досі не отримали жодної відповіді.", "Знову обстріл. Є поранені.",
            "Окупанти викрали двох журналістів в Мелітополі"]


def _articles(texts: list[str]):
    posts = [DemoPost(i, NOW - timedelta(hours=10 - i), html=text)
             for i, text in enumerate(texts, start=1)]
    page = parse_channel_page(channel_pages("uk_chan", "Канал", posts)["/s/uk_chan"], "uk_chan")
    usual = channel_language(page)
    raws = [post_page(p, "src", "http://127.0.0.1:1/s/uk_chan", NOW, None, channel_lang=usual)
            for p in page.posts]
    return {a.text: a for a in detect(extract(raws), LANGS)}


def test_short_ambiguous_post_takes_its_ukrainian_channels_language() -> None:
    assert classify(AMBIGUOUS_UK, LANGS)[0] == "other"  # without the channel: no answer
    articles = _articles([*UK_POSTS, AMBIGUOUS_UK, CLEAR_RU])
    assert articles[AMBIGUOUS_UK].html_lang == "uk"
    assert articles[AMBIGUOUS_UK].lang == "uk"
    assert articles[CLEAR_RU].lang == "ru"  # clear Russian letters beat the channel
    assert all(articles[t].lang == "uk" for t in UK_POSTS)


def test_no_usual_language_without_clear_letters_or_when_mixed() -> None:
    assert _articles([AMBIGUOUS_UK, "Суд продовжив арешт активіста"])[AMBIGUOUS_UK].lang \
        == "other"  # one і is too little to learn a language from
    assert channel_language(parse_channel_page(channel_pages("mix_chan", "M", [
        DemoPost(1, NOW, html=UK_POSTS[0]), DemoPost(2, NOW, html="Это объявили вчера. Ещё ёж.")
    ])["/s/mix_chan"], "mix_chan")) is None


def test_prior_never_outvotes_a_long_clear_text() -> None:
    long_ru = "Суд вынес приговор бывшему бойцу. " * 10
    assert classify(long_ru, LANGS, prior="uk")[0] == "ru"
    english = "The court extended the activist's arrest"
    assert classify(english, LANGS, prior="uk")[0] == "en"


def test_window_rule_on_one_and_two_line_posts(tmp_path) -> None:
    import json

    from pipelines.relevance import classify as judge
    from pipelines.relevance import load_topic
    from pipelines.terms.normalisation import analyse

    topic = tmp_path / "topic.yaml"
    topic.write_text(json.dumps({"name": "t", "languages": list(LANGS), "threshold": 1.0,
                                 "rules": [{"name": "near", "weight": 1.0, "window": 20,
                                            "query": "(заключенные OR ув'язнені) AND "
                                                     "фронт"}]},
                                ensure_ascii=False), encoding="utf-8")
    profile = load_topic(topic)
    ru_one = "Заключённых из колонии отправили на фронт."
    uk_two = "Ув'язнених вивезли з колонії.\nЇх відправили на фронт."
    off = "Погода стояла тёплая, на фронте затишье."
    articles = _articles([ru_one, uk_two, off])
    judged = {a.text: a for a in judge(analyse(list(articles.values())), profile)}
    assert (judged[ru_one].lang, judged[uk_two].lang) == ("ru", "uk")
    assert judged[ru_one].relevant and judged[uk_two].relevant
    assert not judged[off].relevant
