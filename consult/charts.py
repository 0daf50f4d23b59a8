"""Small server-rendered SVG charts: no script, no CDN, and they print.

Colours are presentation attributes (fill=…), not style attributes, so the page's CSP
(style-src 'self') allows them. Every label is escaped.
"""

from __future__ import annotations

import math

from markupsafe import Markup, escape

# Colour-blind-safe palette (Okabe–Ito), one colour per series in order.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
FONT = 'font-family="sans-serif"'


def _nice_max(value: float) -> int:
    """The axis top: 1, 2, 2.5 or 5 times a power of ten, at or above the value."""
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for candidate in (1, 2, 2.5, 5, 10):
        top = math.ceil(candidate * magnitude)
        if top >= value:
            return top
    return int(value)


def _steps(peak: int) -> int:
    """How many gridlines above zero: each at a whole count (counts are whole; a month's axis
    up to 1 read 「0, 0, 0, 0, 1」 with a gridline every quarter)."""
    for steps in (5, 4, 3, 2):
        if peak % steps == 0 and str(peak // steps).rstrip("0") in ("1", "2", "25", "5"):
            return steps
    return 1


def stacked_bars(
    labels: list[str],
    series: list[tuple[str, list[int]]],
    *,
    title: str,
    width: int = 880,
    height: int = 260,
) -> Markup:
    """Vertical stacked bars: one bar per label, one colour per series, with a legend."""
    left, right, top, bottom = 48, 12, 28, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(values[i] for _, values in series) for i in range(len(labels))]
    peak = _nice_max(max(totals, default=0))
    n = max(len(labels), 1)
    slot = plot_w / n
    bar = max(1.0, slot * 0.8)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" {FONT} font-size="11">',
        f"<title>{escape(title)}</title>",
    ]
    steps = _steps(peak)
    for k in range(steps + 1):
        value = peak * k // steps
        y = top + plot_h - plot_h * k / steps
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" fill="#555">'
            f"{value:,}</text>"
        )
    every = max(1, round(n / 16))
    for i, label in enumerate(labels):
        x = left + i * slot + (slot - bar) / 2
        y = top + plot_h
        for s, (name, values) in enumerate(series):
            value = values[i]
            if not value:
                continue
            h = plot_h * value / peak
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[s % len(PALETTE)]}">'
                f"<title>{escape(label)} {escape(name)}: {value:,}</title></rect>"
            )
        if i % every == 0:
            parts.append(
                f'<text x="{left + i * slot + slot / 2:.1f}" y="{top + plot_h + 14}" '
                f'text-anchor="middle" fill="#333">{escape(label)}</text>'
            )
    x = left
    for s, (name, values) in enumerate(series):
        parts.append(
            f'<rect x="{x}" y="{height - 16}" width="10" height="10" '
            f'fill="{PALETTE[s % len(PALETTE)]}"/>'
            f'<text x="{x + 14}" y="{height - 7}" fill="#333">{escape(name)} {sum(values):,}</text>'
        )
        x += 24 + 9 * (len(name) * 2 + len(f"{sum(values):,}"))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every label escaped above)


def hbars(
    items: list[tuple[str, int, int | None]], *, title: str, width: int = 880, row: int = 22
) -> Markup:
    """Horizontal bars, one per (label, value, previous); the previous period as a thin bar."""
    left, right, top = 170, 70, 8
    height = top + row * max(len(items), 1) + 8
    peak = max([v for _, v, _ in items] + [p or 0 for _, _, p in items] + [1])
    plot_w = width - left - right
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" {FONT} font-size="12">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value, previous) in enumerate(items):
        y = top + i * row
        w = plot_w * value / peak
        parts.append(
            f'<text x="{left - 6}" y="{y + 14}" text-anchor="end" fill="#333">'
            f"{escape(label)}</text>"
            f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 10}" fill="{PALETTE[0]}">'
            f"<title>{escape(label)}: {value:,}</title></rect>"
            f'<text x="{left + w + 4:.1f}" y="{y + 14}" fill="#333">{value:,}</text>'
        )
        if previous is not None:
            pw = plot_w * previous / peak
            parts.append(
                f'<rect x="{left}" y="{y + row - 6}" width="{pw:.1f}" height="3" fill="#999">'
                f"<title>前年同期: {previous:,}</title></rect>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every label escaped above)
