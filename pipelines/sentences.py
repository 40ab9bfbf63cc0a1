"""Sentence splitting for translation, without torch.

Argos models translate sentence by sentence. argostranslate splits with stanza (torch)
or MiniSBD (stanza's tokenizer exported to ONNX, run by onnxruntime). Dozor uses
MiniSBD when the package carries its model (`minisbd/*.onnx`, shipped in the package
or fetched by `dozor models install`), which gives the sentences argostranslate
gives for the same package. Without that model, sentencex (Wikimedia's rule-based
splitter, abbreviation lists for ru/uk/en) is the fallback: no download, no model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class SentenceSplitter(Protocol):
    name: str

    def split(self, paragraph: str) -> list[str]: ...


class MiniSBDSplitter:
    def __init__(self, model_file: Path, use_gpu: bool = False, threads: int | None = None):
        from minisbd import SBDetect

        self.name = f"minisbd ({model_file.name})"
        self._detector = SBDetect(str(model_file), use_gpu=use_gpu, max_threads=threads or None)

    def split(self, paragraph: str) -> list[str]:
        return self._detector.sentences(paragraph)


class RuleSplitter:
    def __init__(self, lang: str):
        self.name = "sentencex (rule-based)"
        self._lang = lang

    def split(self, paragraph: str) -> list[str]:
        import sentencex

        return [s.strip() for s in sentencex.segment(self._lang, paragraph) if s.strip()]


def splitter_for(
    lang: str, sbd_model: Path | None, use_gpu: bool = False, threads: int | None = None
) -> SentenceSplitter:
    if sbd_model is not None:
        return MiniSBDSplitter(sbd_model, use_gpu=use_gpu, threads=threads)
    return RuleSplitter(lang)
