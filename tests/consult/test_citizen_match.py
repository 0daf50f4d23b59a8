"""Matching a citizen as people write names (issue 16): 異体字, kana, spaces, phone formats,
email case and birth dates, on both databases, through the one service the desk and the
command line use."""

from __future__ import annotations

import json
from datetime import date

import pytest

from consult.extensions import db
from consult.models import AuditEvent, Citizen
from consult.services import citizens
from consult.services.actor import SYSTEM
from consult.services.citizens import CitizenInput
from consult.services.normalize import fold_name

# (registered, typed at intake): each must find the registered citizen as a strong match.
# Dicts name CitizenInput fields; "birth" is a birth date.
SAME = [
    # 異体字
    ({"name": "髙橋 一郎", "phone": "090-1111-0001"}, {"name": "高橋一郎", "phone": "09011110001"}),
    (
        {"name": "高橋 花子", "phone": "090-1111-0002"},
        {"name": "髙橋 花子", "phone": "090-1111-0002"},
    ),
    ({"name": "齋藤 健", "birth": "1960-04-01"}, {"name": "斎藤 健", "birth": "1960-04-01"}),
    ({"name": "齊藤 美穂", "birth": "1972-05-02"}, {"name": "斉藤美穂", "birth": "1972-05-02"}),
    ({"name": "斎藤 学", "phone": "087-800-0003"}, {"name": "齋藤 學", "phone": "0878000003"}),
    (
        {"name": "渡邊 恵子", "phone": "090-1111-0004"},
        {"name": "渡辺 恵子", "phone": "090-1111-0004"},
    ),
    ({"name": "渡邉 誠", "birth": "1955-06-03"}, {"name": "渡辺誠", "birth": "1955-06-03"}),
    ({"name": "渡辺 聡", "phone": "090-1111-0005"}, {"name": "渡邊 聡", "phone": "090 1111 0005"}),
    (
        {"name": "山﨑 大輔", "phone": "090-1111-0006"},
        {"name": "山崎 大輔", "phone": "09011110006"},
    ),
    ({"name": "山崎 由美", "birth": "1980-07-04"}, {"name": "山﨑由美", "birth": "1980-07-04"}),
    ({"name": "宮嵜 亮", "phone": "090-1111-0007"}, {"name": "宮崎 亮", "phone": "09011110007"}),
    ({"name": "濵田 修", "phone": "090-1111-0008"}, {"name": "浜田 修", "phone": "09011110008"}),
    ({"name": "濱口 和也", "birth": "1966-08-05"}, {"name": "浜口和也", "birth": "1966-08-05"}),
    (
        {"name": "浜野 直子", "phone": "090-1111-0009"},
        {"name": "濱野 直子", "phone": "09011110009"},
    ),
    ({"name": "澤田 隆", "phone": "090-1111-0010"}, {"name": "沢田 隆", "phone": "09011110010"}),
    ({"name": "櫻井 翔子", "birth": "1990-09-06"}, {"name": "桜井 翔子", "birth": "1990-09-06"}),
    ({"name": "廣瀬 昭", "phone": "090-1111-0011"}, {"name": "広瀬 昭", "phone": "09011110011"}),
    ({"name": "國分 正", "phone": "090-1111-0012"}, {"name": "国分 正", "phone": "09011110012"}),
    (
        {"name": "眞鍋 さおり", "phone": "090-1111-0013"},
        {"name": "真鍋 さおり", "phone": "09011110013"},
    ),
    ({"name": "嶋田 浩二", "birth": "1958-10-07"}, {"name": "島田浩二", "birth": "1958-10-07"}),
    ({"name": "冨田 茂", "phone": "090-1111-0014"}, {"name": "富田 茂", "phone": "09011110014"}),
    (
        {"name": "瀧本 明美", "phone": "090-1111-0015"},
        {"name": "滝本 明美", "phone": "09011110015"},
    ),
    ({"name": "𠮷田 勝", "phone": "090-1111-0016"}, {"name": "吉田 勝", "phone": "09011110016"}),
    ({"name": "德永 誠一", "birth": "1949-11-08"}, {"name": "徳永 誠一", "birth": "1949-11-08"}),
    ({"name": "槇原 敬", "phone": "090-1111-0017"}, {"name": "槙原 敬", "phone": "09011110017"}),
    (
        {"name": "峯岸 みなみ", "phone": "090-1111-0018"},
        {"name": "峰岸 みなみ", "phone": "09011110018"},
    ),
    ({"name": "舘野 一", "phone": "090-1111-0019"}, {"name": "館野 一", "phone": "09011110019"}),
    ({"name": "曾根 良子", "birth": "1970-12-09"}, {"name": "曽根 良子", "birth": "1970-12-09"}),
    (
        {"name": "髙﨑 邦彦", "phone": "090-1111-0020"},
        {"name": "高崎 邦彦", "phone": "09011110020"},
    ),
    ({"name": "隆 太郎", "phone": "090-1111-0021"}, {"name": "隆 太郎", "phone": "09011110021"}),
    # kana: hiragana/katakana, full/half width, small kana, long vowel, 四つ仮名
    (
        {"kana": "いけだ かずこ", "phone": "090-2681-0001"},
        {"kana": "イケダ カズコ", "phone": "09026810001"},
    ),
    (
        {"kana": "さいとう たろう", "birth": "1950-01-10"},
        {"kana": "ｻｲﾄｳ ﾀﾛｳ", "birth": "1950-01-10"},
    ),
    ({"kana": "きょうこ", "phone": "090-1111-0022"}, {"kana": "キヨウコ", "phone": "09011110022"}),
    (
        {"kana": "さとう けん", "birth": "1962-02-11"},
        {"kana": "サトー ケン", "birth": "1962-02-11"},
    ),
    (
        {"kana": "ちぢわ まさし", "phone": "090-1111-0023"},
        {"kana": "チジワ マサシ", "phone": "09011110023"},
    ),
    (
        {"kana": "みかづき はる", "birth": "1985-03-12"},
        {"kana": "みかずき はる", "birth": "1985-03-12"},
    ),
    ({"kana": "ゆうこ", "phone": "090-1111-0024"}, {"kana": "ユーコ", "phone": "09011110024"}),
    (
        {"kana": "がっこう じろう", "phone": "090-1111-0025"},
        {"kana": "ｶﾞｯｺｳ ｼﾞﾛｳ", "phone": "09011110025"},
    ),
    # a name typed in kana finds the registered reading
    (
        {"name": "池田 和子", "kana": "いけだ かずこ", "birth": "1948-04-13"},
        {"name": "いけだ かずこ", "birth": "1948-04-13"},
    ),
    (
        {"name": "中村 勇", "kana": "なかむら いさむ", "phone": "090-1111-0026"},
        {"name": "ナカムラ イサム", "phone": "09011110026"},
    ),
    # spaces and their absence, full-width spaces, dots
    (
        {"name": "西村 由紀", "phone": "090-1111-0027"},
        {"name": "西村　由紀", "phone": "09011110027"},
    ),
    ({"name": "西村由紀子", "birth": "1977-05-14"}, {"name": "西村 由紀子", "birth": "1977-05-14"}),
    (
        {"name": "ジョン・スミス", "phone": "090-1111-0028"},
        {"name": "ジョン スミス", "phone": "09011110028"},
    ),
    (
        {"name": "Ｔａｒｏ Ｙａｍａｄａ", "phone": "090-1111-0029"},
        {"name": "taro yamada", "phone": "09011110029"},
    ),
    # phone numbers in any format
    (
        {"name": "小林 修", "phone": "087-839-2111"},
        {"name": "小林 修", "phone": "０８７（８３９）２１１１"},
    ),
    (
        {"name": "加藤 優", "phone": "090-1234-0030"},
        {"name": "加藤 優", "phone": "+81 90 1234 0030"},
    ),
    (
        {"name": "吉川 紀子", "phone": "0877-22-0031"},
        {"name": "吉川 紀子", "phone": "０８７７ー２２ー００３１"},
    ),
    ({"name": "松本 潤", "phone": "090-1111-0032"}, {"name": "松本 潤", "phone": "090.1111.0032"}),
    # the phone alone (caller ID before a name is given)
    ({"name": "木村 拓", "phone": "090-1111-0033"}, {"phone": "090-1111-0033"}),
    ({"name": "林 真理", "phone": "090-1111-0034"}, {"phone": "+819011110034"}),
    # email case and width
    (
        {"name": "清水 薫", "email": "Kaoru.Shimizu@Example.JP"},
        {"name": "清水 薫", "email": "kaoru.shimizu@example.jp"},
    ),
    (
        {"name": "森 一", "email": "hajime@example.jp"},
        {"email": "ＨＡＪＩＭＥ＠ＥＸＡＭＰＬＥ．ＪＰ"},
    ),
    (
        {"name": "藤田 愛", "email": "ai.fujita@example.com"},
        {"name": "藤田愛", "email": "AI.FUJITA@EXAMPLE.COM"},
    ),
    # birth date with the name
    ({"name": "石井 進", "birth": "1944-06-15"}, {"name": "石井 進", "birth": "1944/06/15"}),
    (
        {"name": "前田 幸子", "birth": "1939-07-16"},
        {"name": "前田幸子", "birth": "１９３９-０７-１６"},
    ),
    # a new phone, but the same name and birth date
    (
        {"name": "岡田 誠", "phone": "090-1111-0035", "birth": "1968-08-17"},
        {"name": "岡田 誠", "birth": "1968-08-17"},
    ),
    # surname only, with the phone
    (
        {"name": "長谷川 久美子", "phone": "090-1111-0036"},
        {"name": "長谷川", "phone": "09011110036"},
    ),
    # name and kana both typed, each a variant
    (
        {"name": "邊見 純", "kana": "へんみ じゅん", "phone": "090-1111-0037"},
        {"name": "辺見 純", "kana": "ヘンミ ジュン", "phone": "09011110037"},
    ),
    (
        {"name": "髙野 洋", "kana": "たかの ひろし", "birth": "1975-09-18"},
        {"name": "高野 洋", "kana": "タカノ ヒロシ", "birth": "1975-09-18"},
    ),
    (
        {"name": "濱崎 歩", "kana": "はまさき あゆみ", "email": "ayu@example.jp"},
        {"name": "浜崎 歩", "email": "Ayu@Example.jp"},
    ),
    (
        {"name": "齋藤 飛鳥", "kana": "さいとう あすか", "phone": "090-1111-0038"},
        {"kana": "ｻｲﾄｳ ｱｽｶ", "phone": "09011110038"},
    ),
]

