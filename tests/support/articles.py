"""News-like articles for store, dedup and search tests, written for this project.

A Russian and an English wire story each have a syndicated copy (own headline, a
dateline or boilerplate line, a few words edited) and a different report on the same
subject that must stay a separate story. Off-topic look-alikes share words with the
topic (Wagner the composer, "вербовка" of IT staff, an unrelated prison story).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipelines.article import Article
from pipelines.query import parse_query
from pipelines.store import ArticlesReader, SearchHit
from pipelines.terms.normalisation import analyse

FETCHED = datetime(2026, 5, 12, 9, 30, tzinfo=UTC)

RU_WIRE_TITLE = "Осуждённых из колонии в Копейске отправили на фронт в составе «Шторм-Z»"
RU_WIRE = (
    "Не менее сорока заключённых исправительной колонии № 6 в Копейске Челябинской "
    "области подписали контракты с Министерством обороны и были отправлены в зону боевых "
    "действий в составе штурмовых отрядов «Шторм-Z». Об этом рассказали родственники "
    "осуждённых и правозащитники, которые следят за ситуацией в уральских колониях.\n"
    "По их словам, в начале месяца в колонию приезжали представители военкомата и офицеры "
    "в форме без знаков различия. Они собрали заключённых в клубе и пообещали помилование "
    "через полгода службы, денежное довольствие в двести тысяч рублей в месяц и снятие "
    "судимости. Тем, кто сомневался, напоминали о плохих условиях содержания и о том, что "
    "срок всё равно придётся отбывать до конца.\n"
    "Правозащитники отмечают, что среди завербованных есть люди с тяжёлыми хроническими "
    "заболеваниями, которых по закону не должны были допускать к службе. Федеральная служба "
    "исполнения наказаний на запрос редакции не ответила. В Министерстве обороны ситуацию "
    "не комментируют."
)
RU_COPY_TITLE = "Из копейской колонии на войну завербовали не менее 40 заключённых"
RU_COPY = (
    "ЧЕЛЯБИНСК, 12 мая. Не менее 40 заключённых исправительной колонии № 6 в Копейске "
    "Челябинской области подписали контракты с Министерством обороны и были отправлены в "
    "зону боевых действий в составе штурмовых отрядов «Шторм-Z». Об этом сообщили "
    "родственники осуждённых и правозащитники, которые следят за ситуацией в уральских "
    "колониях.\n"
    "По их словам, в начале этого месяца в колонию приезжали представители военкомата и "
    "офицеры в форме без знаков различия. Они собрали заключённых в клубе и пообещали "
    "помилование через полгода службы, денежное довольствие в двести тысяч рублей в месяц "
    "и снятие судимости. Тем, кто сомневался, напоминали о плохих условиях содержания и о "
    "том, что срок всё равно придётся отбывать до конца.\n"
    "Правозащитники отмечают, что среди завербованных есть люди с тяжёлыми хроническими "
    "заболеваниями, которых по закону не должны были допускать к службе. ФСИН на запрос "
    "редакции не ответила. В Министерстве обороны ситуацию не комментируют.\n"
    "Подписывайтесь на наш канал в Telegram, чтобы первыми узнавать главные новости региона."
)
RU_OTHER_TITLE = "Вернувшиеся с войны бывшие заключённые снова оказались под судом"
RU_OTHER = (
    "В Свердловской области за последние полгода возбуждено не менее двенадцати уголовных "
    "дел против бывших заключённых, которые вернулись с фронта после помилования. Среди "
    "обвинений есть кражи, разбой и два убийства. Большинство фигурантов до войны отбывали "
    "наказание в местных колониях и были завербованы сначала «ЧВК Вагнера», а затем "
    "Министерством обороны.\n"
    "Адвокаты потерпевших говорят, что указы о помиловании засекречены, поэтому семьи жертв "
    "узнают о досрочном освобождении осуждённого лишь случайно. Местные жители жалуются, что "
    "никто не предупреждает их о возвращении людей, осуждённых за тяжкие преступления.\n"
    "Областная прокуратура подтвердила, что следит за такими делами, но общую статистику "
    "раскрывать отказалась. В администрации губернатора ситуацию не комментируют."
)
RU_WAGNER_COMPOSER_TITLE = "В Мариинском театре покажут «Кольцо нибелунга» Вагнера"
RU_WAGNER_COMPOSER = (
    "Мариинский театр завершает сезон полным циклом «Кольцо нибелунга» Рихарда Вагнера. "
    "Четыре оперы тетралогии прозвучат в течение одной недели, дирижирует художественный "
    "руководитель театра. Билеты на все спектакли цикла были распроданы за несколько часов."
)
RU_IT_TITLE = "Вербовка айтишников: банки переманивают разработчиков у стартапов"
RU_IT = (
    "Крупные банки усилили вербовку программистов: рекрутеры предлагают разработчикам "
    "из стартапов зарплаты на треть выше рынка, ипотеку по льготной ставке и гибкий график. "
    "Эксперты рынка труда считают, что дефицит опытных инженеров сохранится ещё несколько лет."
)

UK_TITLE = "Росія вербує ув'язнених з колоній до загонів «Шторм-Z»"
UK_TEXT = (
    "Російське командування продовжує поповнювати штурмові підрозділи засудженими з "
    "виправних колоній. За даними розвідки, лише за останній місяць до загонів «Шторм-Z» "
    "потрапили сотні ув'язнених, яким обіцяють помилування після пів року служби. "
    "Правозахисники наголошують, що більшість завербованих гинуть у перших же боях."
)

EN_WIRE_TITLE = (
    "Russia recruits prisoners from penal colonies to fight in Ukraine, rights groups say"
)
EN_WIRE = (
    "Russia's defence ministry has resumed large-scale recruitment in penal colonies, "
    "offering inmates pardons and monthly pay in exchange for six months at the front, "
    "according to rights groups that track conditions in Russian prisons.\n"
    "Recruiters visited at least a dozen colonies in the Sverdlovsk, Chelyabinsk and Perm "
    "regions last month, relatives of prisoners said. Inmates who signed contracts were "
    "sent to assault units known as Storm-Z, which suffer heavy losses in frontline attacks "
    "around Bakhmut and Avdiivka.\n"
    "The practice began in 2022, when the Wagner mercenary group led by Yevgeny Prigozhin "
    "toured prisons promising freedom to convicts who survived half a year of fighting. "
    "After Wagner's failed mutiny the defence ministry took over the scheme. The prison "
    "service did not respond to a request for comment."
)
EN_COPY_TITLE = "Rights groups: Moscow again signing up convicts for the front"
EN_COPY = (
    "MOSCOW (Reuters) - Russia's defence ministry has resumed large-scale recruitment in "
    "penal colonies, offering inmates pardons and monthly pay in exchange for six months at "
    "the front, according to rights groups that monitor conditions in Russian prisons.\n"
    "Recruiters visited at least a dozen colonies in the Sverdlovsk, Chelyabinsk and Perm "
    "regions last month, relatives of prisoners told Reuters. Inmates who signed contracts "
    "were sent to assault units known as Storm-Z, which suffer heavy losses in frontline "
    "attacks around Bakhmut and Avdiivka.\n"
    "The practice began in 2022, when the Wagner mercenary group led by Yevgeny Prigozhin "
    "toured prisons promising freedom to convicts who survived half a year of fighting. "
    "After Wagner's failed mutiny the defence ministry took over the scheme. The prison "
    "service did not respond to a request for comment.\n"
    "(Reporting by Reuters staff; Editing by Peter Graff)"
)
EN_OTHER_TITLE = "Families of Russian convicts killed in Ukraine say bodies never came home"
EN_OTHER = (
    "Relatives of Russian prisoners who were recruited to fight in Ukraine say they have "
    "waited months for news of men reported missing, and that the authorities refuse to "
    "confirm deaths or return bodies from the front.\n"
    "One woman from the Perm region said her brother left his penal colony in a convoy of "
    "buses last autumn after signing a contract, called once from a training camp, and "
    "then disappeared. Letters to the defence ministry produced form replies.\n"
    "Lawyers helping such families say the pardon decrees remain secret, so relatives "
    "cannot prove that a man was released from prison at all, let alone claim the "
    "compensation promised to soldiers' families."
)
EN_PRISON_REFORM_TITLE = "Norway's open prisons draw visitors studying low reoffending rates"
EN_PRISON_REFORM = (
    "Delegations from several European countries visited Norwegian open prisons this "
    "year to study why so few inmates reoffend after release. Officials credit small "
    "units, education and job training inside the prison walls."
)


def article(
    url: str,
    title: str,
    text: str,
    *,
    lang: str,
    source: str,
    published: datetime | None = None,
    **fields: object,
) -> Article:
    """An article as the stages leave it before dedup, with its normalised terms."""
    doc = Article(
        url=url,
        canonical_url=url,
        source=source,
        fetched_at=FETCHED,
        title=title,
        text=text,
        lang=lang,
        published_at=published or FETCHED - timedelta(hours=3),
        published_from="page",
        **fields,  # type: ignore[arg-type]
    )
    return analyse([doc])[0]


def corpus() -> dict[str, Article]:
    """One of each kind, by a short name."""
    return {
        "ru_wire": article(
            "https://ria.example/society/kopeisk-storm-z.html", RU_WIRE_TITLE, RU_WIRE,
            lang="ru", source="ria", relevant=True, score=0.9,
            matched_terms=["колония", "Шторм-Z"],
            title_en="Convicts from a colony in Kopeysk sent to the front with Storm-Z",
            text_en="At least forty prisoners of penal colony No. 6 in Kopeysk signed "
            "contracts with the Defence Ministry and were sent to the combat zone.",
            translation_status="done",
        ),
        "ru_copy": article(
            "https://ural-news.example/2026/05/12/kopeisk", RU_COPY_TITLE, RU_COPY,
            lang="ru", source="ural-news", relevant=True, score=0.9,
        ),
        "ru_other": article(
            "https://meduza.example/news/returning-convicts", RU_OTHER_TITLE, RU_OTHER,
            lang="ru", source="meduza", relevant=True, score=0.8,
            published=FETCHED - timedelta(days=2),
        ),
        "ru_composer": article(
            "https://culture.example/mariinsky-ring", RU_WAGNER_COMPOSER_TITLE,
            RU_WAGNER_COMPOSER, lang="ru", source="culture",
        ),
        "ru_it": article(
            "https://business.example/it-hiring", RU_IT_TITLE, RU_IT, lang="ru",
            source="business",
        ),
        "uk": article(
            "https://pravda.example/uk/storm-z", UK_TITLE, UK_TEXT, lang="uk",
            source="pravda-uk", relevant=True, score=0.85, translation_status="pending",
        ),
        "en_wire": article(
            "https://reuters.example/world/russia-prison-recruitment", EN_WIRE_TITLE, EN_WIRE,
            lang="en", source="reuters", relevant=True, score=0.95,
        ),
        "en_copy": article(
            "https://news-aggregator.example/reuters/prisoners", EN_COPY_TITLE, EN_COPY,
            lang="en", source="aggregator", relevant=True, score=0.95,
        ),
        "en_other": article(
            "https://guardian.example/world/convicts-bodies", EN_OTHER_TITLE, EN_OTHER,
            lang="en", source="guardian", relevant=True, score=0.9,
        ),
        "en_prison_reform": article(
            "https://bbc.example/news/norway-prisons", EN_PRISON_REFORM_TITLE,
            EN_PRISON_REFORM, lang="en", source="bbc",
        ),
    }


def search(store: ArticlesReader, text: str, lang: str | None = None,
           **kw: int) -> list[SearchHit]:
    """`store.search` for a query as `dozor search` compiles it."""
    return store.search(parse_query(text, name="search").in_language(lang), **kw)


def check_search_pages(store: ArticlesReader) -> None:
    """Over the stored corpus: page 2 of a search starts where page 1 ended, for a
    ranked query and a filter-only one, and no page lies beyond the last hit."""
    def ids(q: str, **kw: int) -> list[str]:
        return [h.article.id for h in search(store, q, **kw)]

    for q in ("relevant:true", "колонии OR convicts"):
        ranking = ids(q, limit=50)
        assert len(ranking) >= 3
        assert ids(q, limit=2) + ids(q, limit=2, offset=2) == ranking[:4]
        assert ids(q, offset=len(ranking)) == []
