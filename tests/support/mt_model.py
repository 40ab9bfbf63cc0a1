"""A small, real Argos Translate package built at test time.

No Argos model can be downloaded here, so the tests make one: a SentencePiece model
trained on a toy ru/uk/en corpus, a CTranslate2 Transformer whose weights are *set*
(not trained) so that it translates word by word with a dictionary, a MiniSBD-format
ONNX sentence splitter, and Argos metadata, zipped as an ``.argosmodel``.

How the Transformer translates: every position carries a sinusoidal code in a few
dedicated dimensions (with each value also stored negated, so the codes sum to zero
and layer norm does not move them). Cross-attention queries and keys read only those
dimensions, scaled so that decoder step ``t`` attends sharply to source position
``t``; values carry the source token's content vector; the output projection scores
each target token by its dictionary sources' content vectors. The source gets
``</s>`` appended (``add_source_eos``), which maps to ``</s>``, so decoding stops
after as many tokens as the source had. Every other weight is zero. With large
margins the output is deterministic under greedy and beam search, int8 or float32,
padded or not, so two code paths over the same model must agree token for token.

The same construction at Transformer-base size (6+6 layers, d_model 512, 8 heads,
ffn 2048, 32k vocabulary) is what ``bench/translate.py`` times: decoding cost does not
depend on the weights' values, and the output length is realistic (one target token
per source token).
"""

from __future__ import annotations

import io
import json
import random
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.config.config import Config
from pipelines.models import models_dir

# (ru, uk, en): the toy dictionary the model translates with, word for word.
WORDS: list[tuple[str, str, str]] = [
    ("заключённые", "ув'язнені", "prisoners"),
    ("заключённых", "ув'язнених", "prisoners"),
    ("колонии", "колонії", "colony"),
    ("колониях", "колоніях", "colonies"),
    ("вербуют", "вербують", "recruit"),
    ("завербовали", "завербували", "recruited"),
    ("вагнер", "вагнер", "wagner"),
    ("шторм", "шторм", "storm"),
    ("помилование", "помилування", "pardon"),
    ("получили", "отримали", "received"),
    ("контракт", "контракт", "contract"),
    ("подписали", "підписали", "signed"),
    ("на", "на", "on"),
    ("в", "у", "in"),
    ("и", "і", "and"),
    ("из", "з", "from"),
    ("фронт", "фронт", "front"),
    ("войну", "війну", "war"),
    ("война", "війна", "war"),
    ("вернулись", "повернулися", "returned"),
    ("домой", "додому", "home"),
    ("суд", "суд", "court"),
    ("приговор", "вирок", "sentence"),
    ("министерство", "міністерство", "ministry"),
    ("обороны", "оборони", "defence"),
    ("россии", "росії", "russia"),
    ("украины", "україни", "ukraine"),
    ("новости", "новини", "news"),
    ("сегодня", "сьогодні", "today"),
    ("вчера", "вчора", "yesterday"),
    ("солдаты", "солдати", "soldiers"),
    ("погибли", "загинули", "died"),
    ("тысячи", "тисячі", "thousands"),
    ("людей", "людей", "people"),
    ("журналисты", "журналісти", "journalists"),
    ("сообщили", "повідомили", "reported"),
    ("правозащитники", "правозахисники", "activists"),
    ("говорят", "кажуть", "say"),
    ("мать", "мати", "mother"),
    ("сын", "син", "son"),
    ("письмо", "лист", "letter"),
    ("город", "місто", "city"),
    ("области", "області", "region"),
    ("указ", "указ", "decree"),
    ("президент", "президент", "president"),
]
PUNCTUATION = [".", ",", "!", "?", ":", ";", "«", "»", "-", "(", ")", "'", '"']
SENTENCE_ENDS = ".!?"


@dataclass(frozen=True)
class ToyPair:
    from_code: str
    from_name: str
    column: int  # index into WORDS rows


