"""The reports' bar chart: its axis reads whole counts, each where its gridline is."""

from __future__ import annotations

import re

import pytest

from consult import charts


def axis_labels(svg: str) -> list[str]:
    return re.findall(r'<text x="\d+" y="[\d.]+" text-anchor="end" fill="#555">([^<]*)</text>', svg)


@pytest.mark.parametrize(
    ("peak", "expected"),
    [
        (1, ["0", "1"]),  # one case in the year read 「0, 0, 0, 0, 1」
        (3, ["0", "1", "2", "3"]),
        (4, ["0", "1", "2", "3", "4", "5"]),
        (13, ["0", "5", "10", "15", "20"]),
        (260, ["0", "100", "200", "300", "400", "500"]),
        (1234, ["0", "500", "1,000", "1,500", "2,000"]),
    ],
)
def test_axis_labels_are_whole_counts_on_their_gridlines(peak, expected):
    svg = charts.stacked_bars(["4月", "5月"], [("窓口", [peak, 0])], title="相談件数")
    assert axis_labels(svg) == expected
    # A bar of the peak reaches the line of its own count.
    lines = [float(y) for y in re.findall(r'<line [^>]*y1="([\d.]+)"', svg)]
    bar_top = float(re.search(r'<rect x="[\d.]+" y="([\d.]+)"', svg).group(1))
    top_label = int(expected[-1].replace(",", ""))
    assert lines[-1] <= bar_top
    if top_label == peak:
        assert bar_top == lines[-1]