# (registered, typed): a different person; the registered citizen must not be a strong match
# (a different birth date: not listed at all; a different phone: not listed).
OTHER = [
    ({"name": "池田 和子", "birth": "1948-04-13"}, {"name": "池田 和子", "birth": "1985-04-13"}),
    ({"name": "佐藤 健", "phone": "090-2222-0001"}, {"name": "佐藤 健", "phone": "090-2222-9999"}),
    (
        {"name": "鈴木 一郎", "phone": "090-2222-0002", "birth": "1950-01-01"},
        {"name": "鈴木 一郎", "phone": "090-2222-0002", "birth": "1980-01-01"},
    ),
    ({"name": "高橋 花子", "birth": "1970-02-02"}, {"name": "髙橋 花子", "birth": "1971-02-02"}),
    ({"name": "田中 実", "phone": "087-800-0004"}, {"name": "田中 実", "phone": "087-800-0005"}),
    (
        {"name": "伊藤 美咲", "email": "misaki@example.jp"},
        {"name": "伊藤 美咲", "email": "misaki.ito@example.com"},
    ),
    (
        {"name": "渡辺 直樹", "birth": "1990-03-03"},
        {"kana": "わたなべ なおき", "birth": "1990-03-04"},
    ),
    (
        {"name": "山本 太郎", "phone": "090-2222-0006"},
        {"name": "山本 次郎", "phone": "090-2222-0007"},
    ),
    (
        {"name": "中島 恵", "kana": "なかじま めぐみ", "phone": "090-2222-0008"},
        {"kana": "なかしま めぐみ", "phone": "090-2222-0009"},
    ),
    ({"name": "小川 修", "birth": "1955-05-05"}, {"name": "小川 修"}),  # a name alone: a maybe
    (
        {"name": "山田 太郎", "phone": "090-2222-0010"},
        {"name": "山田 花子", "phone": "090-2222-0010"},
    ),  # one landline, two people
    (
        {"name": "斉藤 実", "birth": "1962-06-06"},
        {"name": "齋藤 実", "phone": "090-2222-0011", "birth": "1962-06-07"},
    ),
]


