"""`madoguchi faq redact`: the redactor on standard input, for checks and for scripts."""

from __future__ import annotations

import json
import sys

import click

from faq.redact import redact


@click.command("redact")
@click.option("--json", "as_json", is_flag=True, help="スパン（見つかった個人情報）も JSON で出力")
@click.option("--name", "names", multiple=True, help="確実に伏せる氏名（複数可）")
@click.option("--public-phone", "public_phones", multiple=True, help="公開の電話番号（伏せない）")
def redact_command(as_json: bool, names: tuple[str, ...], public_phones: tuple[str, ...]) -> None:
    """標準入力の文章から個人情報を伏せ字にして標準出力に書きます。"""
    text = sys.stdin.read()
    result = redact(text, known_names=names, public_phones=public_phones)
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        click.echo(result.text, nl=False)
