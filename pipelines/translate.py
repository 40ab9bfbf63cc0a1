"""The translate stage: title and text of non-English articles into English.

The production path runs an installed Argos package's CTranslate2 model directly:
the sentences of every article in a batch are split, tokenised with the package's
own tokenizer (SentencePiece), and handed to `ctranslate2.Translator.translate_batch`
in one call, which sorts them by length and cuts batches by token count. That is
what makes it fast; argostranslate's `translate()` translates one paragraph at a
time in batches of 32 tokens. Everything else mirrors argostranslate's
`apply_packaged_translation` (decoding options, how a paragraph's sentences are
decoded together), so with the same sentences both give the same English.

Statuses: done | pending (no model for the language yet; `dozor translate` fills it
in later) | failed (an error on this article; the rest of the batch goes on) |
skipped (English, another language, or not selected by `translation.mode`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import ctranslate2

from pipelines import models
from pipelines.article import Article
from pipelines.config.settings import TranslationSettings
from pipelines.pool import usable_cpus
from pipelines.sentences import SentenceSplitter, splitter_for

log = logging.getLogger(__name__)

ENGINE = f"ctranslate2 {ctranslate2.__version__}"
# Argos models are trained on sentences; a "sentence" the splitter could not cut (a
# list, a table flattened to text) is translated in pieces of at most this many
# tokens rather than degraded or truncated by the model.
MAX_SENTENCE_TOKENS = 200
# argostranslate's decoding options, kept so both paths produce the same text
LENGTH_PENALTY = 0.2

LANGUAGE_NAMES = {"ru": "Russian", "uk": "Ukrainian", "en": "English"}


def missing_model_notice(lang: str) -> str:
    name = LANGUAGE_NAMES.get(lang, lang)
    return (
        f"No {lang}→{models.TARGET} translation model installed: {name} articles are stored "
        f"untranslated (pending). Install it with: {models.install_command(lang)}"
    )


@dataclass
class PairModel:
    """One installed language pair, loaded and ready."""

    installed: models.InstalledModel
    translator: ctranslate2.Translator
    tokenizer: object  # argostranslate Tokenizer: encode(str) -> pieces, decode(pieces)
    target_prefix: str
    splitter: SentenceSplitter

    @classmethod
    def load(cls, installed: models.InstalledModel, settings: TranslationSettings) -> PairModel:
        package = installed.package()
        cuda = settings.device == "cuda" or (
            settings.device == "auto" and ctranslate2.get_cuda_device_count() > 0)
        if cuda:
            inter, intra = 1, settings.threads
        else:
            # On CPU, batches translated side by side with one thread each beat one batch
            # spread over all threads (bench/translate.py: about 1.5x on 2 cores): much of
            # a decoding step (softmax and top-k over the vocabulary, beam bookkeeping) is
            # not split across threads.
            inter, intra = settings.threads or usable_cpus(), 1
        translator = ctranslate2.Translator(
            str(installed.path / "model"),
            device="cuda" if cuda else "cpu",
            compute_type=settings.compute_type,
            inter_threads=inter,
            intra_threads=intra,
        )
        splitter = splitter_for(installed.from_code, installed.sbd_model, use_gpu=cuda,
                                threads=settings.threads or None)
        return cls(installed, translator, package.tokenizer, package.target_prefix, splitter)


@dataclass
class _Paragraph:
    segments: list[int] = field(default_factory=list)  # indexes into the job's segments


@dataclass
class _Job:
    """One article's title and text, cut into token segments."""

    article: Article
    fields: dict[str, list[_Paragraph]]
    segments: list[list[str]]


