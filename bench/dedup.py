"""Wire-copy grouping on pairs built from the shared corpus of real pages.

    .venv/bin/python -m bench.dedup [PAGES_DIR] [--verbose]

Every page of ``../shared/fixtures/pages`` is extracted as the crawler hands it over.
From each page long enough to be cut in half, true copies are built the ways
syndication cuts and dresses a story: the first half, lightly edited (words dropped,
a sentence left out, figures changed), re-headlined, with an agency line, a "read
more" tail or a photo credit, all of these at once, and a teaser that keeps only the
headline and the lead (stored after the story, or before it). False pairs are
different stories: every two pages of one outlet, two stories ending in the same
boilerplate block, two stories quoting the same statement, and a story under another
story's headline (a recurring column).

Each pair is judged on its own real SQLite store: the first article is deduplicated
and stored, the second is deduplicated against it; the pair is grouped when the second
joins the first one's cluster. Precision and recall of grouping are printed per kind
and overall.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path
from urllib.parse import urlparse

from bench.corpus import DEFAULT_PAGES, load_pages
from pipelines import dedup, extract
from pipelines.article import Article
from pipelines.store.sqlite import SQLiteStore

# long enough that its first half still has a MinHash signature
MIN_WORDS = 2 * dedup.MIN_WORDS + 20
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
_NUMBER = re.compile(r"\b\d+\b")

AGENCY = {
    "en": "MOSCOW, Dec 1 (Reuters) - ",
    "ru": "МОСКВА, 1 декабря. /ТАСС/. ",
    "uk": "КИЇВ, 1 грудня. /Укрінформ/. ",
}
CREDIT = {
    "en": "Photo: Reuters/Maxim Shemetov",
    "ru": "Фото: РИА Новости / Евгений Биятов",
    "uk": "Фото: Укрінформ / Павло Багмут",
}
READ_MORE = {"en": "Read more:", "ru": "Читайте также:", "uk": "Читайте також:"}
# written for the bench: the sort of block an outlet puts under every story
BOILERPLATE = {
    "en": ("Our journalism is independent and free to read. We rely on readers to keep it "
           "that way: every contribution, however big or small, helps us report from places "
           "others will not go. Subscribe to our newsletter to get the day's most important "
           "stories in your inbox every morning, follow us on Telegram, and send tips to "
           "our newsroom securely. Copyright reserved; republishing requires written "
           "permission and a link to the original."),
    "ru": ("Наша редакция независима, и мы существуем благодаря читателям: любое пожертвование, "
           "большое или маленькое, помогает нам рассказывать о том, о чём молчат другие. "
           "Подпишитесь на нашу рассылку, чтобы каждое утро получать главные новости дня, "
           "читайте нас в Telegram и присылайте информацию в редакцию через защищённый канал. "
           "Все права защищены; перепечатка только с письменного разрешения редакции и со "
           "ссылкой на оригинал."),
    "uk": ("Наша редакція незалежна, і ми існуємо завдяки читачам: будь-який внесок, великий "
           "чи малий, допомагає нам розповідати про те, про що мовчать інші. Підпишіться на "
           "нашу розсилку, щоб щоранку отримувати головні новини дня, читайте нас у Telegram "
           "і надсилайте інформацію до редакції захищеним каналом. Усі права захищено; "
           "передрук лише з письмового дозволу редакції та з посиланням на оригінал."),
}


@dataclass
class Story:
    name: str
    lang: str
    outlet: str
    title: str
    paras: list[str]

    @property
    def text(self) -> str:
        return "\n".join(self.paras)

    @property
    def words(self) -> int:
        return len(self.text.split())


@dataclass
class Pair:
    kind: str
    copy: bool  # gold: the two are one story
    first: Story
    second: Story


@dataclass
class Tally:
    pairs: int = 0
    grouped: int = 0
    wrong: list[str] = field(default_factory=list)


def load_stories(pages_dir: Path = DEFAULT_PAGES) -> list[Story]:
    stories = []
    for entry, page in load_pages(pages_dir):
        article = extract.extract_page(page)
        if article is None or not article.text.strip():
            continue
        host = urlparse(entry.get("url") or "").netloc.removeprefix("www.")
        # pages without a URL: the collection they came from (the file's prefix)
        outlet = host or entry["file"].split("-")[0]
        paras = [p.strip() for p in article.text.split("\n") if p.strip()]
        stories.append(Story(entry["file"], entry["lang"], outlet, article.title, paras))
    return stories


def first_half(story: Story) -> list[str]:
    """Whole sentences from the start up to half the words, paragraphs kept."""
    out: list[str] = []
    budget = story.words // 2
    for para in story.paras:
        kept = []
        for sentence in _SENTENCE_END.split(para):
            if budget <= 0:
                break
            kept.append(sentence)
            budget -= len(sentence.split())
        if kept:
            out.append(" ".join(kept))
        if budget <= 0:
            break
    return out


def lead(story: Story) -> list[str]:
    """The opening paragraphs, at least LEAD_WORDS words of them: what a teaser keeps."""
    out: list[str] = []
    for para in story.paras:
        out.append(para)
        if len(" ".join(out).split()) >= dedup.LEAD_WORDS:
            break
    return out


def light_edit(paras: list[str]) -> list[str]:
    """Every 30th word dropped, figures changed, the third sentence of the longest
    paragraph left out: what a sub-editor does to a wire story."""
    out = []
    longest = max(range(len(paras)), key=lambda i: len(paras[i]))
    n = 0
    for i, para in enumerate(paras):
        sentences = _SENTENCE_END.split(para)
        if i == longest and len(sentences) > 3:
            del sentences[2]
        words = []
        for word in " ".join(sentences).split():
            n += 1
            if n % 30:
                words.append(word)
        out.append(_NUMBER.sub(lambda m: str(int(m.group()) + 1), " ".join(words)))
    return out


def true_copies(story: Story, others: list[Story]) -> list[Pair]:
    lang = story.lang if story.lang in AGENCY else "en"
    half = first_half(story)
    related = [o.title for o in others if o.title and o.lang == story.lang][:3]
    tail = [READ_MORE[lang], *related] if related else [READ_MORE[lang]]
    retitled = f"{story.title} — {CREDIT[lang].split(':')[0]}" if story.title else "Update"

    def copy(kind: str, title: str, paras: list[str]) -> Pair:
        return Pair(kind, True, story, replace(story, name=f"{story.name}#{kind}", title=title,
                                               paras=paras))

    return [
        copy("half", story.title, half),
        copy("edited", story.title, light_edit(story.paras)),
        copy("half-retitled", retitled, half),
        copy("agency-line", story.title, [AGENCY[lang] + story.paras[0], *story.paras[1:]]),
        copy("read-more-tail", story.title, [*story.paras, *tail]),
        copy("photo-credit", story.title, [story.paras[0], CREDIT[lang], *story.paras[1:]]),
        copy("all-at-once", retitled,
             [AGENCY[lang] + light_edit(half)[0], CREDIT[lang], *light_edit(half)[1:], *tail]),
        copy("headline-and-lead", story.title, lead(story)),
        Pair("teaser-first", True, replace(story, name=f"{story.name}#teaser", paras=lead(story)),
             story),
    ]


def false_pairs(stories: list[Story]) -> list[Pair]:
    out = []
    by_outlet: dict[str, list[Story]] = defaultdict(list)
    for s in stories:
        by_outlet[s.outlet].append(s)
    for group in by_outlet.values():
        # one page saved in two encodings is one story, not a false pair
        out += [Pair("same-outlet", False, a, b) for a, b in combinations(group, 2)
                if dedup.content_hash(a.text) != dedup.content_hash(b.text)]
    by_lang: dict[str, list[Story]] = defaultdict(list)
    for s in stories:
        if s.words >= MIN_WORDS and s.lang in BOILERPLATE:
            by_lang[s.lang].append(s)
    for lang, group in by_lang.items():
        for a, b, quoted in zip(group, group[1:], group[2:], strict=False):
            block = BOILERPLATE[lang]
            out.append(Pair("shared-boilerplate", False,
                            replace(a, name=a.name + "#bp", paras=[*a.paras, block]),
                            replace(b, name=b.name + "#bp", paras=[*b.paras, block])))
            statement = f"«{quoted.paras[0]}»" if lang != "en" else f'"{quoted.paras[0]}"'
            out.append(Pair("shared-quote", False,
                            replace(a, name=a.name + "#q", paras=[a.paras[0], statement,
                                                                  *a.paras[1:]]),
                            replace(b, name=b.name + "#q", paras=[b.paras[0], statement,
                                                                  *b.paras[1:]])))
            out.append(Pair("same-headline", False, a,
                            replace(b, name=b.name + "#h", title=a.title)))
    return out


def build_pairs(stories: list[Story]) -> list[Pair]:
    long = [s for s in stories if s.words >= MIN_WORDS]
    pairs = []
    for i, story in enumerate(long):
        pairs += true_copies(story, long[i + 1:] + long[:i])
    return pairs + false_pairs(stories)


def _article(story: Story) -> Article:
    url = f"https://{story.outlet}.bench.invalid/{story.name}"
    return Article(url=url, canonical_url=url, source=story.outlet,
                   fetched_at=datetime.now(UTC), lang=story.lang, title=story.title,
                   text=story.text)


def grouped(first: Story, seconds: list[Story], db: Path) -> list[bool]:
    """Dedup and store `first`, then dedup each of `seconds` on its own against that
    store (dedup only reads it): whether each joins the first one's cluster."""
    with SQLiteStore(db) as store:
        stored = dedup.dedup([_article(first)], store)
        store.write(stored)
        return [dedup.dedup([_article(s)], store)[0].cluster_id == stored[0].cluster_id
                for s in seconds]