def _input(spec: dict) -> CitizenInput:
    return CitizenInput(
        name=spec.get("name"),
        kana=spec.get("kana"),
        phone=spec.get("phone"),
        email=spec.get("email"),
        birth_date=spec.get("birth"),
    )


def _register(spec: dict) -> Citizen:
    citizen = citizens.create_citizen(SYSTEM, _input(spec))
    db.session.commit()
    return citizen


def test_the_table_is_large_enough():
    assert len(SAME) + len(OTHER) >= 60 and len(SAME) >= 50


@pytest.mark.parametrize(("registered", "typed"), SAME, ids=[str(i) for i in range(len(SAME))])
def test_the_same_person_written_another_way_is_a_strong_match(app, registered, typed):
    decoy = _register({"name": "別人 花子", "phone": "090-9999-0000"})
    citizen = _register(registered)
    found = citizens.match(SYSTEM, _input(typed))
    assert found, (registered, typed)
    assert found[0].citizen.id == citizen.id, [(c.citizen.id, c.score) for c in found]
    assert found[0].strong, (found[0].score, found[0].reasons)
    assert decoy.id not in {c.citizen.id for c in found}


@pytest.mark.parametrize(("registered", "typed"), OTHER, ids=[str(i) for i in range(len(OTHER))])
def test_another_person_of_the_same_name_is_not_a_strong_match(app, registered, typed):
    citizen = _register(registered)
    found = {c.citizen.id: c for c in citizens.match(SYSTEM, _input(typed))}
    assert citizen.id not in found or not found[citizen.id].strong, found[citizen.id].reasons
    if registered.get("birth") and typed.get("birth") and registered["birth"] != typed["birth"]:
        assert citizen.id not in found  # a different birth date is another person


