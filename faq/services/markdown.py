"""Safe Markdown for FAQ answers: CommonMark without raw HTML, images or unsafe links."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markupsafe import Markup

_SAFE_SCHEMES = ("http://", "https://", "mailto:", "tel:")


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False})
    md.disable("image")  # no third-party images on citizens' pages

    def validate_link(url: str) -> bool:
        # Only web, mail and phone links and our own paths: never javascript:, data:, vbscript:.
        cleaned = re.sub(r"[\x00-\x20]", "", url).lower()
        return cleaned.startswith(_SAFE_SCHEMES) or (
            cleaned.startswith("/") and not cleaned.startswith("//")
        )

    md.validateLink = validate_link
    return md


_MD = _markdown()


def render_markdown(text: str) -> Markup:
    """CommonMark without raw HTML: markdown-it escapes every tag, and unsafe links stay text."""
    return Markup(_MD.render(text or ""))  # noqa: S704 (markdown-it output with html disabled)