def chunk_tokens(tokens: list[str], limit: int = MAX_SENTENCE_TOKENS) -> list[list[str]]:
    """Cut an overlong token list into near-equal pieces of at most `limit` tokens, each
    cut moved back to the nearest word start when one is close."""
    if len(tokens) <= limit:
        return [tokens]
    size = math.ceil(len(tokens) / math.ceil(len(tokens) / limit))
    out: list[list[str]] = []
    start = 0
    while len(tokens) - start > limit:
        cut = start + size
        for i in range(cut, start + size // 2, -1):
            if _starts_word(tokens, i):
                cut = i
                break
        out.append(tokens[start:cut])
        start = cut
    out.append(tokens[start:])
    return out


def _starts_word(tokens: list[str], i: int) -> bool:
    # SentencePiece marks a word start with ▁; BPE marks a continued word with @@
    return tokens[i].startswith("\u2581") or not tokens[i - 1].endswith("@@")


class Translator:
    def __init__(self, pairs: dict[str, PairModel], settings: TranslationSettings,
                 languages: Iterable[str]):
        self.pairs = pairs
        self.settings = settings
        self.languages = frozenset(languages)

    def wants(self, article: Article) -> bool:
        """Whether this article is one the settings say to translate."""
        if article.lang == models.TARGET or article.lang not in self.languages:
            return False
        return self.settings.mode == "all" or (
            self.settings.mode == "relevant" and article.relevant
        )

    def translate(self, articles: list[Article]) -> list[Article]:
        by_lang: dict[str, list[Article]] = {}
        for article in articles:
            if not self.wants(article):
                article.translation_status = "skipped"
            elif article.lang not in self.pairs:
                article.translation_status = "pending"
            else:
                by_lang.setdefault(article.lang, []).append(article)
        for lang, group in by_lang.items():
            self._translate(self.pairs[lang], group)
        return articles

    def _translate(self, pair: PairModel, articles: list[Article]) -> None:
        jobs: list[_Job] = []
        for article in articles:
            try:
                jobs.append(self._prepare(pair, article))
            except Exception as exc:  # a bad text must not stop the others
                self._failed(pair, article, exc)
        if not jobs:
            return
        try:
            outputs = self._run(pair, [s for job in jobs for s in job.segments])
        except Exception as exc:
            log.warning("translation batch of %d articles failed (%s); retrying one by one",
                        len(jobs), exc)
            for job in jobs:
                try:
                    self._finish(pair, job, self._run(pair, job.segments))
                except Exception as exc_one:
                    self._failed(pair, job.article, exc_one)
            return
        offset = 0
        for job in jobs:
            n = len(job.segments)
            try:
                self._finish(pair, job, outputs[offset:offset + n])
            except Exception as exc:
                self._failed(pair, job.article, exc)
            offset += n

    def _prepare(self, pair: PairModel, article: Article) -> _Job:
        job = _Job(article, {}, [])
        for name in ("title", "text"):
            paragraphs = []
            # argostranslate's paragraphs: every line is translated on its own
            for line in (getattr(article, name) or "").split("\n"):
                paragraph = _Paragraph()
                for sentence in pair.splitter.split(line):
                    for piece in chunk_tokens(pair.tokenizer.encode(sentence)):
                        paragraph.segments.append(len(job.segments))
                        job.segments.append(piece)
                paragraphs.append(paragraph)
            job.fields[name] = paragraphs
        return job

    def _run(self, pair: PairModel, segments: Sequence[list[str]]) -> list[list[str]]:
        if not segments:
            return []
        prefix = [[pair.target_prefix]] * len(segments) if pair.target_prefix else None
        # at least one batch per worker, so that every thread has work
        workers = pair.translator.num_translators
        per_worker = math.ceil(sum(map(len, segments)) / workers)
        results = pair.translator.translate_batch(
            list(segments),
            target_prefix=prefix,
            max_batch_size=max(min(self.settings.max_batch_tokens, per_worker), 1),
            batch_type="tokens",
            beam_size=self.settings.beam_size,
            num_hypotheses=1,
            length_penalty=LENGTH_PENALTY,
            replace_unknowns=True,
        )
        return [r.hypotheses[0] for r in results]

    def _finish(self, pair: PairModel, job: _Job, outputs: list[list[str]]) -> None:
        english: dict[str, str] = {}
        for name, paragraphs in job.fields.items():
            lines = []
            for paragraph in paragraphs:
                tokens = [t for i in paragraph.segments for t in outputs[i]]
                lines.append(self._decode(pair, tokens) if tokens else "")
            english[name] = "\n".join(lines)
        article = job.article
        article.title_en = english["title"]
        article.text_en = english["text"]
        article.translation_status = "done"
        article.translation_engine = ENGINE
        article.translation_model = pair.installed.name

    @staticmethod
    def _decode(pair: PairModel, tokens: list[str]) -> str:
        value = pair.tokenizer.decode(tokens)
        if pair.target_prefix and value.startswith(pair.target_prefix):
            value = value[len(pair.target_prefix):]
        # the tokenizer's word-start marker leaves one space in front
        return value[1:] if value.startswith(" ") else value

    @staticmethod
    def _failed(pair: PairModel, article: Article, exc: Exception) -> None:
        log.error("translating %s (%s→en) failed: %s: %s", article.url, article.lang,
                  type(exc).__name__, exc)
        article.title_en = None
        article.text_en = None
        article.translation_status = "failed"
        article.translation_engine = ENGINE
        article.translation_model = pair.installed.name


def load_translator(
    settings: TranslationSettings, languages: Iterable[str], directory: Path
) -> tuple[Translator | None, list[str]]:
    """A Translator for the installed lang→en pairs, and one notice line per missing pair.

    None only when translation is switched off (`mode: none`). With no model at all the
    Translator still marks articles pending, so `dozor translate` can fill them in.
    `directory` holds the models (`pipelines.models.models_dir`).
    """
    if settings.mode == "none":
        return None, []
    languages = list(dict.fromkeys(languages))
    pairs: dict[str, PairModel] = {}
    notices: list[str] = []
    for lang in languages:
        if lang == models.TARGET:
            continue
        installed = models.find(directory, lang)
        if installed is None:
            notices.append(missing_model_notice(lang))
            continue
        try:
            pairs[lang] = PairModel.load(installed, settings)
        except Exception as exc:  # ctranslate2 / onnxruntime raise plain RuntimeErrors
            notices.append(
                f"The {lang}→{models.TARGET} model in {installed.path} cannot be loaded "
                f"({exc}); {LANGUAGE_NAMES.get(lang, lang)} articles stay pending. "
                f"Reinstall it with: {models.install_command(lang)}"
            )
    return Translator(pairs, settings, languages), notices