PAIRS = {"ru": ToyPair("ru", "Russian", 0), "uk": ToyPair("uk", "Ukrainian", 1)}


def dictionary(from_code: str) -> dict[str, str]:
    """Source word -> English word, lower and capitalised forms."""
    column = PAIRS[from_code].column
    out: dict[str, str] = {}
    for row in WORDS:
        src, en = row[column], row[2]
        out[src] = en
        out[src.capitalize()] = en.capitalize()
    return out


def corpus(seed: int = 0, lines: int = 600) -> list[str]:
    """Sentences in all three languages (same words in the same order), to train on."""
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(lines):
        idx = [rng.randrange(len(WORDS)) for _ in range(rng.randint(3, 9))]
        end = rng.choice(SENTENCE_ENDS)
        for column in (0, 1, 2):
            words = [WORDS[i][column] for i in idx]
            words[0] = words[0].capitalize()
            out.append(" ".join(words) + end)
            out.append(" ".join(w.capitalize() for w in words) + ",")
    # every character the tests write, so no piece is unknown by accident
    out.append("0123456789 " + " ".join(PUNCTUATION))
    return out


def train_sentencepiece(path: Path, sentences: Sequence[str], vocab_size: int) -> None:
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        hard_vocab_limit=False,
        num_threads=1,
        bos_id=1,
        eos_id=2,
        unk_id=0,
        minloglevel=2,
    )
    path.write_bytes(model.getvalue())


