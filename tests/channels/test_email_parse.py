"""Decoding Japanese mail: the public corpora in tests/fixtures/email and messages written here."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from channels.email.parse import decode_header_value, parse
from consult.services.jis import decode_iso2022jp, encode_iso2022jp

FIXTURES = Path(__file__).parent.parent / "fixtures" / "email"
IROHA = "色は匂えど\n散りぬるを\n我が世誰ぞ\n常ならん"


@pytest.mark.parametrize(
    "name",
    [
        "test_japanese_plaintext_iso-2022-jp_over_7bit.txt",
        "test_japanese_plaintext_iso-2022-jp_over_base64.txt",
        "test_japanese_plaintext_euc-jp_over_quoted-printable.txt",
        "test_japanese_plaintext_euc-jp_over_base64.txt",
        "test_japanese_multipart_mixed_iso-2022-jp_over_quoted-printable.txt",
        "test_japanese_multipart_mixed_utf-8_over_base64.txt",
    ],
)
def test_letters_corpus_decodes_to_the_poem(name):
    parsed = parse((FIXTURES / "letters" / name).read_bytes())
    assert parsed.text.startswith(IROHA)
    assert parsed.subject == "📧 Test いろは歌"  # UTF-8 and ISO-2022-JP/EUC-JP words, folded
    assert parsed.from_name == "郵便アリス"
    assert parsed.from_address == "alice.yuubin@example.com"
    # The illegal header line upstream put there would otherwise swallow the body.
    assert "不正なヘッダー行を読み飛ばしました。" in parsed.warnings


def test_attachment_names_and_types_survive():
    parsed = parse(
        (FIXTURES / "letters" / "test_japanese_multipart_mixed_utf-8_over_base64.txt").read_bytes()
    )
    names = [a.filename for a in parsed.attachments]
    assert "attached-pdf-filename.pdf" in names
    assert "inline-jpg-image-filename.jpg" in names
    assert any(a.inline for a in parsed.attachments)


@pytest.mark.parametrize(
    ("path", "subject", "text"),
    [
        (
            "ruby-mail/japanese_shift_jis.eml",
            "test",
            "あいうえお\n\nこのメールはテスト用のメールです。",
        ),
        ("ruby-mail/japanese_iso_2022.eml", "まみむめも", "すみません。"),
        ("ruby-mail/example14.eml", "Re: TEST  テストテスト", "Hello"),
        # NEC row 13 and Cyrillic in an ISO-2022-JP word: Python's codecs refuse it.
        ("php-mime-mail-parser/issue116", "ЖД№41 от 28.09.2016", "toto"),
        # Raw 8-bit UTF-8 subject, and a part labelled ISO-2022-JP holding UTF-8.
        ("sisimai/lhost-kddi-01.eml", "メールエラー通知", "送信先のメールボックスが一杯のため"),
        ("sisimai/lhost-trendmicro-01.eml", "メッセージを配信できません。", ""),
        ("sisimai/lhost-office365-13.eml", "Undeliverable: にゃーん", ""),
    ],
)
def test_public_corpus(path, subject, text):
    parsed = parse((FIXTURES / path).read_bytes())
    assert parsed.subject == subject
    assert parsed.text.startswith(text)
    assert "\ufffd" not in parsed.subject + parsed.text


def test_multipart_in_utf16_eucjp_and_a_truncated_boundary():
    parsed = parse((FIXTURES / "stalwart-dovecot" / "005.eml").read_bytes())
    assert "『世界人権宣言』" in parsed.text


def _mail(headers: str, body: bytes) -> bytes:
    return headers.replace("\n", "\r\n").encode("ascii") + b"\r\n\r\n" + body


def test_cp50220_body_and_subject_with_circled_numbers_and_tilde():
    text = "①の件で伺います～髙橋です。㈱山田商事、Ⅲ期。"
    word = base64.b64encode(encode_iso2022jp("【至急】①番窓口～")).decode()
    raw = _mail(
        f"From: =?ISO-2022-JP?B?{base64.b64encode(encode_iso2022jp('髙橋')).decode()}?= "
        f"<taka@example.jp>\nSubject: =?ISO-2022-JP?B?{word}?=\nMessage-ID: <a@x>\n"
        "MIME-Version: 1.0\nContent-Type: text/plain; charset=ISO-2022-JP",
        encode_iso2022jp(text),
    )
    parsed = parse(raw)
    assert parsed.subject == "【至急】①番窓口～"
    assert parsed.from_name == "髙橋"
    assert parsed.text == text


def test_shift_jis_label_is_read_as_cp932():
    raw = _mail(
        "From: a@example.jp\nSubject: x\nContent-Type: text/plain; charset=Shift_JIS\n"
        "Content-Transfer-Encoding: 8bit",
        "①髙～ﾃｽﾄ".encode("cp932"),
    )
    assert parse(raw).text == "①髙～ﾃｽﾄ"


def test_split_and_mislabelled_encoded_words():
    first, second = "市民相談".encode("euc_jp"), "センター".encode("euc_jp")
    value = (
        f"=?EUC-JP?B?{base64.b64encode(first).decode()}?=\r\n "
        f"=?euc-jp?B?{base64.b64encode(second).decode()}?="
    )
    assert decode_header_value(value) == "市民相談センター"
    # Labelled ISO-2022-JP, really Shift_JIS.
    sjis = base64.b64encode("相談".encode("cp932")).decode()
    assert decode_header_value(f"=?ISO-2022-JP?B?{sjis}?=") == "相談"


def test_html_only_mail_becomes_safe_text():
    raw = _mail(
        "From: a@example.jp\nSubject: x\nContent-Type: text/html; charset=UTF-8",
        "<html><head><style>p{}</style><script>alert(1)</script></head>"
        "<body><p>こんにちは</p><p>&lt;script&gt;です</p></body></html>".encode(),
    )
    parsed = parse(raw)
    assert parsed.text == "こんにちは\n\n<script>です"
    assert "alert" not in parsed.text


def test_rfc2231_file_name_and_quoted_history_folded():
    raw = _mail(
        "From: a@example.jp\nSubject: x\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="b"',
        (
            "--b\r\nContent-Type: text/plain; charset=UTF-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n"
            "ありがとうございます。\r\n\r\n2026年4月1日 10:00 市民相談センター:\r\n"
            "> 前回の回答\r\n> です\r\n"
            "--b\r\nContent-Type: application/pdf\r\n"
            "Content-Disposition: attachment; filename*=UTF-8''%E7%94%B3%E8%AB%8B%E6%9B%B8.pdf\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n"
        ).encode(),
    )
    parsed = parse(raw)
    assert parsed.text == "ありがとうございます。"
    assert "> 前回の回答" in parsed.quoted
    assert parsed.attachments[0].filename == "申請書.pdf"


def test_undecodable_charset_and_many_parts_give_warnings_not_exceptions():
    raw = _mail(
        "From: a@example.jp\nSubject: x\nContent-Type: text/plain; charset=x-unknown-42",
        b"\xff\xfe\xfa\xfb",
    )
    parsed = parse(raw)
    assert parsed.warnings
    parts = "".join(
        f"--b\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n{i}\r\n" for i in range(1000)
    )
    many = _mail(
        'From: a@example.jp\nSubject: x\nContent-Type: multipart/mixed; boundary="b"',
        (parts + "--b--\r\n").encode(),
    )
    parsed = parse(many, max_parts=100)
    assert any("パートが多すぎる" in w for w in parsed.warnings)


def test_every_jis_x_0208_character_round_trips():
    for j1 in range(0x21, 0x75):
        for j2 in range(0x21, 0x7F):
            data = b"\x1b$B" + bytes((j1, j2)) + b"\x1b(B"
            try:
                expected = data.decode("iso2022_jp")
            except UnicodeDecodeError:
                continue
            text = decode_iso2022jp(data)
            assert encode_iso2022jp(text) == data or text != expected