@dataclass
class Report:
    kinds: dict[tuple[bool, str], Tally]

    def _count(self, copy: bool) -> tuple[int, int]:
        tallies = [t for (c, _), t in self.kinds.items() if c is copy]
        return sum(t.pairs for t in tallies), sum(t.grouped for t in tallies)

    @property
    def recall(self) -> float:
        pairs, hit = self._count(True)
        return hit / pairs if pairs else 1.0

    @property
    def precision(self) -> float:
        _, hit = self._count(True)
        _, false = self._count(False)
        return hit / (hit + false) if hit + false else 1.0


def evaluate(pages_dir: Path = DEFAULT_PAGES) -> Report:
    by_first: dict[str, list[Pair]] = defaultdict(list)
    for pair in build_pairs(load_stories(pages_dir)):
        by_first[pair.first.name].append(pair)
    kinds: dict[tuple[bool, str], Tally] = {}
    with tempfile.TemporaryDirectory() as tmp:
        # each first story gets its own empty database: a copy of one made (migrated) once
        empty = Path(tmp) / "empty.db"
        SQLiteStore(empty).close()
        for n, pairs in enumerate(by_first.values()):
            db = shutil.copyfile(empty, Path(tmp) / f"{n}.db")
            outcomes = grouped(pairs[0].first, [p.second for p in pairs], db)
            for pair, together in zip(pairs, outcomes, strict=True):
                tally = kinds.setdefault((pair.copy, pair.kind), Tally())
                tally.pairs += 1
                tally.grouped += together
                if together != pair.copy:
                    tally.wrong.append(f"{pair.first.name} ~ {pair.second.name}")
    return Report(kinds)


def format_report(report: Report, verbose: bool = False) -> str:
    lines = ["pairs      kind                 pairs  grouped"]
    for (copy, kind), t in sorted(report.kinds.items(), key=lambda kv: (not kv[0][0], kv[0][1])):
        lines.append(f"{'copy' if copy else 'different':<10} {kind:<20} {t.pairs:>5}  "
                     f"{t.grouped:>7}")
        if verbose:
            lines += [f"    wrong: {w}" for w in t.wrong]
    lines.append(f"grouping precision {report.precision:.3f}, recall {report.recall:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pages", nargs="?", type=Path, default=DEFAULT_PAGES)
    parser.add_argument("--verbose", action="store_true", help="list every wrong pair")
    args = parser.parse_args(argv)
    if not (args.pages / "manifest.json").is_file():
        print(f"error: {args.pages}/manifest.json not found", file=sys.stderr)
        return 2
    print(format_report(evaluate(args.pages), args.verbose))
    return 0


if __name__ == "__main__":
    sys.exit(main())