def piece_mapping(sp_model: Path, vocab: list[str], words: dict[str, str]) -> list[int]:
    """For each vocabulary id, the id the model outputs: a dictionary word that is one
    piece maps to its translation's piece; everything else (names, digits, punctuation,
    word fragments) is copied."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(sp_model))
    index = {piece: i for i, piece in enumerate(vocab)}
    mapping = list(range(len(vocab)))
    for src, tgt in words.items():
        src_pieces = sp.encode(src, out_type=str)
        tgt_pieces = sp.encode(tgt, out_type=str)
        if len(src_pieces) == 1 and len(tgt_pieces) == 1:
            mapping[index[src_pieces[0]]] = index[tgt_pieces[0]]
    return mapping


def build_ct2_model(
    out_dir: Path,
    vocab: list[str],
    mapping: list[int],
    *,
    d_model: int,
    heads: int = 1,
    layers: tuple[int, int] = (1, 1),
    ffn: int = 4,
    max_positions: int = 1024,
    seed: int = 0,
    quantization: str | None = None,
) -> None:
    """Save a CTranslate2 Transformer that outputs mapping[token] for each source token."""
    from ctranslate2.specs import transformer_spec

    vocab_size = len(vocab)
    pairs = 8
    pos_dims = 4 * pairs
    head_dim = d_model // heads
    if d_model % heads or head_dim < pos_dims:
        raise ValueError("every head needs room for the position code")
    # dims: [position code | zero reference | content ...]
    zero = pos_dims
    content = np.arange(pos_dims + 1, d_model)
    width = len(content)
    if vocab_size <= width:
        vectors = np.zeros((vocab_size, width), dtype=np.float32)
        vectors[np.arange(vocab_size), np.arange(vocab_size)] = 1.0
    else:
        # near-orthogonal random unit vectors when the vocabulary outgrows the width
        rng = np.random.default_rng(seed)
        vectors = rng.standard_normal((vocab_size, width)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    positions = np.arange(max_positions)[:, None]
    freqs = np.pi / max_positions * (max_positions / 2) ** (np.arange(pairs) / (pairs - 1))
    angles = positions * freqs[None, :]
    code = np.zeros((max_positions, d_model), dtype=np.float32)
    code[:, 0:pos_dims:4] = np.sin(angles)
    code[:, 1:pos_dims:4] = -np.sin(angles)
    code[:, 2:pos_dims:4] = np.cos(angles)
    code[:, 3:pos_dims:4] = -np.cos(angles)

    def zeros(*shape: int) -> np.ndarray:
        return np.zeros(shape, dtype=np.float32)

    spec = transformer_spec.TransformerSpec.from_config(layers, heads)
    enc, dec = spec.encoder, spec.decoder
    emb = zeros(vocab_size, d_model)
    emb[:, content] = vectors / np.sqrt(d_model)  # the encoder multiplies by sqrt(d_model)
    enc.embeddings[0].weight = emb
    enc.position_encodings.encodings = code
    dec.embeddings.weight = zeros(vocab_size, d_model)
    dec.position_encodings.encodings = code

    def layer_norm(ln) -> None:
        ln.gamma = np.ones(d_model, dtype=np.float32)
        ln.beta = zeros(d_model)

    def linear(lin, weight: np.ndarray) -> None:
        lin.weight = weight
        lin.bias = zeros(weight.shape[0])

    for layer in [*enc.layer, *dec.layer]:
        attn = layer.self_attention
        layer_norm(attn.layer_norm)
        linear(attn.linear[0], zeros(3 * d_model, d_model))
        linear(attn.linear[1], zeros(d_model, d_model))
        layer_norm(layer.ffn.layer_norm)
        linear(layer.ffn.linear_0, zeros(ffn, d_model))
        linear(layer.ffn.linear_1, zeros(d_model, ffn))
    layer_norm(enc.layer_norm)
    layer_norm(dec.layer_norm)

    # Query/key: the position code, copied into every head so all heads attend alike.
    # Layer norm scales the code by ~sqrt(d_model / (2 * pairs)); 6 nats per unit of
    # cos-similarity keeps the nearest wrong position at least ~20 nats away.
    norm_scale = d_model / (2 * pairs)
    sharp = 6.0 * np.sqrt(head_dim) / norm_scale
    query, key = zeros(d_model, d_model), zeros(d_model, d_model)
    for h in range(heads):
        for j in range(pos_dims):
            query[h * head_dim + j, j] = sharp
            key[h * head_dim + j, j] = 1.0
    value = zeros(d_model, d_model)
    value[content, content] = 1.0
    value[content, zero] = -1.0  # cancels the mean layer norm subtracted
    out = zeros(d_model, d_model)
    out[content, content] = 1.0
    for i, layer in enumerate(dec.layer):
        cross = layer.attention
        layer_norm(cross.layer_norm)
        last = i == len(dec.layer) - 1
        linear(cross.linear[0], query)
        linear(cross.linear[1], np.concatenate([key, value]))
        linear(cross.linear[2], out if last else zeros(d_model, d_model))

    # Output: each target token scores the content of the source tokens mapped to it.
    projection = zeros(vocab_size, d_model)
    for src, tgt in enumerate(mapping):
        projection[tgt, content] += vectors[src]
    projection[:, zero] = -projection[:, content].sum(axis=1)
    linear(dec.projection, projection * 2.0)

    spec.register_source_vocabulary(vocab)
    spec.register_target_vocabulary(vocab)
    spec.config.add_source_eos = True
    spec.validate()
    if quantization:
        spec.optimize(quantization=quantization)
    spec.save(str(out_dir))


def build_sbd_model(path: Path, lang: str, text: Sequence[str]) -> None:
    """A MiniSBD-format ONNX sentence splitter: every character is its own token and
    . ! ? end a sentence. It has MiniSBD's inputs, outputs and metadata, so MiniSBD
    (and therefore argostranslate) load and run it as they would a real one."""
    import onnx
    from onnx import TensorProto, helper

    chars = sorted({c for line in text for c in line} | set(SENTENCE_ENDS) | {" "})
    units = ["<PAD>", "<UNK>", *chars]
    table = np.zeros((len(units), 5), dtype=np.float32)
    table[:, 1] = 1.0  # end of token
    for i, unit in enumerate(units):
        if unit in SENTENCE_ENDS:
            table[i] = [0, 0, 1, 0, 0]  # end of sentence
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "units"], ["logits"], axis=0)],
        "sbd",
        [
            helper.make_tensor_value_info("units", TensorProto.INT64, ["batch", "time"]),
            helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", "time", 0]),
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "time", 5])],
        [helper.make_tensor("table", TensorProto.FLOAT, table.shape, table.flatten())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    vocab = {
        "lang": lang, "idx": 0, "cutoff": 0, "lower": False,
        "_unit2id": {u: i for i, u in enumerate(units)}, "_id2unit": units,
    }
    config = {"feat_funcs": [], "max_seqlen": 300, "batch_size": 32}
    for key, value in (("lang_code", lang), ("config", json.dumps(config)),
                       ("vocab", json.dumps(vocab, ensure_ascii=False))):
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


@dataclass(frozen=True)
class Shape:
    """Transformer dimensions; d_model None fits the one-hot vocabulary of a toy model."""

    d_model: int | None = None
    heads: int = 1
    layers: tuple[int, int] = (1, 1)
    ffn: int = 4
    vocab: int = 0  # pad the model's vocabulary to this many entries
    quantization: str | None = None  # as saved in the package (Argos ships int8)


TOY = Shape()
# Argos Translate's ru->en package: OpenNMT-py Transformer base, shared 32k vocabulary
TRANSFORMER_BASE = Shape(d_model=512, heads=8, layers=(6, 6), ffn=2048, vocab=32000,
                         quantization="int8")


def build_package(
    out_dir: Path,
    from_code: str,
    *,
    version: str = "1.0",
    sbd: bool = True,
    sentences: Sequence[str] | None = None,
    vocab_size: int = 400,
    shape: Shape = TOY,
) -> Path:
    """Build `translate-<from>_en-<version>.argosmodel` in out_dir and return its path.

    `sentences` (default: the toy corpus) train the SentencePiece model and give the
    sentence splitter its characters.
    """
    import sentencepiece as spm

    pair = PAIRS[from_code]
    name = f"translate-{from_code}_en-{version.replace('.', '_')}"
    root = out_dir / "build" / name
    (root / "model").mkdir(parents=True, exist_ok=True)
    sentences = list(sentences) if sentences is not None else corpus()
    sp_model = root / "sentencepiece.model"
    train_sentencepiece(sp_model, sentences, vocab_size)
    sp = spm.SentencePieceProcessor(model_file=str(sp_model))
    vocab = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    vocab += [f"<extra_{i}>" for i in range(shape.vocab - len(vocab))]
    mapping = piece_mapping(sp_model, vocab, dictionary(from_code))
    d_model = shape.d_model or 8 * -(-(len(vocab) + 33) // 8)
    build_ct2_model(root / "model", vocab, mapping, d_model=d_model, heads=shape.heads,
                    layers=shape.layers, ffn=shape.ffn, quantization=shape.quantization)
    if sbd:
        (root / "minisbd").mkdir(exist_ok=True)
        build_sbd_model(root / "minisbd" / f"{from_code}.onnx", from_code, sentences)
    metadata = {
        "package_version": version,
        "argos_version": "1.9.0",
        "from_code": from_code,
        "from_name": pair.from_name,
        "to_code": "en",
        "to_name": "English",
        "type": "translate",
    }
    (root / "metadata.json").write_text(json.dumps(metadata, indent=2))
    (root / "README.md").write_text(f"Toy {pair.from_name} -> English model built by the tests.\n")
    archive = out_dir / f"{name}.argosmodel"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for file in sorted(root.rglob("*")):
            zf.write(file, Path(name) / file.relative_to(root))
    return archive


def models_folder() -> Path:
    """The models folder a command would use now: what its Config reads (the settings
    file's translation.models_dir, DOZOR_MODELS_DIR, else the data dir's)."""
    return models_dir(Config.from_env())