def test_candidates_come_best_first_with_scores(app):
    name_only = _register({"name": "池田 和子"})
    with_phone = _register({"name": "池田 和子", "phone": "090-2681-0001"})
    other_phone = _register({"name": "池田 和子", "phone": "090-2681-0002"})
    surname = _register({"name": "池田 誠"})
    found = citizens.match(SYSTEM, _input({"name": "池田和子", "phone": "09026810001"}))
    ids = [c.citizen.id for c in found]
    assert ids[0] == with_phone.id and found[0].score == 100
    assert name_only.id in ids and not found[ids.index(name_only.id)].strong
    assert other_phone.id not in ids
    assert surname.id not in ids  # "池田和子" is not a prefix of 池田誠
    assert [c.score for c in found] == sorted((c.score for c in found), reverse=True)


def test_merged_citizens_are_not_candidates_and_audit_records_the_search(app):
    kept = _register({"name": "西村 由紀", "phone": "090-3333-0001"})
    gone = _register({"name": "西村 由紀", "phone": "090-3333-0001"})
    gone.merged_into_id = kept.id
    db.session.commit()
    found = citizens.match(SYSTEM, _input({"phone": "09033330001"}))
    assert [c.citizen.id for c in found] == [kept.id]
    event = db.session.query(AuditEvent).order_by(AuditEvent.id.desc()).first()
    assert (event.action, event.object_type, event.detail) == ("search", "citizen", "matches=1")


def test_the_folded_keys_are_stored_and_kept_up_to_date(app):
    citizen = _register({"name": "髙橋 一郎", "kana": "タカハシ イチロー"})
    assert (citizen.name_fold, citizen.kana_fold) == ("高橋一郎", "たかはしいちろう")
    citizens.update_citizen(
        SYSTEM, citizen, CitizenInput(name="渡邊 一郎", kana="ワタナベ", birth_date="1970-01-02")
    )
    assert citizen.name_fold == fold_name("渡辺一郎") and citizen.birth_date == date(1970, 1, 2)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1975-13-01", "生年月日は西暦で「1975-01-31」のように入力してください。"),
        ("昭和50年", "生年月日は西暦で「1975-01-31」のように入力してください。"),
        ("2999-01-01", "生年月日が正しくありません。"),
        ("1800-01-01", "生年月日が正しくありません。"),
    ],
)
def test_a_wrong_birth_date_is_refused_in_japanese(app, value, message):
    with pytest.raises(citizens.ValidationFailed) as error:
        CitizenInput(name="山田", birth_date=value).clean()
    assert message in error.value.message


def test_the_command_line_prints_the_same_candidates_as_json(app):
    kept = _register({"name": "髙橋 一郎", "kana": "たかはし いちろう", "phone": "090-4444-0001"})
    _register({"name": "高橋 一郎", "phone": "090-4444-0002", "birth": "1950-01-01"})
    runner = app.test_cli_runner()
    args = ["citizen", "match", "--name", "高橋一郎", "--phone", "０９０（４４４４）０００１"]
    result = runner.invoke(args=[*args, "--birth", "1970-02-03", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["candidates"]
    assert [row["id"] for row in rows] == [kept.id]  # the other 高橋 一郎 was born in 1950
    assert rows[0]["score"] == 100 and rows[0]["strong"] and "電話番号が一致" in rows[0]["reasons"]
    typed = {"name": "高橋一郎", "phone": "09044440001", "birth": "1970-02-03"}
    same = citizens.match(SYSTEM, _input(typed))
    assert [(c.citizen.id, c.score) for c in same] == [(r["id"], r["score"]) for r in rows]
    bad = runner.invoke(args=["citizen", "match", "--phone", "123", "--json"])
    assert bad.exit_code != 0 and "電話番号の形式が正しくありません。" in bad.output
    text = runner.invoke(args=["citizen", "match", "--kana", "タカハシ イチロウ"])
    assert f"相談者番号 {kept.id}" in text.output
