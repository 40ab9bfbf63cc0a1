"""Decoding real encoded bytes: declared, undeclared, wrongly declared."""

from __future__ import annotations

import pytest

from pipelines.charset import decode_html, detect_encoding, fits

RU = (
    "Осуждённых из исправительной колонии в Мордовии вербуют на войну: представители "
    "Министерства обороны обещают помилование через полгода службы и выплаты семьям. "
    "Правозащитники говорят, что о рисках заключённым не рассказывают."
)
UK = (
    "Засуджених з виправної колонії вербують на війну: представники Міністерства оборони "
    "обіцяють помилування через пів року служби. Правозахисники кажуть, що про ризики "
    "в'язням не розповідають, а родини дізнаються про загибель з чуток."
)


def html(text: str, head: str = "") -> str:
    return f"<html><head>{head}<title>{text[:20]}</title></head><body><p>{text}</p></body></html>"


@pytest.mark.parametrize("encoding", ["cp1251", "koi8_r"])
def test_undeclared_cyrillic_single_byte_is_detected(encoding: str) -> None:
    decoded = decode_html(html(RU).encode(encoding), "text/html")
    assert RU in decoded.text
    assert decoded.encoding.replace("-", "_") == encoding
    assert decoded.source == "detected"


def test_undeclared_koi8_u_ukrainian() -> None:
    decoded = decode_html(html(UK).encode("koi8_u"), None)
    assert UK in decoded.text


def test_header_utf8_but_bytes_cp1251() -> None:
    decoded = decode_html(html(RU).encode("cp1251"), "text/html; charset=utf-8")
    assert RU in decoded.text
    assert decoded.declared == "utf-8"
    assert decoded.source == "detected"


def test_header_cp1251_but_bytes_koi8_r() -> None:
    decoded = decode_html(html(RU).encode("koi8_r"), "text/html; charset=windows-1251")
    assert RU in decoded.text


def test_meta_cp1251_but_bytes_utf8() -> None:
    body = html(RU, '<meta charset="windows-1251">').encode("utf-8")
    decoded = decode_html(body, None)
    assert RU in decoded.text
    assert decoded.encoding == "utf-8"


def test_correct_meta_http_equiv_is_used() -> None:
    head = '<meta http-equiv="Content-Type" content="text/html; charset=windows-1251">'
    decoded = decode_html(html(RU, head).encode("cp1251"), "text/html")
    assert RU in decoded.text
    assert (decoded.source, decoded.encoding) == ("meta", "cp1251")


def test_correct_header_is_used() -> None:
    decoded = decode_html(html(RU).encode("koi8_r"), "text/html; charset=KOI8-R")
    assert RU in decoded.text
    assert decoded.source == "header"


def test_utf8_bom_wins_and_is_stripped() -> None:
    body = b"\xef\xbb\xbf" + html(UK).encode("utf-8")
    decoded = decode_html(body, "text/html; charset=windows-1251")
    assert decoded.source == "bom"
    assert decoded.text.startswith("<html>")
    assert UK in decoded.text


def test_utf16_bom() -> None:
    body = b"\xff\xfe" + html(UK).encode("utf-16-le")
    decoded = decode_html(body, None)
    assert decoded.source == "bom"
    assert UK in decoded.text


def test_stray_invalid_byte_keeps_utf8() -> None:
    # one broken byte in a long UTF-8 page is damage, not a different charset
    body = html(RU * 3).encode("utf-8") + b"\xff"
    decoded = decode_html(body, "text/html; charset=utf-8")
    assert decoded.source == "header"
    assert RU in decoded.text


def test_latin1_label_means_windows_1252() -> None:
    text = "L'armée a recruté des détenus — « une pratique courante », dit l'ONG. Ça coûte 100 €."
    decoded = decode_html(html(text).encode("cp1252"), "text/html; charset=iso-8859-1")
    assert text in decoded.text


def test_fits_and_detect() -> None:
    cp1251 = html(RU).encode("cp1251")
    assert fits(cp1251, "windows-1251")
    assert not fits(cp1251, "utf-8")
    assert not fits(cp1251, "koi8-r")
    assert not fits(html(RU).encode("utf-8"), "cp1251")
    assert fits(b"<p>plain ascii</p>", "koi8-r")
    assert not fits(cp1251, "no-such-charset")
    assert detect_encoding(html(RU).encode("utf-8")) == "utf-8"
    assert detect_encoding(cp1251) == "cp1251"
