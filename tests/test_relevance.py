"""Topic relevance: the profile format, the score, and the shipped profile on articles.

The articles below are short news items written for this project: on-topic coverage
of every kind the profile names (Defence Ministry contracts in a named colony, Wagner
and Prigozhin's prison tours, Storm-Z, pardons, returning convicts, "Project K",
Ukraine's mobilisation of convicts) and traps that share its words (Wagner the
composer, "вербовка" of IT staff or by intelligence services, prisons in unrelated
stories, prisoners of war, soldiers on trial, Second World War history, long reports
where the words are chapters apart). `terms` are query terms, as written in
dozor/defaults/topic.yaml, that must be among the article's matched terms.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import pytest

from pipelines.article import Article
from pipelines.config.paths import DEFAULTS_DIR
from pipelines.errors import ConfigError
from pipelines.relevance import TopicProfile, classify, load_topic
from pipelines.terms.normalisation import analyse
from tests.conftest import SHARED_PAGES


class Case(NamedTuple):
    id: str
    lang: str
    title: str
    text: str
    relevant: bool
    terms: tuple[str, ...] = ()


RU = [
    Case("ru-ik6-contracts", "ru",
         "Осуждённые ИК-6 подписали контракты с Минобороны",
         "Около сорока заключённых исправительной колонии № 6 в Копейске подписали "
         "контракты с Министерством обороны и уехали на фронт, рассказали родственники. "
         "По их словам, в колонию дважды приезжали офицеры из военкомата.",
         True, ("ИК", "Минобороны", '"на фронт"')),
    Case("ru-prigozhin-tour", "ru",
         "Пригожин объехал колонии Урала",
         "Основатель ЧВК «Вагнер» Евгений Пригожин лично выступал перед осуждёнными и "
         "обещал помилование через полгода службы. На видео из колонии он говорит, что "
         "назад дороги не будет.",
         True, ("Пригожин", "колония", "помилование")),
    Case("ru-storm-z", "ru",
         "Бойцы «Шторм Z» жалуются на потери",
         "Родственники бойцов отряда «Шторм Z», набранного из заключённых уральских "
         "колоний, записали обращение: по их словам, из ста человек роты в строю "
         "осталось двенадцать.",
         True, ("Шторм-Z", "заключенный")),
    Case("ru-pardon", "ru",
         "Указом президента помилованы ещё 52 человека",
         "Среди помилованных — бывшие осуждённые, воевавшие в зоне специальной военной "
         "операции. Указы о помиловании не публикуются.",
         True, ("помиловать", "воевать")),
    Case("ru-recruiters", "ru",
         "Вербовщики вернулись в свердловские колонии",
         "В ИК-2 Екатеринбурга вновь приехали вербовщики: заключённым предлагают "
         "двести тысяч рублей в месяц и снятие судимости.",
         True, ("вербовщик", "заключенный")),
    Case("ru-returning-convict", "ru",
         "Ранее судимый участник СВО убил соседку",
         "В Кемеровской области задержан мужчина, вернувшийся с фронта в марте. Он был "
         "ранее судим за разбой и освобождён досрочно после контракта.",
         True, ("судимый", "фронт")),
    Case("ru-project-k", "ru",
         "«Проект К»: как Минобороны набирает заключённых",
         "После ухода Пригожина набором в колониях занялось Министерство обороны. "
         "Программа получила название «Проект К».",
         True, ('"Проект К"',)),
    Case("ru-composer", "ru",
         "В Мариинском театре покажут «Кольцо нибелунга»",
         "Тетралогию Рихарда Вагнера дирижирует Валерий Гергиев. Опера «Валькирия» "
         "пройдёт в новой постановке; билеты раскупили за сутки.",
         False),
    Case("ru-it-recruitment", "ru",
         "Вербовка айтишников: компании переманивают программистов",
         "Крупные банки ведут агрессивную вербовку IT-специалистов, предлагая бонусы "
         "и удалённую работу.",
         False),
    Case("ru-spy-in-colony", "ru",
         "ФСБ: украинская разведка завербовала осуждённого",
         "По версии ФСБ, разведка Украины завербовала осуждённого, отбывавшего "
         "наказание в колонии под Тверью, для сбора сведений о военных объектах. Ему "
         "предъявлено обвинение в государственной измене.",
         False),
    Case("ru-prison-torture", "ru",
         "Заключённые ИК-1 пожаловались на пытки",
         "Правозащитники получили жалобы заключённых карельской колонии на избиения и "
         "отсутствие медицинской помощи. ФСИН проводит проверку.",
         False),
    Case("ru-political-prisoner", "ru",
         "Политика перевели в колонию особого режима",
         "Оппозиционер, выступавший против войны, этапирован в колонию особого режима. "
         "Другие заключённые, по словам адвоката, с ним не общаются.",
         False),
    Case("ru-desertion", "ru",
         "Военнослужащего осудили за самовольное оставление части",
         "Гарнизонный суд приговорил контрактника к пяти годам колонии за то, что он не "
         "вернулся в зону СВО после отпуска.",
         False),
    Case("ru-annual-report", "ru",
         "Доклад о преследованиях за 2014 год",
         "В первой главе описаны условия, в которых содержатся заключённые по "
         "политическим делам: переполненные камеры, отказ в передачах и свиданиях. "
         + "Авторы доклада перечисляют нарушения в каждом регионе, сравнивают практику "
         "судов и приводят статистику обращений в правозащитные организации. " * 8
         + "В последней главе говорится о задержаниях активистов Народного фронта и "
         "о проверках, которые провело Министерство обороны в военных вузах.",
         False),
    Case("ru-wagner-africa", "ru",
         "ЧВК «Вагнер» уходит из Мали",
         "Группа Вагнера объявила о завершении миссии в Мали; её место займёт Африканский "
         "корпус.",
         False),
]

UK = [
    Case("uk-contracts", "uk",
         "Ув’язнені колонії на Донеччині підписали контракт з Міноборони РФ",
         "За даними правозахисників, понад сто засуджених з окупованої колонії "
         "підписали контракти з Міністерством оборони росії та вирушили на фронт.",
         True, ("ув'язнений", "Міноборони", '"на фронт"')),
    Case("uk-storm-z", "uk",
         "Загони «Шторм-Z» кидають у лобові штурми",
         "Колишніх в'язнів із загонів Шторм-Z росіяни використовують для штурмів "
         "українських позицій під Бахмутом.",
         True, ("Шторм-Z",)),
    Case("uk-pardon", "uk",
         "Путін помилував ще кількох вагнерівців",
         "Серед помилуваних — засуджені за вбивства, які пів року воювали в Україні у "
         "складі ПВК «Вагнер».",
         True, ("помилувати", "вагнерівець")),
    Case("uk-recruitment", "uk",
         "Вербування ув'язнених: росія знову набирає в’язнів до армії",
         "Представники міністерства оборони росії вербують ув’язнених у колоніях "
         "Сибіру, обіцяючи помилування.",
         True, ("вербувати", "ув'язнений")),
    Case("uk-prigozhin", "uk",
         "Пригожин особисто вербував в’язнів",
         "Засновник ПВК «Вагнер» Євген Пригожин їздив колоніями та агітував "
         "ув’язнених іти на війну.",
         True, ("Пригожин", "колонія")),
    Case("uk-returning", "uk",
         "Колишній ув'язнений, який повернувся з війни, вбив пенсіонерку",
         "Чоловік мав три судимості, а після пів року на фронті отримав помилування і "
         "повернувся додому.",
         True, ("судимість", "фронт")),
    Case("uk-mobilisation", "uk",
         "Мобілізація засуджених: перші ув’язнені вже на фронті",
         "Після ухвалення закону понад три тисячі засуджених звільнено умовно-достроково "
         "для служби в штурмових підрозділах.",
         True, ("мобілізація", "засуджений")),
    Case("uk-project-k", "uk",
         "«Проєкт К»: Міноборони РФ набирає ув'язнених",
         "Після смерті Пригожина вербуванням у колоніях займається міністерство "
         "оборони росії в межах «Проєкту К».",
         True, ('"Проєкт К"',)),
    Case("uk-composer", "uk",
         "Вагнер у Львівській опері",
         "Львівська національна опера вперше покаже «Летючого голландця» Ріхарда "
         "Вагнера. Диригент — Іван Чередніченко.",
         False),
    Case("uk-it-recruitment", "uk",
         "Вербування айтівців: як компанії полюють на ІТ-фахівців",
         "Українські ІТ-компанії вербують програмістів через бонуси та гнучкий графік.",
         False),
    Case("uk-spy", "uk",
         "СБУ затримала агентку, яку завербувала ФСБ",
         "Жінку завербували через соцмережі; вона збирала дані для російської розвідки.",
         False),
    Case("uk-prison-overcrowding", "uk",
         "Омбудсман: українські в'язниці переповнені",
         "Під час моніторингових візитів у трьох в'язницях виявили переповнені камери та "
         "нестачу ліків для ув'язнених.",
         False),
    Case("uk-ww2-camps", "uk",
         "Табори й тюрми окупованої України",
         "У нацистських концтаборах в'язні помирали від голоду; мільйони полонених "
         "загинули на радянсько-німецькому фронті, а в'язнів гестапівських тюрем "
         "вивозили на примусову працю до Третього райху.",
         False),
    Case("uk-pow-exchange", "uk",
         "Обмін полоненими: додому повернулися 95 захисників",
         "Координаційний штаб повідомив про черговий обмін полоненими з росією; серед "
         "звільнених — захисники Маріуполя.",
         False),
]

EN = [
    Case("en-ik6", "en",
         "Convicts of IK-6 sign Defence Ministry contracts",
         "Convicts of IK-6 signed contracts with the Defence Ministry and left for the "
         "front, relatives of the men said on Tuesday.",
         True, ("convict*", "IK", '"Defence Ministry"')),
    Case("en-wagner-recruit", "en",
         "How Wagner recruited tens of thousands of prisoners",
         "The Wagner Group promised inmates freedom after six months at the front; "
         "recruiters visited dozens of prisons.",
         True, ("Wagner", "recruit*", "prison*")),
    Case("en-storm-z", "en",
         "Storm-Z units thrown into assaults",
         "Russia's Storm-Z detachments, staffed largely by convicts, took heavy losses.",
         True, ("Storm-Z",)),
    Case("en-pardon", "en",
         "Putin pardoned convicts who fought in Ukraine",
         "The Kremlin confirmed that pardons were granted to prisoners who fought for "
         "six months.",
         True, ("pardon*", '"fought in Ukraine"~2')),
    Case("en-returning", "en",
         "Ex-convict who returned from the war charged with murder",
         "The man, who had a long criminal record, returned from the front in May.",
         True, ('"criminal record"', '"the front"')),
    Case("en-prigozhin-tour", "en",
         "Prigozhin toured prisons offering freedom",
         "Video shows Yevgeny Prigozhin addressing inmates in a penal colony yard.",
         True, ("Prigozhin", "inmate")),
    Case("en-project-k", "en",
         "Project K: the Defence Ministry takes over prison recruitment",
         "After Wagner's mutiny the ministry's Project K took over recruiting convicts.",
         True, ('"Project K"',)),
    Case("en-composer", "en",
         "Bayreuth opens with Wagner's Parsifal",
         "The Bayreuth Festival opened with a new production of Richard Wagner's opera "
         "Parsifal, conducted by Pablo Heras-Casado.",
         False),
    Case("en-us-prison-riot", "en",
         "Inmates riot at Alabama prison",
         "Inmates set fires and attacked guards at a state prison in Alabama over "
         "conditions; the National Guard was called in.",
         False),
    Case("en-pow", "en",
         "Russia and Ukraine swap prisoners of war",
         "The Defence Ministry said 95 prisoners were returned from Ukraine in the latest "
         "prisoner exchange brokered by the UAE.",
         False),
    Case("en-tech-recruiting", "en",
         "Tech firms recruit software developers",
         "Software companies are recruiting developers with signing bonuses.",
         False),
    Case("en-spy", "en",
         "British inmate recruited by Russian intelligence",
         "Prosecutors say Russian intelligence recruited a prisoner serving a sentence in "
         "Belmarsh to spy on other inmates.",
         False),
    Case("en-trenches", "en",
         "The path to the sea: Russia's defence lines",
         "The first line is mostly defended by draftees and Storm Z units. Minefields "
         "lie in front of it, and anti-tank ditches run for hundreds of kilometres.",
         False),
    Case("en-us-pardons", "en",
         "Christie's exit and the fight for the party's soul",
         "The former governor criticised pardons for allies and said he would keep up "
         "the fight; the front-runner ignored him.",
         False),
    Case("en-war-crimes", "en",
         "Russian soldier convicted of war crimes",
         "A Kyiv court convicted a Russian soldier of war crimes committed near the front "
         "line in 2022.",
         False),
]

# The many ways coverage says "prisoners" and "went to war", Ukraine's own
# mobilisation of convicts, and the traps that share those words (a colony near the
# front line, prisoners of war, convict soldiers of another war, HR recruiting).
# Long reports: the prisoners in one paragraph, the contract in the next.
_PARA = ("Правозащитники опросили родственников и адвокатов, сравнили письма из разных "
         "учреждений и свели сведения в таблицу по регионам и месяцам. ")
_ABZAC = ("Правозахисники опитали родичів і адвокатів, порівняли листи з різних установ "
          "і звели відомості в таблицю за регіонами та місяцями. ")
_PARAGRAPH = ("Researchers spoke to relatives and lawyers, compared letters from several "
              "facilities and put the accounts into a table by region and month. ")

VOCABULARY = [
    Case("ru-defendants-contract", "ru",
         "Подсудимым разрешат уйти на фронт",
         "Госдума приняла закон: обвиняемые и подсудимые смогут прекратить уголовное дело, "
         "если подпишут контракт и отправятся в зону спецоперации.",
         True, ("подсудимый", '"на фронт"')),
    Case("ru-ukraine-battalion", "ru",
         "В ВСУ появился батальон из бывших осуждённых",
         "Бывшие заключённые, вышедшие по условно-досрочному освобождению, служат в "
         "штурмовой роте; командир говорит, что половина из них раньше не держала оружия.",
         True, ("осужденный", "ВСУ")),
    Case("ru-offenders-penal-unit", "ru",
         "Штрафников отправляют в «Шторм-З»",
         "Правонарушителей из числа военных и гражданских переводят в штрафное "
         "подразделение и отправляют на фронт без подготовки.",
         True, ("Шторм-З", "правонарушитель")),
    Case("ru-long-report", "ru",
         "Кто уходит из колоний",
         "В мужской колонии строгого режима под Тюменью осталась треть заключённых: "
         "остальные, по словам родственников, уехали этапом весной. " + _PARA * 3 + "\n\n"
         "Представители Минобороны приезжали туда трижды и предлагали контракт на полгода.",
         True, ("заключенный", "Минобороны")),
    Case("ru-colony-front-line", "ru",
         "Колонию у линии фронта обесточило после обстрела",
         "Исправительная колония в прифронтовом городе осталась без света; заключённых "
         "перевели в подвалы, сотрудники ФСИН говорят о повреждённой крыше.",
         False),
    Case("ru-hr-recruiting", "ru",
         "Рекрутинг в логистике: как нанимать водителей",
         "Кадровые агентства ведут рекрутинг водителей и кладовщиков; рекрутер должен "
         "проверять опыт работы и отзывы с прошлого места.",
         False),
    Case("ru-pow-returned", "ru",
         "Из плена вернулись 90 военнослужащих",
         "Минобороны сообщило о возвращении военнопленных; на фронт они не вернутся до "
         "окончания лечения.",
         False),
]

VOCABULARY_UK = [
    Case("uk-armed-forces-convicts", "uk",
         "Засуджені поповнюють лави Збройних сил",
         "Понад дві тисячі засуджених уклали контракт і проходять військову службу в "
         "окремих штурмових батальйонах.",
         True, ("засуджений", '"Збройні сили"')),
    Case("uk-arrested-defend", "uk",
         "Арештанти просяться на фронт",
         "Арештанти слідчого ізолятора написали листи з проханням дозволити їм зі зброєю в "
         "руках захищати Україну замість очікування вироку.",
         True, ("арештант", '"на фронт"')),
    Case("uk-storm-z-penal", "uk",
         "Штурмовики «Штурм-Z»: хто вони",
         "До загонів «Штурм-Z» переводять штрафників і правопорушників із російських "
         "військових частин.",
         True, ("Штурм-Z",)),
    Case("uk-long-report", "uk",
         "Хто залишає колонії",
         "У жіночій колонії на Житомирщині залишилася половина засуджених: решта, за словами "
         "рідних, виїхала навесні. " + _ABZAC * 3 + "\n\n"
         "Представники Міноборони приїздили туди тричі й пропонували контракт.",
         True, ("засуджений", "Міноборони")),
    Case("uk-colony-front-line", "uk",
         "Колонію біля лінії фронту знеструмлено після обстрілу",
         "Виправна колонія у прифронтовому місті залишилася без світла; засуджених "
         "перевели до укриття, стіни пошкоджено.",
         False),
    Case("uk-hr-recruiting", "uk",
         "Рекрутинг у логістиці: як наймати водіїв",
         "Кадрові агенції шукають водіїв; рекрутер перевіряє досвід і відгуки.",
         False),
]

VOCABULARY_EN = [
    Case("en-inmates-join-army", "en",
         "Ukrainian inmates join the army under new law",
         "Hundreds of prisoners have volunteered to join the army since parliament allowed "
         "parole for military service.",
         True, ('"join army"~1',)),
    Case("en-detention-contract", "en",
         "Suspects in pre-trial detention offered contracts with the Russian army",
         "People in pre-trial detention can have their cases dropped if they sign with the "
         "Defence Ministry.",
         True, ('"pre-trial detention"', '"Russian army"')),
    Case("en-former-prisoners-battalion", "en",
         "A battalion of former prisoners holds the line",
         "The unit was formed from former prisoners released on parole; its commander says "
         "most had never held a rifle.",
         True, ('"former prisoner"', "battalion")),
    Case("en-long-report", "en",
         "Who is leaving the colonies",
         "Only a third of the inmates are left in a strict-regime colony near Tyumen, "
         "relatives say; the others were moved out in the spring. " + _PARAGRAPH * 3 +
         "\n\nDefence Ministry officers came three times and offered six-month contracts.",
         True, ("inmate", '"Defence Ministry"')),
    Case("en-prison-front-line", "en",
         "Prison near the front line loses power after shelling",
         "Inmates of a prison in a frontline town were moved to basements after a strike; "
         "guards said the roof was damaged.",
         False),
    Case("en-other-war-convicts", "en",
         "Historians revisit the penal battalions of 1943",
         "Convicts from the Gulag were sent to the front in penal battalions during the "
         "Second World War, the new book shows.",
         False),
    Case("en-mobile-phones", "en",
         "Guards seize mobile phones in a penal colony",
         "Inmates of the colony ran scams with smuggled mobile phones, prosecutors said.",
         False),
    Case("en-hr-recruiting", "en",
         "Recruiting drivers: what hiring managers get wrong",
         "Recruiters screen candidates for logistics jobs; a recruiter checks experience "
         "and references.",
         False),
]

CASES = RU + UK + EN + VOCABULARY + VOCABULARY_UK + VOCABULARY_EN


@pytest.fixture(scope="module")
def shipped() -> TopicProfile:
    return load_topic(DEFAULTS_DIR / "topic.yaml")


def _article(n: object, lang: str, title: str, text: str = "") -> Article:
    url = f"https://news.test/{n}"
    return Article(url=url, canonical_url=url, source="test", fetched_at=datetime.now(UTC),
                   lang=lang, title=title, text=text)


def _classified(case: Case, profile: TopicProfile) -> Article:
    return classify(analyse([_article(case.id, case.lang, case.title, case.text)]), profile)[0]


def test_enough_cases_of_each_kind() -> None:
    for cases in (RU, UK, EN):
        assert len(cases) >= 10
        assert sum(c.relevant for c in cases) >= 5
        assert sum(not c.relevant for c in cases) >= 5


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_shipped_profile(case: Case, shipped: TopicProfile) -> None:
    article = _classified(case, shipped)
    fired = [(r.name, r.weight) for r in shipped.fired(article)]
    assert article.relevant is case.relevant, (fired, article.matched_terms)
    assert set(case.terms) <= set(article.matched_terms), article.matched_terms
    if case.relevant:
        assert 0.5 <= article.score < 1
    else:
        assert article.score < 0.5


def test_traps_report_no_terms_from_negative_rules(shipped: TopicProfile) -> None:
    composer = _classified(next(c for c in RU if c.id == "ru-composer"), shipped)
    assert composer.matched_terms == [] and composer.score == 0.0


@pytest.mark.parametrize(("rule", "lang", "texts"), [
    ("вербовка", "ru", ["Вербовки не было", "вербовку начали", "занялись вербовкой"]),
    ("ув'язнених", "uk", ["ув’язнені підписали", "серед ув'язнених", "увʼязненим обіцяли"]),
    ("колония", "ru", ["в колонии", "из колоний", "колонию закрыли"]),
    ("prisoner", "en", ["two prisoners", "a prisoner's letter"]),
])
def test_inflected_forms_match(tmp_path: Path, rule: str, lang: str, texts: list[str]) -> None:
    profile = load_topic(_profile(tmp_path, [{"name": "r", "weight": 1.0, "query": rule}]))
    articles = classify(analyse([_article(i, lang, t) for i, t in enumerate(texts)]), profile)
    assert [a.relevant for a in articles] == [True] * len(texts)
    assert all(a.matched_terms == [rule] for a in articles)


# --- the profile format and the score ----------------------------------------------

def _profile(tmp_path: Path, rules: list[dict[str, object]], **top: object) -> Path:
    spec = {"name": "t", "languages": ["ru", "uk", "en"], "threshold": 1.0, **top,
            "rules": rules}
    path = tmp_path / "topic.yaml"
    path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")  # JSON is YAML
    return path


def test_score_formula(tmp_path: Path) -> None:
    profile = load_topic(_profile(tmp_path, [
        {"name": "a", "weight": 1.0, "query": "колония"},
        {"name": "b", "weight": 0.5, "query": "фронт"},
        {"name": "trap", "weight": -1.0, "query": "опера"},
    ], threshold=1.5))
    cases = {
        "колония": (False, 1.0 / 2.5),
        "колония фронт": (True, 1.5 / 3.0),
        "колония фронт фронт": (True, 0.5),  # a rule counts once
        "колония опера": (False, 0.0),
        "опера": (False, 0.0),
        "ничего": (False, 0.0),
    }
    articles = classify(analyse([_article(t, "ru", t) for t in cases]), profile)
    for article, (relevant, score) in zip(articles, cases.values(), strict=True):
        assert (article.relevant, article.score) == (relevant, round(score, 4)), article.title
    assert articles[1].matched_terms == ["колония", "фронт"]
    assert articles[3].matched_terms == ["колония"]  # the trap's "опера" is not reported


def test_other_languages_are_never_relevant(tmp_path: Path) -> None:
    profile = load_topic(_profile(tmp_path, [{"name": "a", "weight": 1, "query": "колония"}],
                                  languages=["ru"]))
    ru, uk, other = classify(analyse([_article(1, "ru", "колония"), _article(2, "uk", "колония"),
                                      _article(3, "other", "колония")]), profile)
    assert ru.relevant and not uk.relevant and not other.relevant
    assert (uk.score, uk.matched_terms) == (0.0, [])


def test_window_keeps_words_of_one_passage(tmp_path: Path) -> None:
    profile = load_topic(_profile(tmp_path, [
        {"name": "near", "weight": 1.0, "window": 20, "query": "заключенные AND фронт"},
    ]))
    filler = "Погода стояла тёплая. " * 12  # 36 words
    near = _article("near", "ru", "Доклад", filler + "Заключённых отправили на фронт. " + filler)
    far = _article("far", "ru", "Доклад", "Заключённые. " + filler + "Фронт.")
    edge = _article("edge", "ru", "Заключённые", "фронт")
    near_r, far_r, edge_r = classify(analyse([near, far, edge]), profile)
    assert near_r.relevant and not far_r.relevant and edge_r.relevant
    assert near_r.matched_terms == ["заключенные", "фронт"]
    # without a window the same query takes the whole text
    whole = load_topic(_profile(tmp_path, [{"name": "w", "weight": 1.0,
                                            "query": "заключенные AND фронт"}]))
    assert classify([far], whole)[0].relevant


def test_window_with_negation_is_judged_per_passage(tmp_path: Path) -> None:
    profile = load_topic(_profile(tmp_path, [
        {"name": "front", "weight": 1.0, "window": 10,
         "query": 'фронт AND NOT "народный фронт"'},
    ]))
    filler = "Погода стояла тёплая. " * 6
    art = _article("x", "ru", "Активисты Народного фронта", filler + "Уехали на фронт.")
    assert classify(analyse([art]), profile)[0].relevant
    only = _article("y", "ru", "Активисты Народного фронта", filler)
    assert not classify(analyse([only]), profile)[0].relevant


@pytest.mark.parametrize(("rules", "top", "message"), [
    ([{"name": "wagner", "weight": 1, "query": "Вагнер AND (опера OR"}], {},
     "rules[0] (wagner) → query (query starts at line 1): syntax error"),
    ([{"name": "ok", "weight": 1, "query": "колония"},
      {"name": "bad-field", "weight": 1, "query": "колония AND author:Вагнер"}], {},
     "rules[1] (bad-field) → query (query starts at line 1): unknown field 'author' "
     "(known: terms, lang, source, translation_status, cluster_id, event, relevant, "
     "possible, title, text, published, fetched) at line 1, column 13 of the query"),
    ([{"name": "a", "weight": 0, "query": "колония"}], {}, "weight 0"),
    ([{"name": "a", "weight": 1, "query": "x"}, {"name": "a", "weight": 1, "query": "y"}], {},
     "rule name 'a' is used twice"),
    ([{"name": "a", "weight": -1, "query": "x"}], {}, "no rule has a positive weight"),
    ([{"name": "a", "weight": 1, "query": "x", "wieght": 2}], {}, "rules[0] (a) → wieght"),
    ([{"name": "a", "weight": 1, "query": "x", "window": 3}], {}, "rules[0] (a) → window"),
    ([{"name": "a", "weight": 1, "query": "x"}], {"threshold": 0}, "threshold"),
    ([{"name": "a", "weight": 1, "query": "x"}], {"languages": ["ua"]}, "languages"),
])
def test_load_errors_name_file_rule_and_position(tmp_path: Path, rules: list[dict[str, object]],
                                                 top: dict[str, object], message: str) -> None:
    path = _profile(tmp_path, rules, **top)
    with pytest.raises(ConfigError) as info:
        load_topic(path)
    assert str(info.value).startswith(str(path))
    assert message in str(info.value)


@pytest.mark.parametrize(("lang", "rule", "text"), [
    ("en", "mobiliz*", "Convicts were mobilized in May"),
    ("ru", "мобилиз*", "Мобилизованных заключённых отправили на фронт"),
    ("uk", "в'язню*", "Адвокат передав в’язню ліки"),
])
def test_a_wildcard_matches_the_words_written_that_way(tmp_path: Path, lang: str, rule: str,
                                                       text: str) -> None:
    profile = load_topic(_profile(tmp_path, [{"name": "w", "weight": 1.0, "query": rule}]))
    article = classify(analyse([_article(lang, lang, text)]), profile)[0]
    assert article.relevant and article.matched_terms == [rule]


@pytest.mark.parametrize("wildcard", ["organi?ation", "колон?ия", "колон?ія"])
def test_a_wildcard_that_fits_no_word_is_named_at_load(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, wildcard: str) -> None:
    path = _profile(tmp_path, [{"name": "good", "weight": 1.0, "query": "recruit* OR вербов*"},
                               {"name": "odd", "weight": 1.0, "query": f"тюрьма OR {wildcard}"}])
    with caplog.at_level("WARNING", logger="pipelines.relevance"):
        load_topic(path)
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: rules[1] (odd): the wildcard {wildcard} fits no known word and can only "
        "match by chance; write the word itself"]


def test_possible_tier_between_the_two_thresholds(tmp_path: Path) -> None:
    profile = load_topic(_profile(tmp_path, [
        {"name": "a", "weight": 1.0, "query": "колония"},
        {"name": "b", "weight": 0.5, "query": "фронт"},
    ], possible_threshold=0.5))
    cases = {"колония": (True, False), "фронт": (False, True), "погода": (False, False)}
    articles = classify(analyse([_article(t, "ru", t) for t in cases]), profile)
    assert [(a.relevant, a.possible) for a in articles] == list(cases.values())
    assert articles[1].score == round(0.5 / 1.5, 4)
    # without the field no story is possible, and the field stays below the threshold
    plain = load_topic(_profile(tmp_path, [{"name": "b", "weight": 0.5, "query": "фронт"},
                                           {"name": "a", "weight": 1.0, "query": "колония"}]))
    assert not classify(analyse([_article("x", "ru", "фронт")]), plain)[0].possible
    with pytest.raises(ConfigError, match=r"possible_threshold \(1.0\) must be below"):
        load_topic(_profile(tmp_path, [{"name": "a", "weight": 1, "query": "x"}],
                            possible_threshold=1.0))


def test_shipped_profile_keeps_near_misses_as_possible(shipped: TopicProfile) -> None:
    near = _classified(Case("near", "en", "Storm-Z units hold the line",
                            "Storm-Z detachments dug in near the river.", False), shipped)
    assert not near.relevant and near.possible


def test_query_error_line_in_a_block_scalar(tmp_path: Path) -> None:
    path = tmp_path / "topic.yaml"
    path.write_text(
        "name: t\nthreshold: 1\nrules:\n"
        "  - name: good\n    weight: 1\n    query: колония\n"
        "  - name: broken\n    weight: 1\n    query: >-\n"
        "      (колония OR тюрьма)\n      AND lang:ua\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_topic(path)
    assert str(info.value) == (
        f"{path}: rules[1] (broken) → query (query starts at line 10): unknown language "
        "'ua' (use ru, uk, en, other) at line 1, column 30 of the query")


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_topic(bad)
    with pytest.raises(ConfigError, match="file not found"):
        load_topic(tmp_path / "missing.yaml")


def test_shipped_profile_shape(shipped: TopicProfile) -> None:
    assert shipped.name == "prisoner-recruitment"
    assert shipped.languages == ("ru", "uk", "en")
    weights = [r.weight for r in shipped.rules]
    assert any(w >= shipped.threshold for w in weights) and any(w < 0 for w in weights)


# --- real pages: none is about prisoner recruitment --------------------------------

@pytest.mark.skipif(not SHARED_PAGES.is_dir(), reason=f"{SHARED_PAGES} is absent")
def test_no_real_page_is_a_false_positive(shipped: TopicProfile) -> None:
    """The shared corpus (its README: "No page is about Wagner or prisoner
    recruitment") holds war coverage, Second World War history and long human-rights
    reports: hard negatives. Pages with a gold body use it; the Russian, Ukrainian and
    war-tagged pages without one are extracted by trafilatura in its fast mode (the
    profile is under test here, not extraction; the other English pages are blogs and
    tutorials far from the topic)."""
    import trafilatura

    from pipelines.charset import decode_html

    manifest = json.loads((SHARED_PAGES / "manifest.json").read_text(encoding="utf-8"))
    articles = []
    for p in manifest:
        if p["gold"].get("body"):
            title, text = p["gold"].get("title") or "", p["gold"]["body"]
        elif p["lang"] in ("ru", "uk") or p.get("topic_tags"):
            html = decode_html((SHARED_PAGES / p["file"]).read_bytes()).text
            title, text = "", trafilatura.extract(html, fast=True) or ""
        else:
            continue
        articles.append(_article(p["file"], p["lang"], title, text))
    assert len(articles) >= 95 and sum(len(a.text) > 20_000 for a in articles) >= 5
    classified = classify(analyse(articles), shipped)
    relevant = [(a.url, a.matched_terms) for a in classified if a.relevant]
    assert relevant == []
